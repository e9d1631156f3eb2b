"""O_DIRECT block writes: byte-exact files of every size around the window and
the alignment, fallback where the file system refuses, and a LocalVolume that
uses them still verifying, detecting corruption and reporting a full disk."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from data_helpers import block_files

from tessera.data import blockfile
from tessera.data.direct_io import ALIGN, MIN_DIRECT, WINDOW, DirectWriter
from tessera.data.volume import LocalVolume
from tessera.model.errors import DataCorruption, StorageFull

MakeVolume = Callable[..., LocalVolume]


def _direct_ok(path: Path) -> bool:
    try:
        fd = os.open(path / ".probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    except OSError:
        return False
    os.close(fd)
    os.unlink(path / ".probe")
    return True


@pytest.fixture
def direct_dir(tmp_path: Path) -> Path:
    if not _direct_ok(tmp_path):
        pytest.skip("the test directory's file system refuses O_DIRECT")
    return tmp_path


@pytest.mark.parametrize(
    "sizes",
    [
        (MIN_DIRECT, 17),
        (WINDOW, 0),
        (WINDOW - 1, 1),
        (WINDOW, 1),
        (3 * WINDOW + ALIGN + 5, 4096 + 12),
        (2 * ALIGN, 2 * ALIGN),
    ],
)
def test_files_are_byte_exact(direct_dir: Path, sizes: tuple[int, int]) -> None:
    data = os.urandom(sizes[0] + 3)
    parts = (memoryview(data)[3:], os.urandom(sizes[1]))  # an unaligned view first
    writer = DirectWriter()
    fd = writer.create(direct_dir / "f", parts)
    assert fd is not None and writer.enabled
    os.close(fd)
    assert (direct_dir / "f").read_bytes() == bytes(parts[0]) + parts[1]


def test_an_existing_file_is_never_overwritten(direct_dir: Path) -> None:
    (direct_dir / "f").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        DirectWriter().create(direct_dir / "f", (os.urandom(MIN_DIRECT),))
    assert (direct_dir / "f").read_bytes() == b"keep"


def _refuse_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``O_DIRECT`` opens fail as on file systems without it (EINVAL)."""
    real_open = os.open

    def fake_open(path: object, flags: int, *args: object, **kw: object) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", fake_open)


def test_a_refusing_file_system_turns_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _refuse_direct(monkeypatch)
    writer = DirectWriter()
    assert writer.create(tmp_path / "f", (os.urandom(MIN_DIRECT),)) is None
    assert not writer.enabled and not (tmp_path / "f").exists()


def test_errors_other_than_einval_propagate_and_leave_nothing(
    direct_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    writer = DirectWriter()
    with pytest.raises(OSError) as e:
        writer.create(direct_dir / "f", (os.urandom(MIN_DIRECT),))
    assert e.value.errno == errno.ENOSPC and writer.enabled
    assert not (direct_dir / "f").exists()


async def test_volume_round_trip_and_corruption(direct_dir: Path, make_volume: MakeVolume) -> None:
    vol = make_volume(root=direct_dir / "vol", direct_io=True)
    big, small = os.urandom(8 << 20), os.urandom(1000)
    await vol.put("abc1", big)
    await vol.put("abc2", small)
    assert await vol.get("abc1") == big
    assert await vol.get("abc1", 5_000_000, 6_000_123) == big[5_000_000:6_000_123]
    assert await vol.get("abc2") == small
    assert (await vol.stat("abc1"))[0] == len(big)  # type: ignore[index]
    # The file on disk has its exact encoded length and still catches a flipped byte.
    path = direct_dir / "vol" / "blocks" / "abc" / "abc1"
    assert path.stat().st_size == blockfile.encoded_size(len(big))
    with path.open("r+b") as f:
        f.seek(3_000_000)
        byte = f.read(1)
        f.seek(3_000_000)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(DataCorruption):
        await vol.get("abc1")
    assert block_files(direct_dir / "vol") == ["abc1", "abc2"]


async def test_volume_falls_back_to_buffered_writes(
    tmp_path: Path, make_volume: MakeVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = make_volume(root=tmp_path / "vol", direct_io=True)
    _refuse_direct(monkeypatch)
    data = os.urandom(MIN_DIRECT + 1)
    await vol.put("abc1", data)
    await vol.put("abc2", data[:10])
    assert await vol.get("abc1") == data and await vol.get("abc2") == data[:10]


async def test_volume_with_direct_io_reports_a_full_disk(
    tiny_tmpfs: Path,
    make_volume: MakeVolume,
) -> None:
    vol = make_volume("full", root=tiny_tmpfs, direct_io=True)
    with pytest.raises(StorageFull):
        await vol.put("abc1", os.urandom(2 << 20))
    assert block_files(tiny_tmpfs) == []
    await vol.put("abc2", b"small")  # the volume still works
    assert await vol.get("abc2") == b"small"
