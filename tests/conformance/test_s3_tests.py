"""ceph/s3-tests conformance, on demand: ``pytest -m conformance tests/conformance``.

Runs ``scripts/s3-tests`` (which obtains the suite, starts a fresh ``tessera serve``
on 127.0.0.1 and writes JUnit XML plus a per-area report into a new directory under
/tmp) and fails when the pass rate of the core areas (see ``scripts/s3tests_report.py``)
is below ``$S3TESTS_MIN_PASS_RATE`` percent (default 0: only report). Where the suite
comes from is the runner's business: ``$S3TESTS_SRC``, ``$S3TESTS_MIRROR`` or a clone.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "scripts" / "s3-tests"


def _report_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "s3tests_report", REPO / "scripts" / "s3tests_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.conformance
@pytest.mark.timeout(2400)
def test_s3_tests_core_pass_rate() -> None:
    threshold = float(os.environ.get("S3TESTS_MIN_PASS_RATE", "0"))
    out = Path(tempfile.mkdtemp(prefix="tessera-s3tests-"))
    done = subprocess.run(
        [sys.executable, str(RUNNER), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=2300,
    )
    print(done.stdout)
    assert done.returncode == 0, f"scripts/s3-tests failed:\n{done.stdout}\n{done.stderr}"

    report = _report_module()
    tallies = report.tally(report.read_cases(out / "junit.xml"))
    rate = report.core_rate(tallies)
    assert rate >= threshold, (
        f"core s3-tests pass rate {rate:.1f}% < S3TESTS_MIN_PASS_RATE={threshold:g}%; "
        f"details in {out}/report.txt\n{report.format_table(tallies)}"
    )
