"""Plain helpers of the data-path tests (a module of its own: ``conftest`` is a
name every test directory has, so importing from it depends on collection order)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path


def chunked(data: bytes, sizes: Callable[[], int]) -> AsyncIterator[bytes]:
    """A byte source yielding ``data`` in chunks of the sizes ``sizes()`` returns."""

    async def gen() -> AsyncIterator[bytes]:
        pos = 0
        while pos < len(data):
            n = max(1, sizes())
            yield data[pos : pos + n]
            pos += n

    return gen()


def random_chunks(data: bytes, seed: int, biggest: int) -> AsyncIterator[bytes]:
    rng = random.Random(seed)
    return chunked(data, lambda: rng.randint(1, biggest))


def block_files(root: Path) -> list[str]:
    """Names of the visible block files under a volume root."""
    return sorted(p.name for p in (root / "blocks").glob("*/*"))
