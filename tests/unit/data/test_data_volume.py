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
from data_helpers import block_files

from tessera.common.checksums import crc32c_value
from tessera.data import blockfile
from tessera.data import trash as trash_mod
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


# -- two-phase delete (trash) ---------------------------------------------------


def delayed(vol: LocalVolume, trash_delay: float) -> LocalVolume:
    vol.trash_delay = trash_delay
    return vol


def trash_files(vol: LocalVolume) -> list[str]:
    return sorted(os.listdir(vol.root / "trash"))


async def test_open_creates_trash_and_quarantine_not_listed(make_volume: MakeVolume) -> None:
    vol = make_volume()
    assert (vol.root / "trash").is_dir() and (vol.root / "quarantine").is_dir()
    await vol.put(NAME, b"x")
    assert await vol.delete(NAME) is True
    await vol.put("abc1", b"y")
    assert [n async for n in vol.blocks()] == ["abc1"]


async def test_delete_moves_to_trash_and_undelete_restores(make_volume: MakeVolume) -> None:
    vol = delayed(make_volume(), 3600)
    data = os.urandom(100_000)
    stored = await vol.put(NAME, data)
    before = time.time()
    assert await vol.delete(NAME) is True
    # gone from every read path at once ...
    assert await vol.stat(NAME) is None
    assert [n async for n in vol.blocks()] == []
    with pytest.raises(BlockNotFound):
        await vol.get(NAME)
    assert await vol.delete(NAME) is False
    # ... but kept in the trash under <name>.<deadline>
    (entry,) = trash_files(vol)
    name, deadline = entry.rsplit(".", 1)
    assert name == NAME and before + 3600 <= int(deadline) <= time.time() + 3601
    count, size = await vol.trash_stats()
    assert count == 1 and size == (vol.root / "trash" / entry).stat().st_size > len(data)
    # restored, durably and as if stored now (older_than decided before keeps it)
    assert await vol.undelete(NAME) is True
    assert await vol.get(NAME) == data
    stat = await vol.stat(NAME)
    assert stat is not None and stat[1] > stored.mtime
    assert await vol.delete(NAME, older_than=stored.mtime + MTIME_STEP / 2e9) is False
    assert await vol.trash_stats() == (0, 0)
    assert await vol.undelete(NAME) is False  # present: nothing to do


async def test_undelete_never_replaces_a_present_block_and_takes_the_newest(
    make_volume: MakeVolume,
) -> None:
    vol = make_volume()
    assert await vol.undelete(NAME) is False  # never deleted
    await vol.put(NAME, b"first")
    await vol.delete(NAME)
    stored = await vol.put(NAME, b"second")  # a put after a delete works normally
    assert stored.created is True
    assert await vol.undelete(NAME) is False
    assert await vol.get(NAME) == b"second"
    assert len(trash_files(vol)) == 1  # the trashed copy stays
    await vol.delete(NAME)
    assert len(trash_files(vol)) == 2  # same deadline second: never overwritten
    assert await vol.undelete(NAME) is True
    assert await vol.get(NAME) == b"second"
    await vol.delete(NAME)
    assert await vol.undelete(NAME) is True
    assert await vol.get(NAME) == b"second"  # the newest trashed copy again
    assert await vol.trash_stats() == (1, len(blockfile.encode(b"first")))


async def test_empty_trash_respects_deadlines(make_volume: MakeVolume) -> None:
    vol = delayed(make_volume(), 100)
    for n in ("aaa1", "aaa2"):
        await vol.put(n, n.encode())
    now = time.time()
    await vol.delete("aaa1")
    vol.trash_delay = 1000
    await vol.delete("aaa2")
    assert await vol.empty_trash() == 0  # nothing is due yet
    assert await vol.empty_trash(now=now + 50) == 0
    assert await vol.empty_trash(now=now + 500) == 1
    assert await vol.undelete("aaa1") is False
    assert await vol.empty_trash(now=now + 500) == 0
    assert await vol.undelete("aaa2") is True
    assert await vol.empty_trash(now=now + 5000) == 0
    assert await vol.get("aaa2") == b"aaa2"
    await vol.delete("aaa2")
    assert await vol.empty_trash(now=now + 5000) == 1
    assert trash_files(vol) == [] and await vol.trash_stats() == (0, 0)


async def test_empty_trash_ignores_foreign_files(make_volume: MakeVolume) -> None:
    vol = make_volume()
    for odd in ("README", "abc.notanumber", "ABC.1"):
        (vol.root / "trash" / odd).write_bytes(b"x")
    assert await vol.empty_trash(now=time.time() + 1e9) == 0
    assert await vol.trash_stats() == (0, 0)
    assert len(trash_files(vol)) == 3


async def test_zero_trash_delay_removes_at_once(make_volume: MakeVolume) -> None:
    vol = delayed(make_volume(), 0)
    await vol.put(NAME, b"x")
    assert await vol.delete(NAME) is True
    assert trash_files(vol) == [] and block_files(vol.root) == []
    assert await vol.undelete(NAME) is False


async def test_delete_older_than_keeps_newer_blocks_out_of_the_trash(
    make_volume: MakeVolume,
) -> None:
    vol = make_volume()
    old = await vol.put("aaa1", b"old")
    new = await vol.put("aaa2", b"new")
    cut = (old.mtime + new.mtime) / 2
    assert old.mtime < cut < new.mtime
    assert await vol.delete("aaa1", older_than=cut) is True
    assert await vol.delete("aaa2", older_than=cut) is False
    assert await vol.get("aaa2") == b"new"
    assert [e.split(".")[0] for e in trash_files(vol)] == ["aaa1"]


def test_trash_delay_must_not_be_negative(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalVolume(tmp_path, "v", trash_delay=-1)


# -- verification and quarantine -------------------------------------------------


def block_path(vol: LocalVolume, name: str = NAME) -> Path:
    return vol.root / "blocks" / name[:3] / name


def flip_byte(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x10
    path.write_bytes(raw)


async def assert_quarantined(vol: LocalVolume, name: str = NAME) -> None:
    assert await vol.stat(name) is None
    with pytest.raises(BlockNotFound):
        await vol.get(name)
    assert name not in [n async for n in vol.blocks()]
    assert name in await vol.quarantined()
    assert await vol.verify(name) is None


async def test_verify_good_and_missing(make_volume: MakeVolume) -> None:
    vol = make_volume()
    data = os.urandom(300_000)
    await vol.put(NAME, data)
    await vol.put("aaa0", b"")
    assert await vol.verify(NAME) is True
    assert await vol.verify("aaa0") is True
    assert await vol.verify("fff0") is None
    assert await vol.get(NAME) == data
    assert await vol.quarantined() == []
    with pytest.raises(InvalidArgument):
        await vol.verify("../x")


@pytest.mark.parametrize("damage", ["data-byte", "last-data-byte", "trailer", "truncate", "extend"])
async def test_verify_quarantines_a_corrupt_block(make_volume: MakeVolume, damage: str) -> None:
    vol = make_volume()
    data = os.urandom(300_000)
    await vol.put(NAME, data)
    await vol.put("abc0", b"neighbour")
    path = block_path(vol)
    raw = path.read_bytes()
    if damage == "data-byte":
        flip_byte(path, 200_000)
    elif damage == "last-data-byte":
        flip_byte(path, len(data) - 1)
    elif damage == "trailer":
        flip_byte(path, len(data) + 2)
    elif damage == "truncate":
        path.write_bytes(raw[:250_000])
    else:
        path.write_bytes(raw + b"\0")
    assert await vol.verify(NAME) is False
    await assert_quarantined(vol)
    (entry,) = os.listdir(vol.root / "quarantine")
    assert entry.rsplit(".", 1)[0] == NAME
    assert abs(int(entry.rsplit(".", 1)[1]) - time.time()) < 3600
    # kept for an operator: emptying the trash does not touch it
    assert await vol.empty_trash(now=time.time() + 1e9) == 0
    assert os.listdir(vol.root / "quarantine") == [entry]
    # the neighbour is untouched; the name can be stored again (a healer's rebuild)
    assert await vol.verify("abc0") is True
    assert (await vol.put(NAME, data)).created is True
    assert await vol.verify(NAME) is True
    assert await vol.get(NAME) == data


async def test_quarantine_keeps_every_copy(make_volume: MakeVolume) -> None:
    vol = make_volume()
    for _ in range(2):
        await vol.put(NAME, b"x" * 1000)
        flip_byte(block_path(vol), 10)
        assert await vol.verify(NAME) is False
    assert await vol.quarantined() == [NAME, NAME]
    assert len(os.listdir(vol.root / "quarantine")) == 2


async def test_verify_rechecks_a_block_replaced_while_checked(
    make_volume: MakeVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put that replaces a corrupt block during its check wins: the new, good
    file is checked again and kept; nothing is quarantined."""
    vol = make_volume()
    data = os.urandom(100_000)
    await vol.put(NAME, data)
    flip_byte(block_path(vol), 5)
    real = volume_mod.fault
    calls = 0

    def fault_then_repair(fd: int) -> Exception | None:
        nonlocal calls
        calls += 1
        result = real(fd)
        if calls == 1:  # as a put of the same name would: a new file, renamed over
            tmp = vol.root / "tmp" / "repair"
            tmp.write_bytes(blockfile.encode(data))
            os.replace(tmp, block_path(vol))
        return result

    monkeypatch.setattr(volume_mod, "fault", fault_then_repair)
    assert await vol.verify(NAME) is True
    assert calls == 2
    assert await vol.quarantined() == []
    assert await vol.get(NAME) == data


async def test_verify_quarantines_despite_a_refresh_while_checked(
    make_volume: MakeVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-store of identical data (footer matches) only refreshes the mtime of the
    corrupt file; that does not repair it, so it is still quarantined."""
    vol = make_volume()
    data = os.urandom(100_000)
    await vol.put(NAME, data)
    flip_byte(block_path(vol), 5)
    real = volume_mod.fault

    def fault_then_refresh(fd: int) -> Exception | None:
        result = real(fd)
        vol._refresh(block_path(vol))
        return result

    monkeypatch.setattr(volume_mod, "fault", fault_then_refresh)
    assert await vol.verify(NAME) is False
    await assert_quarantined(vol)


async def test_verify_treats_eio_as_corrupt_and_raises_other_errors(
    make_volume: MakeVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = make_volume()
    await vol.put(NAME, b"x" * 1000)
    await vol.put("abc0", b"y" * 1000)

    def failing(code: int) -> Callable[..., None]:
        def verify(fd: int, window: int = 0) -> None:
            raise OSError(code, os.strerror(code))

        return verify

    monkeypatch.setattr(trash_mod.blockfile, "verify", failing(errno.EACCES))
    with pytest.raises(PermissionError):
        await vol.verify(NAME)
    assert await vol.quarantined() == []
    monkeypatch.setattr(trash_mod.blockfile, "verify", failing(errno.EIO))
    assert await vol.verify(NAME) is False
    monkeypatch.undo()
    await assert_quarantined(vol)
    assert await vol.verify("abc0") is True


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 200_001])
@pytest.mark.parametrize("window", [1, 1000, 65536, 1 << 20])
def test_blockfile_verify_streams_in_windows(tmp_path: Path, size: int, window: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "b"
    path.write_bytes(blockfile.encode(data, chunk_size=4096 if window == 1000 else 65536))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert blockfile.verify(fd, window).length == size
        if size:
            flip_byte(path, size * 2 // 3)
            with pytest.raises(DataCorruption):
                blockfile.verify(fd, window)
    finally:
        os.close(fd)
