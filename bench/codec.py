"""Erasure-coding throughput of both codec kernels (MB/s = 10^6 bytes of segment per second).

Run: ``.venv/bin/python bench/codec.py [k m]``. Decode loses the first m data fragments
(the worst case: full reconstruction). Set MALLOC_MMAP_THRESHOLD_=67108864
MALLOC_TRIM_THRESHOLD_=268435456 for numbers comparable with the notes.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable

from tessera.data import codec


def rate(fn: Callable[[], object], size: int, min_time: float = 0.4) -> float:
    """Median MB/s of 3 trials, each repeating ``fn`` for at least ``min_time`` s."""
    fn()
    trials = []
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_time:
            fn()
            n += 1
        trials.append(n * size / elapsed / 1e6)
    return sorted(trials)[1]


def main() -> None:
    k, m = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) == 3 else (4, 2)
    kernels: list[codec.Kernel] = [codec.PythonKernel()]
    if (path := codec.find_isal()) is not None:
        kernels.insert(0, codec.IsalKernel(path))
    print(f"k={k} m={m}  default kernel: {codec.DEFAULT.name}")
    print(f"{'kernel':8} {'size':>6} {'encode MB/s':>12} {'decode MB/s':>12}")
    for size_mib in (1, 8):
        size = size_mib << 20
        data = os.urandom(size)
        for kern in kernels:
            frags = codec.encode(data, k, m, kern)
            have = {i: f for i, f in enumerate(frags) if i >= m}
            assert codec.decode(have, k, m, size, kern) == data
            enc = rate(functools.partial(codec.encode, data, k, m, kern), size)
            dec = rate(functools.partial(codec.decode, have, k, m, size, kern), size)
            print(f"{kern.name:8} {size_mib:>4}Mi {enc:12,.0f} {dec:12,.0f}")


if __name__ == "__main__":
    main()
