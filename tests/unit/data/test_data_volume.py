"""LocalVolume: the Volume contract on a directory."""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import block_files

from tessera.common.checksums import crc32c_value
from tessera.data import volume as volume_mod
from tessera.data.volume import MTIME_STEP, BlockNotFound, LocalVolume, check_name
from tessera.model.errors import DataCorruption, InvalidArgument, StorageFull

MakeVolume = Callable[..., LocalVolume]
NAME = "abc123" + "0" * 58


def tmp_files(vol: LocalVolume) -> list[str]:
    return os.listdir(vol.root / "tmp")


async def test_put_get_stat_delete(make_volume: MakeVolume) -> None:
    vol = make_volume()
    data = os.urandom(200_000)
    stored = await vol.put(NAME, data)
    assert stored.crc32c == crc32c_value(data) and stored.created
    assert (vol.root / "blocks" / "abc" / NAME).is_file()
    assert tmp_files(vol) == []
    assert await vol.get(NAME) == data
    assert await vol.get(NAME, 70_000, 140_001) == data[70_000:140_001]
    assert await vol.get(NAME, 5, crc32c=stored.crc32c) == data[5:]
    size, mtime = await vol.stat(NAME) or (0, 0.0)
    assert size == len(data) and mtime == pytest.approx(stored.mtime, abs=1e-6)
    assert await vol.delete(NAME) is True
    assert await vol.delete(NAME) is False
    assert await vol.stat(NAME) is None
    with pytest.raises(BlockNotFound):
        await vol.get(NAME)


async def test_memoryview_and_empty_data(make_volume: MakeVolume) -> None:
    vol = make_volume()
    buf = bytearray(os.urandom(1000))
    await vol.put("aaa1", memoryview(buf)[100:900])
    assert await vol.get("aaa1") == bytes(buf[100:900])
    await vol.put("aaa2", b"")
    assert await vol.get("aaa2") == b""


async def test_flipped_byte_on_disk_is_detected(make_volume: MakeVolume) -> None:
    vol = make_volume()
    data = os.urandom(300_000)
    await vol.put(NAME, data)
    path = vol.root / "blocks" / "abc" / NAME
    raw = bytearray(path.read_bytes())
    raw[200_000] ^= 1
    path.write_bytes(raw)
    with pytest.raises(DataCorruption) as info:
        await vol.get(NAME)
    assert info.value.details["volume"] == "v0"
    assert await vol.get(NAME, 0, 65536) == data[:65536]  # other chunks still read
    with pytest.raises(DataCorruption):
        await vol.get(NAME, 0, 10, crc32c=crc32c_value(data) ^ 1)


async def test_restore_of_identical_block_refreshes_mtime_strictly(make_volume: MakeVolume) -> None:
    vol = make_volume()
    data = os.urandom(1000)
    first = await vol.put(NAME, data)
    again = [await vol.put(NAME, data) for _ in range(3)]
    assert [s.created for s in again] == [False] * 3
    mtimes = [first.mtime] + [s.mtime for s in again]
    assert all(b - a >= MTIME_STEP / 1e9 * 0.99 for a, b in itertools.pairwise(mtimes))
    stat = await vol.stat(NAME)
    assert stat is not None and stat[1] == pytest.approx(mtimes[-1], abs=1e-6)
    # cleanup of the first writer keeps the block others stored since
    assert await vol.delete(NAME, older_than=first.mtime + MTIME_STEP / 2e9) is False
    assert await vol.delete(NAME, older_than=again[-1].mtime + MTIME_STEP / 2e9) is True


async def test_older_than_keeps_blocks_written_at_or_after(make_volume: MakeVolume) -> None:
    vol = make_volume()
    stored = await vol.put(NAME, b"x" * 10)
    assert await vol.delete(NAME, older_than=stored.mtime) is False
    assert await vol.delete(NAME, older_than=time.time() + 10) is True


async def test_corrupt_existing_block_is_replaced(make_volume: MakeVolume) -> None:
    vol = make_volume()
    data = os.urandom(5000)
    await vol.put(NAME, data)
    path = vol.root / "blocks" / "abc" / NAME
    path.write_bytes(b"garbage")
    stored = await vol.put(NAME, data)
    assert stored.created is False
    assert await vol.get(NAME) == data


async def test_concurrent_puts_of_one_block_create_it_once(make_volume: MakeVolume) -> None:
    vol = make_volume()
    data = os.urandom(100_000)
    results = await asyncio.gather(*(vol.put(NAME, data) for _ in range(8)))
    assert sum(r.created for r in results) == 1
    assert await vol.get(NAME) == data
    assert tmp_files(vol) == []


@pytest.mark.parametrize(
    "name", ["", "/", "../x", "..", "abc/../../etc", "abc/def", "ABC123", "ab", "x" * 10, "abc\0"]
)
async def test_invalid_names_are_rejected(make_volume: MakeVolume, name: str) -> None:
    vol = make_volume()
    with pytest.raises(InvalidArgument):
        check_name(name)
    for call in (vol.put(name, b"x"), vol.get(name), vol.delete(name), vol.stat(name)):
        with pytest.raises(InvalidArgument):
            await call
    assert block_files(vol.root) == []


def test_valid_names() -> None:
    for name in ("abc", "0" * 64, "0" * 64 + ".3", "abcdef_p1-x"):
        assert check_name(name) == name


async def test_failure_mid_write_leaves_nothing(
    make_volume: MakeVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = make_volume()

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(volume_mod.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        await vol.put(NAME, os.urandom(100_000))
    monkeypatch.undo()
    assert block_files(vol.root) == [] and tmp_files(vol) == []
    assert await vol.stat(NAME) is None
    assert [n async for n in vol.blocks()] == []


def test_crash_mid_write_leaves_nothing_visible(tmp_path: Path) -> None:
    """A process killed between writing and publishing a block: nothing visible;
    the leftover in tmp/ is removed when the volume is opened once it is stale."""
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from tessera.data import volume
        from tessera.data.volume import LocalVolume
        vol = LocalVolume({str(tmp_path)!r}, "v")
        volume.os.fsync = lambda fd: os._exit(3)   # die right after writing the data
        asyncio.run(vol.put({NAME!r}, os.urandom(300_000)))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == 3, proc.stderr.decode()
    assert block_files(tmp_path) == []
    leftovers = list((tmp_path / "tmp").iterdir())
    assert len(leftovers) == 1
    vol = LocalVolume(tmp_path, "v")
    assert list((tmp_path / "tmp").iterdir()) == leftovers  # too fresh to be sure
    old = time.time() - 2 * volume_mod.STALE_TMP_AGE
    os.utime(leftovers[0], (old, old))
    vol._pool.shutdown()
    vol = LocalVolume(tmp_path, "v")
    assert list((tmp_path / "tmp").iterdir()) == []
    vol._pool.shutdown()


async def test_enospc_is_storage_full_and_leaves_no_tmp(
    make_volume: MakeVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = make_volume()
    real = os.write
    written = 0

    def filling_write(fd: int, data: bytes) -> int:
        nonlocal written
        if written > 50_000:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real(fd, data[:30_000])
        written += n
        return n

    monkeypatch.setattr(volume_mod.os, "write", filling_write)
    with pytest.raises(StorageFull):
        await vol.put(NAME, os.urandom(200_000))
    monkeypatch.undo()
    assert tmp_files(vol) == [] and block_files(vol.root) == []


async def test_min_free_reserve(make_volume: MakeVolume) -> None:
    vol = make_volume(min_free=1 << 62)
    with pytest.raises(StorageFull):
        await vol.put(NAME, b"x")
    assert (await vol.capacity())[1] == 0


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


async def test_real_disk_full_on_tmpfs(tiny_tmpfs: Path, make_volume: MakeVolume) -> None:
    vol = make_volume("full", root=tiny_tmpfs)
    total, free = await vol.capacity()
    assert 0 < free <= total <= 2 << 20
    with pytest.raises(StorageFull):
        await vol.put(NAME, os.urandom(2 << 20))
    assert tmp_files(vol) == [] and block_files(tiny_tmpfs) == []
    await vol.put("def0", b"small")  # the volume still works
    assert await vol.get("def0") == b"small"


async def test_blocks_lists_sorted_names(make_volume: MakeVolume) -> None:
    vol = make_volume()
    names = ["fff0", "abc2", "abc1", "0001.2", "abd9"]
    for n in names:
        await vol.put(n, n.encode())
    (vol.root / "blocks" / "abc" / "not-a-block").write_bytes(b"")
    assert [n async for n in vol.blocks()] == sorted(names)
    assert [n async for n in vol.blocks("abc")] == ["abc1", "abc2"]
    assert [n async for n in vol.blocks("ab")] == ["abc1", "abc2", "abd9"]
