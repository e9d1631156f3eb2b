"""Shared helpers for the data-path tests."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tessera.data.volume import LocalVolume


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


@pytest.fixture
def make_volume(tmp_path: Path) -> Iterator[Callable[..., LocalVolume]]:
    made: list[LocalVolume] = []

    def make(
        name: str = "v0", *, root: Path | None = None, min_free: int = 0, direct_io: bool = False
    ) -> LocalVolume:
        vol = LocalVolume(root or tmp_path / name, name, min_free=min_free, direct_io=direct_io)
        made.append(vol)
        return vol

    yield make
    for vol in made:
        vol._pool.shutdown(wait=True)


@pytest.fixture
def payload() -> Callable[[int], bytes]:
    return os.urandom


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Path:
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("cannot run mount")
    if proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], timeout=10, check=False)
