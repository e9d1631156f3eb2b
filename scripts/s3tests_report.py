#!/usr/bin/env python3
"""Summarise a ceph/s3-tests JUnit XML report by feature area.

Usage: ``scripts/s3tests_report.py JUNIT.xml [--failures N] [--json]``

Each test case of ``s3tests/functional/test_s3.py`` is put in one area by its name
(:data:`RULES`, first match wins). The *core* areas are the S3 features Tessera
implements; ``other`` (bucket create/naming, tagging, POST uploads, object
attributes...) and ``out of scope`` (ACL, CORS, object lock, bucket policy and
public-access block, which the marker selection cannot exclude because the suite
has no markers for them) are shown but do not count towards the core pass rate.

``--failures N`` also prints the N most common failure causes: the S3 error code
and operation of a ``ClientError``, else the first line of the failure message,
with the tests that hit each.

Standard library only: ``scripts/s3-tests`` runs it with whatever Python it has.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

OUT_OF_SCOPE = "out of scope (acl/cors/lock/policy)"
OTHER = "other"

RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (area, re.compile(pattern))
    for area, pattern in (
        (
            OUT_OF_SCOPE,
            r"cors|object_lock|bucket_policy|_with_policy|public_block|block_public|ignore_public",
        ),
        ("presigned", r"presigned|x_amz_expires|raw_put_authenticated_expired"),
        (OUT_OF_SCOPE, r"acl|access_bucket_|_grant"),
        ("checksums", r"checksum|cksum"),
        ("versioning", r"versioning|versioned|delete_marker|_version_"),
        (OTHER, r"tagging|_tags|torrent|object_attributes"),
        ("copy", r"copy"),
        ("multipart", r"multipart|_part"),
        ("bucket list v2", r"listv2|bucketv2"),
        ("bucket list v1", r"bucket_list|basic_key_count"),
        ("range", r"range"),
        (
            "headers",
            r"if_?match|if_?none_?match|ifnonmatch|if_?modified|if_?unmodified|metadata"
            r"|cache_control|write_expires|response_headers|content_encoding",
        ),
        (
            "object put/get/head/delete",
            r"^test_object_|^test_atomic_|multi_object|delete_objects|^test_get_object_"
            r"|^test_put_object|^test_delete_object|^test_head_object|100_continue",
        ),
    )
)
"""``(area, pattern)`` tried in order against the test name; no match means ``other``."""

CORE_AREAS: tuple[str, ...] = (
    "bucket list v1",
    "bucket list v2",
    "object put/get/head/delete",
    "multipart",
    "copy",
    "range",
    "headers",
    "presigned",
    "checksums",
    "versioning",
)
AREAS: tuple[str, ...] = (*CORE_AREAS, OTHER, OUT_OF_SCOPE)

_CLIENT_ERROR_RE = re.compile(
    r"An error occurred \((?P<code>[^)]*)\) when calling the (?P<op>\w+) operation"
)


def classify(name: str) -> str:
    """The area of test ``name`` (parameters in brackets are ignored)."""
    base = name.split("[", 1)[0]
    for area, pattern in RULES:
        if pattern.search(base):
            return area
    return OTHER


@dataclass(frozen=True)
class Case:
    """One test case of the report."""

    name: str
    outcome: str
    """``passed``, ``failed`` (assertion or error), ``skipped``."""
    message: str = ""


@dataclass
class Tally:
    """Counts of one area."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    names: list[str] = field(default_factory=list)

    @property
    def run(self) -> int:
        """Cases that ran (skips excluded)."""
        return self.passed + self.failed

    def add(self, case: Case) -> None:
        if case.outcome == "passed":
            self.passed += 1
        elif case.outcome == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
        self.names.append(case.name)


def read_cases(junit: Path) -> list[Case]:
    """The test cases of a pytest JUnit XML file."""
    root = ET.parse(junit).getroot()
    cases = []
    for node in root.iter("testcase"):
        outcome, message = "passed", ""
        for child in node:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                message = child.get("message") or (child.text or "")
                break
            if child.tag == "skipped":
                outcome = "skipped"
                message = child.get("message") or ""
        cases.append(Case(node.get("name", "?"), outcome, message))
    return cases


def tally(cases: Sequence[Case]) -> dict[str, Tally]:
    """Counts per area, every area of :data:`AREAS` present."""
    out = {area: Tally() for area in AREAS}
    for case in cases:
        out[classify(case.name)].add(case)
    return out


def core_rate(tallies: dict[str, Tally]) -> float:
    """Percentage of core-area cases that passed, among those that ran."""
    passed = sum(tallies[a].passed for a in CORE_AREAS)
    run = sum(tallies[a].run for a in CORE_AREAS)
    return 100.0 * passed / run if run else 0.0


def cause(message: str) -> str:
    """A short grouping key for a failure message."""
    m = _CLIENT_ERROR_RE.search(message)
    if m:
        return f"ClientError {m.group('code') or '(empty code)'} in {m.group('op')}"
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    first = re.sub(r"0x[0-9a-f]+", "0x…", first)
    return first[:160]


def format_table(tallies: dict[str, Tally]) -> str:
    """The per-area table as text."""
    width = max(len(a) for a in AREAS)
    lines = [f"{'area':<{width}}  passed/run   pct  skipped", "-" * (width + 29)]

    def row(label: str, passed: int, run: int, skipped: int) -> str:
        pct = f"{100.0 * passed / run:5.1f}" if run else "    -"
        return f"{label:<{width}}  {f'{passed}/{run}':>10}  {pct}  {skipped:>7}"

    for area in AREAS:
        if area == OTHER:
            core = [tallies[a] for a in CORE_AREAS]
            lines.append("-" * (width + 29))
            lines.append(
                row(
                    "CORE TOTAL",
                    sum(t.passed for t in core),
                    sum(t.run for t in core),
                    sum(t.skipped for t in core),
                )
            )
            lines.append("-" * (width + 29))
        t = tallies[area]
        lines.append(row(area, t.passed, t.run, t.skipped))
    every = list(tallies.values())
    lines.append("-" * (width + 29))
    lines.append(
        row(
            "ALL",
            sum(t.passed for t in every),
            sum(t.run for t in every),
            sum(t.skipped for t in every),
        )
    )
    return "\n".join(lines)


def format_failures(cases: Sequence[Case], top: int) -> str:
    """The ``top`` most common failure causes with the tests that hit each."""
    groups: dict[str, list[str]] = defaultdict(list)
    for case in cases:
        if case.outcome == "failed":
            groups[cause(case.message)].append(case.name)
    counts = Counter({k: len(v) for k, v in groups.items()})
    lines = []
    for key, n in counts.most_common(top):
        lines.append(f"{n:4d}  {key}")
        for name in groups[key]:
            lines.append(f"        {name}  [{classify(name)}]")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("junit", type=Path, help="JUnit XML written by pytest --junitxml")
    parser.add_argument("--failures", type=int, default=0, metavar="N", help="top N causes")
    parser.add_argument("--json", action="store_true", help="print counts as JSON")
    args = parser.parse_args(argv)

    cases = read_cases(args.junit)
    tallies = tally(cases)
    if args.json:
        doc = {
            "areas": {
                a: {"passed": t.passed, "run": t.run, "skipped": t.skipped}
                for a, t in tallies.items()
            },
            "core_pass_rate": round(core_rate(tallies), 2),
            "total": len(cases),
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(format_table(tallies))
    print(f"\ncore pass rate: {core_rate(tallies):.1f}% of core tests that ran")
    if args.failures:
        print(f"\nTop failure causes (of {sum(c.outcome == 'failed' for c in cases)} failures):")
        print(format_failures(cases, args.failures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
