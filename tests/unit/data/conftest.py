"""Shared fixtures for the data-path tests (plain helpers: ``data_helpers``)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tessera.data.volume import LocalVolume


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
