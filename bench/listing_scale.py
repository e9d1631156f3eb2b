"""Listing at scale: ListObjectsV2 / ListObjectVersions on a bucket of 1,000,000 objects.

What is measured (over HTTP against ``tessera serve`` on 127.0.0.1, SQLite metadata):

1. ``first``: the first ListObjectsV2 page (1,000 keys), median of ``--repeat`` calls.
2. ``middle``: a page deep inside the bucket, by StartAfter and by ContinuationToken
   (the key at half the bucket), median of ``--repeat`` each.
3. ``delimiter``: ListObjectsV2 with ``Delimiter=/`` paging through every common
   prefix (10,000 by default, 1,000 a page): total time and time per page
   (``--delimiter-runs`` walks); then once the same walk with ListObjectVersions.
4. ``prefix``: ListObjectsV2 with ``Prefix=p5000/`` (a prefix in the middle),
   median of ``--repeat``.
5. ``versions``: the first ListObjectVersions page, median of ``--repeat``.
6. ``full`` (with ``--full``): every key, 1,000 a page, sequentially.

A time is from sending the request to having read the whole body; the XML is
parsed afterwards, untimed, to check the number of entries. Then, with the
server stopped, the same listing statements the server runs
(:func:`tessera.meta.sql.versions.listing`) are shown with ``EXPLAIN QUERY PLAN``
and timed directly in SQLite, and the store's ``list_latest`` is timed at the
limits the delimiter walk asks for, to tell database time from service time.

The bucket is created through S3 (a first server start), then filled directly in
``meta.db`` (the server stopped) with one ``executemany`` of the store's own
version ``INSERT`` (:func:`~tessera.meta.sql.rows.insert_statement` /
:func:`~tessera.meta.sql.rows.version_params`) per batch: inline objects of a few
bytes, version ``null``, ``is_latest`` set, no manifest, so no blocks and no block
references. Keys are ``p0000/k000`` ...: ``--prefixes`` prefixes (10,000) with
``--count / --prefixes`` keys each (100). Population time and the size of
``meta.db`` are reported.

    python bench/listing_scale.py                      # 1,000,000 objects
    python bench/listing_scale.py --count 100000       # quick run (10 keys a prefix)
    python bench/listing_scale.py --data /tmp/ls --keep   # keep the data; a second
                                                       # run on it skips population
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import os
import platform
import secrets
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import sqlalchemy as sa
from yarl import URL

from tessera.meta.sql.rows import insert_statement, version_params
from tessera.meta.sql.schema import versions
from tessera.meta.sql.store import SqlMetadataStore
from tessera.meta.sql.versions import listing
from tessera.model.records import ObjectVersion
from tessera.protocol.s3.sigv4 import EMPTY_SHA256, sign_headers

READY_PREFIX = "Tessera listening on"
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
OWNER = "root"  # ROOT_ACCOUNT_ID: the account holding the root credentials
BATCH = 50_000
MAXCP = "\U0010ffff"
BODY = b"x"


# ------------------------------------------------------------------ keys


def layout(count: int, prefixes: int) -> tuple[int, int, int]:
    """(number of prefixes, keys per prefix, digits of the key number)."""
    prefixes = min(prefixes, count)
    per = math.ceil(count / prefixes)
    return prefixes, per, max(3, len(str(per - 1)))


def key_name(i: int, per: int, width: int) -> str:
    return f"p{i // per:04d}/k{i % per:0{width}d}"


# ------------------------------------------------------------------ server


@contextlib.contextmanager
def server(data: Path, access: str, secret: str) -> Iterator[tuple[str, int]]:
    """``tessera serve --data DATA`` on 127.0.0.1:0; yield (endpoint, pid)."""
    env = {**os.environ, "TESSERA_ROOT_ACCESS_KEY": access, "TESSERA_ROOT_SECRET_KEY": secret}
    exe = Path(sys.executable).with_name("tessera")
    cmd = [str(exe), "serve", "--data", str(data), "--listen", "127.0.0.1:0"]
    log = data.parent / "server.log"
    start = log.stat().st_size if log.exists() else 0  # earlier starts' lines
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        url = ""
        while not url:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"tessera serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
            with log.open("rb") as f:
                f.seek(start)
                lines = f.read().decode(errors="replace").splitlines()
            for line in lines:
                if line.startswith(READY_PREFIX):
                    url = line.split()[-1]
        yield url, proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


class S3:
    """Path-style SigV4 GET/PUT over one aiohttp session; returns (seconds, body)."""

    def __init__(self, session: aiohttp.ClientSession, endpoint: str, access: str, secret: str):
        self.session, self.endpoint = session, endpoint.rstrip("/")
        self.access, self.secret = access, secret

    async def call(
        self, method: str, path: str, query: dict[str, str] | None = None
    ) -> tuple[float, bytes]:
        url = self.endpoint + quote(path, safe="/-_.~")
        if query:
            url += "?" + "&".join(
                f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
            )
        headers = sign_headers(
            method, url, {}, access_key=self.access, secret=self.secret, payload_hash=EMPTY_SHA256
        )
        t0 = time.perf_counter()
        async with self.session.request(method, URL(url, encoded=True), headers=headers) as resp:
            body = await resp.read()
            dt = time.perf_counter() - t0
            if resp.status != 200:
                raise SystemExit(f"{method} {path} {query}: HTTP {resp.status} {body[:300]!r}")
        return dt, body


def parse(body: bytes) -> dict[str, Any]:
    root = ET.fromstring(body)

    def text(tag: str) -> str:
        return root.findtext(NS + tag) or ""

    return {
        "keys": [c.findtext(NS + "Key") for c in root.findall(NS + "Contents")],
        "prefixes": [c.findtext(NS + "Prefix") for c in root.findall(NS + "CommonPrefixes")],
        "versions": len(root.findall(NS + "Version")),
        "truncated": text("IsTruncated") == "true",
        "token": text("NextContinuationToken"),
    }


# ------------------------------------------------------------------ population


def populate(db: Path, bucket: str, count: int, prefixes: int) -> float:
    """Insert ``count`` inline latest ``null`` versions; return seconds."""
    _, per, width = layout(count, prefixes)
    engine = sa.create_engine(f"sqlite:///{db}")
    body = BODY
    etag = hashlib.md5(body).hexdigest()
    now = time.time()
    template = ObjectVersion(bucket, "", "null", now, len(body), etag, owner=OWNER, inline=body)
    params = version_params(template)
    stmt = insert_statement(versions, params)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.exec_driver_sql("PRAGMA cache_size=-262144")
        for start in range(0, count, BATCH):
            rows = [
                {**params, "key": key_name(i, per, width)}
                for i in range(start, min(count, start + BATCH))
            ]
            conn.execute(stmt, rows)
            conn.commit()
            done = start + len(rows)
            if done % 200_000 == 0 or done == count:
                rate = done / (time.perf_counter() - t0)
                print(f"# populated {done:,} ({rate:,.0f}/s)", file=sys.stderr, flush=True)
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return time.perf_counter() - t0


def live_count(db: Path, bucket: str) -> int:
    with contextlib.closing(sqlite3.connect(db)) as c:
        (n,) = c.execute(
            "SELECT count(*) FROM versions WHERE bucket = ? AND is_latest AND NOT delete_marker",
            (bucket,),
        ).fetchone()
    return int(n)


# ------------------------------------------------------------------ HTTP measurements


def summary(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 2),
        "min_ms": round(ms[0], 2),
        "max_ms": round(ms[-1], 2),
        "total_s": round(sum(ms) / 1000, 3),
    }


async def repeat(
    s3: S3, path: str, query: dict[str, str], n: int, check: Callable[[dict[str, Any]], None]
) -> dict[str, float]:
    await s3.call("GET", path, query)  # warm-up, untimed
    times = []
    for _ in range(n):
        dt, body = await s3.call("GET", path, query)
        times.append(dt)
        check(parse(body))
    return summary(times)


def expect(what: str, got: object, want: object) -> None:
    if got != want:
        raise SystemExit(f"{what}: got {got!r}, want {want!r}")


async def measure_http(
    endpoint: str, access: str, secret: str, bucket: str, args: argparse.Namespace
) -> dict[str, Any]:
    nprefix, per, width = layout(args.count, args.prefixes)
    mid_key = key_name(args.count // 2, per, width)
    mid_prefix = f"p{nprefix // 2:04d}/"
    in_mid = min(per, args.count - (nprefix // 2) * per)
    path = f"/{bucket}"
    out: dict[str, Any] = {}
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        s3 = S3(session, endpoint, access, secret)
        page = {"list-type": "2", "max-keys": "1000"}
        # The rows written behind the server's back are objects it serves.
        _, got = await s3.call("GET", f"{path}/{mid_key}")
        expect(f"body of {mid_key}", got, BODY)

        def full_page(p: dict[str, Any]) -> None:
            expect("keys", len(p["keys"]), min(1000, args.count))

        out["first"] = await repeat(s3, path, page, args.repeat, full_page)
        print(f"# first page {out['first']}", file=sys.stderr, flush=True)

        def after_mid(p: dict[str, Any]) -> None:
            expect("keys", len(p["keys"]), min(1000, args.count - args.count // 2 - 1))
            expect("first key", p["keys"][0], key_name(args.count // 2 + 1, per, width))

        q = {**page, "start-after": mid_key}
        out["middle_start_after"] = await repeat(s3, path, q, args.repeat, after_mid)
        token = base64.urlsafe_b64encode(mid_key.encode()).decode()
        q = {**page, "continuation-token": token}
        out["middle_token"] = await repeat(s3, path, q, args.repeat, after_mid)
        print(f"# middle page {out['middle_token']}", file=sys.stderr, flush=True)

        def in_prefix(p: dict[str, Any]) -> None:
            expect("keys under prefix", len(p["keys"]), min(1000, in_mid))

        q = {**page, "prefix": mid_prefix}
        out["prefix"] = await repeat(s3, path, q, args.repeat, in_prefix)
        out["prefix"]["prefix"] = mid_prefix
        print(f"# prefix {out['prefix']}", file=sys.stderr, flush=True)

        def versions_page(p: dict[str, Any]) -> None:
            expect("versions", p["versions"], min(1000, args.count))

        out["versions"] = await repeat(
            s3, path, {"versions": "", "max-keys": "1000"}, args.repeat, versions_page
        )
        print(f"# versions page {out['versions']}", file=sys.stderr, flush=True)

        # Delimiter walk over every common prefix (run --delimiter-runs times).
        walks = []
        for _ in range(args.delimiter_runs):
            times, total, token = [], 0, ""
            while True:
                q = {**page, "delimiter": "/"}
                if token:
                    q["continuation-token"] = token
                dt, body = await s3.call("GET", path, q)
                p = parse(body)
                times.append(dt)
                total += len(p["prefixes"])
                expect("keys beside prefixes", len(p["keys"]), 0)
                if not p["truncated"]:
                    break
                token = p["token"]
            expect("common prefixes", total, nprefix)
            walks.append(summary(times))
            print(f"# delimiter walk {walks[-1]}", file=sys.stderr, flush=True)
        out["delimiter"] = {"prefixes": nprefix, "pages": walks[-1]["n"], "runs": walks}

        # The same walk with ListObjectVersions (KeyMarker paging), once.
        times, total, marker = [], 0, ""
        while True:
            q = {"versions": "", "max-keys": "1000", "delimiter": "/"}
            if marker:
                q["key-marker"] = marker
            dt, body = await s3.call("GET", path, q)
            p = parse(body)
            times.append(dt)
            total += len(p["prefixes"])
            expect("versions beside prefixes", p["versions"], 0)
            if not p["truncated"]:
                break
            marker = ET.fromstring(body).findtext(NS + "NextKeyMarker") or ""
        expect("common prefixes (versions)", total, nprefix)
        out["versions_delimiter"] = summary(times)
        print(f"# versions delimiter walk {out['versions_delimiter']}", file=sys.stderr, flush=True)

        if args.full:
            times, total, token = [], 0, ""
            while True:
                q = {**page, **({"continuation-token": token} if token else {})}
                dt, body = await s3.call("GET", path, q)
                p = parse(body)
                times.append(dt)
                total += len(p["keys"])
                if not p["truncated"]:
                    break
                token = p["token"]
            expect("all keys", total, args.count)
            out["full"] = summary(times)
            print(f"# full listing {out['full']}", file=sys.stderr, flush=True)
    return out


# ------------------------------------------------------------------ database level


def sql_cases(bucket: str, args: argparse.Namespace) -> list[tuple[str, bool, str, str | None]]:
    """(name, live, prefix, after) of the listing statements the server issues."""
    nprefix, per, width = layout(args.count, args.prefixes)
    mid_key = key_name(args.count // 2, per, width)
    mid_prefix = f"p{nprefix // 2:04d}/"
    return [
        ("objects: first page", True, "", None),
        ("objects: after a key (middle page)", True, "", mid_key),
        ("objects: prefix p.../", True, mid_prefix, None),
        ("objects: prefix, after a key in it", True, mid_prefix, mid_prefix + "k0"),
        ("objects: delimiter seek past a prefix", True, "", mid_prefix + MAXCP),
        ("versions: first page", False, "", None),
        ("versions: after a key", False, "", mid_key),
        ("versions: prefix", False, mid_prefix, None),
    ]


def explain_and_time(db: Path, bucket: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """EXPLAIN QUERY PLAN and direct SQLite time (median of 20, fetching every row,
    limit 1000) of each listing statement shape."""
    engine = sa.create_engine(f"sqlite:///{db}")
    dialect = engine.dialect
    out = []
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        c.execute("PRAGMA cache_size=-65536")
        c.execute("PRAGMA mmap_size=268435456")
        for name, live, prefix, after in sql_cases(bucket, args):
            stmt, params = listing(live, bucket, prefix, after, 1000)
            compiled = stmt.compile(dialect=dialect)
            sql = str(compiled)
            names = compiled.positiontup or []
            bound = compiled.construct_params(params)
            values = tuple(bound[n] for n in names)
            plan = [row[3] for row in c.execute("EXPLAIN QUERY PLAN " + sql, values)]
            times = []
            for _ in range(21):
                t0 = time.perf_counter()
                rows = c.execute(sql, values).fetchall()
                times.append(time.perf_counter() - t0)
            out.append(
                {
                    "case": name,
                    "rows": len(rows),
                    "median_ms": round(statistics.median(times[1:]) * 1000, 3),
                    "plan": plan,
                    "sql": " ".join(sql.split()),
                }
            )
    engine.dispose()
    return out


async def store_level(db: Path, bucket: str, args: argparse.Namespace) -> dict[str, Any]:
    """``list_latest`` as the delimiter walk calls it (a seek past one common
    prefix, at the limit the service asks for) against the limit it needs (1)."""
    nprefix, _, _ = layout(args.count, args.prefixes)
    store = await SqlMetadataStore.connect(f"sqlite:///{db}", migrate=False)
    out: dict[str, Any] = {}
    try:
        for limit in (1000, 500, 1):
            times = []
            for i in range(200):
                after = f"p{(i * 37) % nprefix:04d}/{MAXCP}"
                t0 = time.perf_counter()
                await store.list_latest(bucket, "", after, limit)
                times.append(time.perf_counter() - t0)
            out[f"seek_past_prefix_limit_{limit}"] = summary(times)
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            await store.list_latest(bucket, "", None, 1000)
            times.append(time.perf_counter() - t0)
        out["first_page_1000"] = summary(times)
    finally:
        await store.close()
    return out


# ------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="objects (1,000,000)")
    ap.add_argument("--prefixes", type=int, default=10_000, help="common prefixes (10,000)")
    ap.add_argument("--repeat", type=int, default=20, help="timed calls per median (20)")
    ap.add_argument("--delimiter-runs", type=int, default=2, help="delimiter walks (2)")
    ap.add_argument("--full", action="store_true", help="also list every key")
    ap.add_argument("--data", type=Path, help="work directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", type=Path, help="write the results here too")
    ap.add_argument("--results", type=Path, help="prepend the report to this RESULTS.md")
    args = ap.parse_args()
    if args.count <= 0 or args.prefixes <= 0:
        ap.error("--count and --prefixes must be positive")

    work = args.data or Path(tempfile.mkdtemp(prefix="tessera-listing-"))
    work.mkdir(parents=True, exist_ok=True)
    data, db = work / "data", work / "data" / "meta.db"
    access, secret = "LISTSCALE" + secrets.token_hex(6).upper(), secrets.token_urlsafe(30)
    bucket = "listing-scale"
    results: dict[str, Any] = {
        "count": args.count,
        "prefixes": layout(args.count, args.prefixes)[0],
    }
    try:
        # 1. the bucket, created as any client would, then the rows.
        with server(data, access, secret) as (endpoint, _):
            asyncio.run(create_bucket(endpoint, access, secret, bucket))
        existing = live_count(db, bucket)
        if existing == 0:
            results["populate_s"] = round(populate(db, bucket, args.count, args.prefixes), 1)
        elif existing != args.count:
            raise SystemExit(f"{db} holds {existing:,} objects in {bucket}, not {args.count:,}")
        else:
            print(f"# reusing {existing:,} objects in {db}", file=sys.stderr)
        results["meta_db_mib"] = round(db.stat().st_size / (1 << 20), 1)
        print(f"# populated: {results}", file=sys.stderr, flush=True)

        # 2. over HTTP.
        with server(data, access, secret) as (endpoint, _):
            results["http"] = asyncio.run(measure_http(endpoint, access, secret, bucket, args))

        # 3. database and store level, server stopped.
        results["sql"] = explain_and_time(db, bucket, args)
        results["store"] = asyncio.run(store_level(db, bucket, args))
    finally:
        if not args.keep and args.data is None:
            shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(report(results))
    print(text)
    if args.results:
        write_results(
            args.results, text, shlex.join(["python", "bench/listing_scale.py", *sys.argv[1:]])
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


RESULTS_HEADING = "# Tessera vs peers: S3 benchmark results"


def write_results(path: Path, text: str, command: str) -> None:
    """Prepend the report, with date, machine and git revision, under the
    results file's heading (bench/compare.py prepends its runs the same way)."""
    old = path.read_text() if path.is_file() else ""
    if old.startswith(RESULTS_HEADING):
        old = old[len(RESULTS_HEADING) :].lstrip("\n")
    rev = subprocess.run(
        ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    ).stdout.strip() or "?"  # fmt: skip
    when = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime())
    section = [
        f"## Listing at scale {when}",
        "",
        f"Command: `{command}` (git {rev}; {os.cpu_count()} CPUs, {platform.python_version()}).",
        "One `tessera serve` process, SQLite metadata; times from sending the request "
        "to having read the whole body.",
        "",
        "```",
        text.strip("\n"),
        "```",
        "",
    ]
    path.write_text(RESULTS_HEADING + "\n\n" + "\n".join(section) + "\n" + old)


async def create_bucket(endpoint: str, access: str, secret: str, bucket: str) -> None:
    async with aiohttp.ClientSession() as session:
        s3 = S3(session, endpoint, access, secret)
        listed = (await s3.call("GET", "/"))[1]
        if f"<Name>{bucket}</Name>".encode() not in listed:
            await s3.call("PUT", f"/{bucket}")


def report(r: dict[str, Any]) -> list[str]:
    """The results as the lines of a plain-text report."""
    out: list[str] = []
    out.append(f"\nbucket: {r['count']:,} objects under {r['prefixes']:,} prefixes")
    if "populate_s" in r:
        out.append(
            f"population: {r['populate_s']} s ({r['count'] / r['populate_s']:,.0f} objects/s)"
        )
    out.append(f"meta.db: {r['meta_db_mib']} MiB\n")
    h = r["http"]
    out.append(f"{'HTTP (time to whole body)':44} {'median ms':>10} {'min':>8} {'max':>8}")
    for name, label in (
        ("first", "ListObjectsV2 first page (1000 keys)"),
        ("middle_start_after", "ListObjectsV2 StartAfter=middle key"),
        ("middle_token", "ListObjectsV2 ContinuationToken=middle"),
        ("prefix", f"ListObjectsV2 Prefix={h['prefix']['prefix']}"),
        ("versions", "ListObjectVersions first page"),
    ):
        s = h[name]
        out.append(f"{label:44} {s['median_ms']:>10} {s['min_ms']:>8} {s['max_ms']:>8}")
    d = h["delimiter"]
    for i, w in enumerate(d["runs"]):
        out.append(
            f"Delimiter=/ walk {i + 1}: {d['prefixes']:,} prefixes in {w['n']} pages, "
            f"total {w['total_s']} s, per page median {w['median_ms']} ms "
            f"(min {w['min_ms']}, max {w['max_ms']})"
        )
    w = h["versions_delimiter"]
    out.append(
        f"ListObjectVersions Delimiter=/ walk: {w['n']} pages, total {w['total_s']} s, "
        f"per page median {w['median_ms']} ms (max {w['max_ms']})"
    )
    if "full" in h:
        f = h["full"]
        out.append(
            f"full listing: {f['n']} pages, total {f['total_s']} s, per page median "
            f"{f['median_ms']} ms (max {f['max_ms']})"
        )
    out.append("\nSQLite, statement alone (limit 1000, all rows fetched), EXPLAIN QUERY PLAN:")
    for c in r["sql"]:
        out.append(
            f"  {c['case']:40} {c['rows']:>5} rows {c['median_ms']:>9} ms  {' | '.join(c['plan'])}"
        )
    out.append("\nstore.list_latest (median ms):")
    for k, s in r["store"].items():
        out.append(f"  {k:40} {s['median_ms']:>9}")
    return out


if __name__ == "__main__":
    main()
