"""bench/compare.py's bookkeeping: CPU steal from /proc/stat, best-of-rounds merging,
the table's rows and ratios; bench/bench_peers.py's degrade command on real directories."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
pytest.importorskip("httptools")

import compare
from bench_peers import degrade_command, find_exe
from compare import (
    Cell,
    PeerResult,
    best_of,
    build_table,
    cpu_jiffies,
    steal_line,
    write_results,
)

ROWS = [("small GET", "small GET", "ops/s"), ("small HEAD", "small HEAD", "ops/s")]
INFO = {
    "cpus": 2,
    "cpu_model": "cpu",
    "memory_gib": 1,
    "kernel": "k",
    "python": "CPython",
    "httptools": "0",
    "loadavg_at_start": [0.1, 0.2, 0.3],
}


def test_steal_and_total_come_from_the_cpu_line(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 5 20 800 10 1 4 60 30 0\ncpu0 50 2 10 400 5 0 2 30 15 0\n")
    assert cpu_jiffies(stat) == (60.0, 1000.0)
    stat.write_text("intr 1 2 3\n")
    assert cpu_jiffies(stat) == (0.0, 0.0)
    assert cpu_jiffies(tmp_path / "missing") == (0.0, 0.0)


def test_this_machine_reports_some_cpu_time() -> None:
    steal, total = cpu_jiffies()
    if Path("/proc/stat").is_file():
        assert total > 0 and 0 <= steal <= total


def _peer(name: str, rates: dict[str, float | None], *notes: str, steal: float = 0.0) -> PeerResult:
    cells = {
        op: Cell(rate=r, error=None if r else "boom", server_cpu=1.0) for op, r in rates.items()
    }
    return PeerResult(name, "1.0", cells, list(notes), steal)


def test_best_of_rounds_takes_each_ops_best_and_keeps_every_rate() -> None:
    round1 = [
        _peer("tessera", {"small GET": 4000.0, "small HEAD": None}, "slow start", steal=2.0),
        _peer("seaweedfs", {"small GET": 3000.0, "small HEAD": 6000.0}),
    ]
    round2 = [  # the second round runs the peers in the other order
        _peer("seaweedfs", {"small GET": 3500.0, "small HEAD": 5000.0}, steal=9.5),
        _peer("tessera", {"small GET": 3800.0, "small HEAD": 5500.0}),
    ]
    tess, weed = best_of([round1, round2])
    assert [tess.name, weed.name] == ["tessera", "seaweedfs"]
    assert tess.cells["small GET"].rate == 4000.0
    assert tess.cells["small HEAD"].rate == 5500.0  # the failed round does not win
    assert tess.rates == {"small GET": [4000.0, 3800.0], "small HEAD": [None, 5500.0]}
    assert weed.cells["small HEAD"].rate == 6000.0
    assert tess.notes == ["round 1: slow start"]
    assert (tess.steal_pct, weed.steal_pct) == (2.0, 9.5)
    table = build_table([tess, weed], ROWS)
    assert table[1][:5] == ["small GET", "ops/s", "4,000", "3,500", "1.14"]
    assert table[2][:5] == ["small HEAD", "ops/s", "5,500", "6,000", "0.92"]
    assert steal_line([tess, weed]) == "tessera 2.0%, seaweedfs 9.5%"


def test_an_op_that_failed_in_every_round_stays_an_error() -> None:
    (only,) = best_of([[_peer("moto", {"small GET": None})], [_peer("moto", {"small GET": None})]])
    assert only.cells["small GET"].rate is None
    assert build_table([only], ROWS[:1])[1][2] == "err"


def test_one_round_is_passed_through_unchanged() -> None:
    peer = _peer("tessera", {"small GET": 10.0}, "note")
    (same,) = best_of([[peer]])
    assert same.cells == peer.cells and same.notes == ["note"]


def test_results_file_says_how_figures_were_taken(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    peer = _peer("tessera", {"small GET": 1.0}, steal=3.5)
    write_results(path, "first", "cmd --rounds 3", INFO, [peer], "| t1 |", rounds=3)
    write_results(path, "second", "cmd", INFO, [peer], "| t2 |")
    text = path.read_text()
    assert text.startswith("# Tessera vs peers") and text.count("# Tessera vs peers") == 1
    newest, older = text.split("## Run first")
    assert "## Run second" in newest and "best of" not in newest
    assert "Each figure is the best of 3 rounds." in older
    assert "during each peer's run: tessera 3.5%." in older


def test_ec_figures_stand_alone_and_degraded_get_is_a_row(tmp_path: Path) -> None:
    tess = _peer("tessera", {"large PUT": 800.0, "large GET": 1800.0})
    ec = _peer(
        "tessera-ec", {"large PUT": 500.0, "large GET": 1300.0, "large GET degraded": 1200.0}
    )
    weed = _peer("seaweedfs", {"large PUT": 300.0, "large GET": 1600.0})
    rows = [r for r in compare.ROWS if r[0] in ("large PUT", "large GET", "degraded GET")]
    head, put, get, degraded = build_table([tess, ec, weed], rows)
    # no tessera/tessera-ec ratio: another policy of the same server, not a peer
    assert head[:6] == ["op", "unit", "tessera", "tessera-ec", "seaweedfs", "tessera/seaweedfs"]
    assert put[:6] == ["large PUT", "MB/s", "800", "500", "300", "2.67"]
    assert degraded[:6] == ["degraded GET", "MB/s", "-", "1,200", "-", "-"]
    assert get[5] == "1.12"
    path = tmp_path / "RESULTS.md"
    write_results(path, "now", "cmd", INFO, [tess, ec, weed], "| t |")
    assert "- tessera-ec: one process, ec/k=4,m=2 over 6 disk directories" in path.read_text()
    write_results(path, "later", "cmd", INFO, [tess, weed], "| t |")
    assert path.read_text().count("- tessera-ec:") == 1


def test_degrade_command_makes_every_block_access_fail(tmp_path: Path) -> None:
    disks = [tmp_path / f"disk {i}" for i in range(3)]  # a space, to check the quoting
    for d in disks:
        (d / "blocks" / "ab").mkdir(parents=True)
        (d / "blocks" / "ab" / "block").write_bytes(b"x")
    subprocess.run(degrade_command(disks[:2]), shell=True, check=True)
    for d in disks[:2]:
        assert (d / "blocks").is_file()
        assert (d / "blocks.off" / "ab" / "block").read_bytes() == b"x"  # kept, only moved
        with pytest.raises(NotADirectoryError):
            (d / "blocks" / "ab" / "block").read_bytes()
    assert (disks[2] / "blocks" / "ab" / "block").read_bytes() == b"x"


def test_a_relative_executable_path_is_made_absolute(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "bin").mkdir()
    exe = tmp_path / "bin" / "weed"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    assert find_exe("bin/weed", "weed") == str(exe)  # servers start with another cwd
    assert find_exe(None, "weed", str(exe)) == str(exe)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert find_exe("weed", "weed") == str(exe)  # a bare name is looked up on PATH
