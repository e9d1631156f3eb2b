"""Erasure-coded data path benchmark: ec/k=4,m=2, PUT / GET / degraded GET.

Two setups, each measured with ``bench/s3load.py --workloads large`` (4 x 256
MiB, 4 in flight; every byte read back is verified):

* ``one``: one ``tessera serve`` process with six disk directories (policy auto:
  ec/k=4,m=2). Degraded: two disks made unreadable (their ``blocks`` directory
  replaced by a file, so every access is an I/O error: "disk gone", not "data
  missing", hence no rebuild traffic during the measurement).
* ``cluster``: ``tessera dev-cluster --servers 6`` (six chunk server processes and
  a gateway). Degraded: two chunk servers killed with SIGKILL; the gateway
  notices within the heartbeat timeout.

    python bench/durable.py [--setups one,cluster] [--quick] [--json FILE]

Server CPU and peak RSS are the gateway's (or the one server's); in the cluster
setup the chunk servers' own CPU is not included.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
KEYS = ("BENCHROOTKEY00000001", "bench-root-secret-0123456789abcdefghij")


def _wait(log: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, log.read_text(errors="replace")) if log.exists() else None
        if m:
            return m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"not ready: {log}\n{log.read_text(errors='replace')[-3000:]}")


def _s3load(endpoint: str, pid: int, degrade: str, quick: bool, out: Path, wait: float) -> dict:
    cmd = [
        PY, str(HERE / "s3load.py"), "--workloads", "large",
        "--endpoint", endpoint, "--access-key", KEYS[0], "--secret-key", KEYS[1],
        "--server-pid", str(pid), "--degrade", degrade, "--degrade-wait", str(wait),
        "--json", str(out),
    ]  # fmt: skip
    if quick:
        cmd += ["--large-size", str(32 << 20)]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESSERA_", "AWS_"))}
    env.update(TESSERA_ROOT_ACCESS_KEY=KEYS[0], TESSERA_ROOT_SECRET_KEY=KEYS[1])
    env["TESSERA_STORAGE_SCRUB_RATE"] = "0"  # no background reads during the measurement
    return env


def one(tmp: Path, quick: bool, workers: int = 1) -> dict:
    disks = [tmp / f"disk{i}" for i in range(6)]
    log = tmp / "serve.log"
    with log.open("wb") as f:
        proc = subprocess.Popen(
            [PY, "-m", "tessera.cli.main", "serve", "--data", str(tmp / "data"),
             "--listen", "127.0.0.1:0", "--disks", ",".join(map(str, disks)),
             "--workers", str(workers)],
            stdout=f, stderr=subprocess.STDOUT, env=_env(),
        )  # fmt: skip
    try:
        endpoint = _wait(log, r"Tessera listening on (\S+)", proc)
        gone = " && ".join(
            f"mv {d}/blocks {d}/blocks.off && touch {d}/blocks" for d in (disks[1], disks[4])
        )
        return _s3load(endpoint, proc.pid, gone, quick, tmp / "one.json", 0.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def cluster(tmp: Path, quick: bool) -> dict:
    log = tmp / "cluster.log"
    env = _env()
    with log.open("wb") as f:
        proc = subprocess.Popen(
            [PY, "-m", "tessera.cli.main", "dev-cluster", "--servers", "6",
             "--data", str(tmp / "c"), "--listen", "127.0.0.1:0"],
            stdout=f, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        endpoint = _wait(log, r"Tessera listening on (\S+)", proc)
        gw = subprocess.run(
            ["pgrep", "-f", f"gateway --meta sqlite:///{tmp / 'c'}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()[0]  # fmt: skip
        victims = [
            subprocess.run(
                ["pgrep", "-f", f"chunkserver --data {tmp / 'c'}/cs{i}/disk0"],
                capture_output=True, text=True, check=True,
            ).stdout.split()[0]
            for i in (1, 4)
        ]  # fmt: skip
        kill = f"kill -9 {' '.join(victims)}"
        return _s3load(endpoint, int(gw), kill, quick, tmp / "cluster.json", 3.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--setups", default="one,cluster")
    p.add_argument("--quick", action="store_true", help="4 x 32 MiB")
    p.add_argument("--workers", type=int, default=1, help="setup one: serve --workers [1]")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    results = {}
    for setup in args.setups.split(","):
        with tempfile.TemporaryDirectory(prefix=f"tessera-durable-{setup}-") as d:
            print(f"=== {setup} ===", flush=True)
            if setup == "one":
                results[setup] = one(Path(d), args.quick, args.workers)
            else:
                results[setup] = cluster(Path(d), args.quick)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
