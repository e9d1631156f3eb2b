"""Micro-benchmark of the one-node data path (SegmentStore on one LocalVolume).

For each target directory and malloc setting, a fresh child process writes
``--count`` objects of ``--size`` bytes (one after another, then all at once),
reads them back whole, then reads random ``--range-size`` ranges, and reports
MB/s (10^6 bytes/s of object data), CPU seconds per GB and peak RSS. Reads come
from the page cache (the blocks were just written; caches are not dropped, the
machine is shared). Every write fsyncs, as in production.

    python bench/data_path.py                      # /tmp and the repo's file system, both malloc settings
    python bench/data_path.py --size 64M --count 2 --dirs /tmp --malloc tuned

The source yields 1 MiB ``bytes`` chunks (a fresh object each, as aiohttp does),
each made unique so segments never deduplicate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TUNED = {"MALLOC_MMAP_THRESHOLD_": "67108864", "MALLOC_TRIM_THRESHOLD_": "268435456"}
CHUNK = 1 << 20


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def source(size: int, pool: bytes, tag: int) -> AsyncIterator[bytes]:
    view = memoryview(pool)
    for i, off in enumerate(range(0, size, CHUNK)):
        n = min(CHUNK, size - off)
        start = (i * 7919) % (len(pool) - CHUNK)
        yield f"{tag:08x}{i:08x}".encode() + view[start + 16 : start + n]


async def child(args: argparse.Namespace) -> dict[str, object]:
    sys.path.insert(0, str(REPO / "src"))
    from tessera.common.ranges import ByteRange
    from tessera.data.store import SegmentStore
    from tessera.data.volume import LocalVolume

    pool = os.urandom(16 << 20)
    root = Path(tempfile.mkdtemp(prefix="tessera-bench-", dir=args.dir))
    out: dict[str, object] = {"dir": args.dir, "malloc": args.malloc}
    out["rss_start_mb"] = round(rss_mb(), 1)
    store = SegmentStore(
        [LocalVolume(root / "vol", "bench")],
        segment_size=args.segment,
        write_concurrency=args.concurrency,
    )
    size, count = args.size, args.count
    total = size * count
    try:
        # sequential writes
        t, c = time.perf_counter(), cpu()
        results = [await store.write(source(size, pool, i)) for i in range(count)]
        dt = time.perf_counter() - t
        out["write_MBps"] = round(total / dt / 1e6)
        out["write_cpu_s_per_GB"] = round((cpu() - c) / (total / 1e9), 2)
        out["rss_after_write_mb"] = round(rss_mb(), 1)
        # concurrent writes
        t = time.perf_counter()
        more = await asyncio.gather(
            *(store.write(source(size, pool, 100 + i)) for i in range(count))
        )
        out["write_concurrent_MBps"] = round(total / (time.perf_counter() - t) / 1e6)
        out["rss_after_concurrent_write_mb"] = round(rss_mb(), 1)
        # whole reads
        t, c = time.perf_counter(), cpu()
        got = 0
        for r in results:
            async for piece in store.read(r.inline, r.manifest):
                got += len(piece)
        assert got == total
        dt = time.perf_counter() - t
        out["read_MBps"] = round(total / dt / 1e6)
        out["read_cpu_s_per_GB"] = round((cpu() - c) / (total / 1e9), 2)
        # range reads
        rng = random.Random(1)
        n = args.ranges
        t = time.perf_counter()
        got = 0
        for _ in range(n):
            r = rng.choice(results)
            a = rng.randrange(0, size - args.range_size)
            async for piece in store.read(None, r.manifest, ByteRange(a, a + args.range_size)):
                got += len(piece)
        dt = time.perf_counter() - t
        out["range_read_MBps"] = round(got / dt / 1e6)
        out["range_reads_per_s"] = round(n / dt)
        out["rss_peak_mb"] = round(rss_mb(), 1)
        del more
    finally:
        await store.close()
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=parse_size, default=256 << 20)
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--segment", type=parse_size, default=8 << 20)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--ranges", type=int, default=200)
    p.add_argument("--range-size", type=parse_size, default=1 << 20)
    p.add_argument("--dirs", default=f"/tmp,{REPO / 'bench'}")
    p.add_argument("--malloc", choices=["default", "tuned", "both"], default="both")
    p.add_argument("--dir", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args))))
        return
    mallocs = ["default", "tuned"] if args.malloc == "both" else [args.malloc]
    for d in args.dirs.split(","):
        dev = os.stat(d).st_dev
        print(f"# {d}: device {os.major(dev)}:{os.minor(dev)}", file=sys.stderr)
        for m in mallocs:
            env = {k: v for k, v in os.environ.items() if k not in TUNED}
            if m == "tuned":
                env.update(TUNED)
            cmd = [sys.executable, __file__, "--child", "--dir", d, "--malloc", m]
            for opt in ("size", "count", "segment", "concurrency", "ranges", "range_size"):
                cmd += [f"--{opt.replace('_', '-')}", str(getattr(args, opt))]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if proc.returncode:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(proc.returncode)
            print(proc.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
