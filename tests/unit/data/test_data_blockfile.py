"""The block file format: layout, range reads that touch only covering chunks, corruption."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tessera.common.checksums import crc32c_value
from tessera.data import blockfile
from tessera.data.blockfile import CHUNK_SIZE, FOOTER
from tessera.model.errors import DataCorruption

SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5]


def write_block(path: Path, data: bytes) -> None:
    path.write_bytes(blockfile.encode(data))


def read(path: Path, start: int = 0, end: int | None = None, **kw: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return blockfile.read_range(fd, start, end, **kw)
    finally:
        os.close(fd)


def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x40]))


@pytest.mark.parametrize("size", SIZES)
def test_layout_data_first_then_trailer_then_footer(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    encoded = blockfile.encode(data)
    n = -(-size // CHUNK_SIZE)
    assert len(encoded) == blockfile.encoded_size(size) == size + 4 * n + FOOTER.size
    assert encoded[:size] == data
    for i in range(n):
        entry = encoded[size + 4 * i : size + 4 * i + 4]
        chunk = data[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE]
        assert int.from_bytes(entry, "big") == crc32c_value(chunk)
    magic, version, _, chunk, length, data_crc, _ = FOOTER.unpack(encoded[-FOOTER.size :])
    assert (magic, version, chunk, length) == (b"TSBK", 1, CHUNK_SIZE, size)
    assert data_crc == crc32c_value(data)


@pytest.mark.parametrize("size", SIZES)
def test_every_kind_of_range_reads_back(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "b"
    write_block(path, data)
    rng = random.Random(size)
    ranges = [(0, None), (0, size), (size, None)]
    if size:
        ranges += [(0, 1), (size - 1, size), (size // 2, None), (0, size + 100)]
        ranges += [tuple(sorted(rng.sample(range(size + 1), 2))) for _ in range(20) if size > 1]
    for a, b in ranges:
        assert read(path, a, b) == data[a:b], (a, b)


def test_start_past_the_end_is_an_error(tmp_path: Path) -> None:
    write_block(tmp_path / "b", b"abc")
    with pytest.raises(ValueError):
        read(tmp_path / "b", 4)


def test_range_read_touches_only_covering_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 8 << 20
    data = os.urandom(size)
    path = tmp_path / "b"
    write_block(path, data)
    calls: list[tuple[int, int]] = []
    real = os.pread

    def spy(fd: int, n: int, offset: int) -> bytes:
        calls.append((n, offset))
        return real(fd, n, offset)

    monkeypatch.setattr(blockfile.os, "pread", spy)
    a, b = 3_000_001, 3_000_001 + (1 << 20)
    assert read(path, a, b) == data[a:b]
    data_reads = [(n, off) for n, off in calls if off < size]
    assert len(data_reads) == 1
    n, off = data_reads[0]
    assert off == a // CHUNK_SIZE * CHUNK_SIZE
    assert n <= (1 << 20) + 2 * CHUNK_SIZE
    assert sum(n for n, _ in calls) < (1 << 20) + 2 * CHUNK_SIZE + 1024


def test_flipped_data_byte_fails_only_ranges_covering_it(tmp_path: Path) -> None:
    data = os.urandom(4 * CHUNK_SIZE)
    path = tmp_path / "b"
    write_block(path, data)
    flip(path, 2 * CHUNK_SIZE + 7)
    with pytest.raises(DataCorruption):
        read(path)
    with pytest.raises(DataCorruption):
        read(path, 2 * CHUNK_SIZE + 100, 2 * CHUNK_SIZE + 101)
    assert read(path, 0, 2 * CHUNK_SIZE) == data[: 2 * CHUNK_SIZE]
    assert read(path, 3 * CHUNK_SIZE) == data[3 * CHUNK_SIZE :]
    with pytest.raises(DataCorruption):
        fd = os.open(path, os.O_RDONLY)
        try:
            blockfile.verify(fd)
        finally:
            os.close(fd)


@pytest.mark.parametrize("where", ["trailer", "footer-length", "footer-crc", "magic"])
def test_flipped_trailer_or_footer_byte_is_corruption(tmp_path: Path, where: str) -> None:
    data = os.urandom(2 * CHUNK_SIZE)
    path = tmp_path / "b"
    write_block(path, data)
    size = path.stat().st_size
    offset = {
        "trailer": len(data) + 5,
        "magic": size - FOOTER.size,
        "footer-length": size - FOOTER.size + 12 + 7,
        "footer-crc": size - 6,
    }[where]
    flip(path, offset)
    with pytest.raises(DataCorruption):
        read(path, 0, 10)


def test_truncated_or_extended_file_is_corruption(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE + 3)
    path = tmp_path / "b"
    write_block(path, data)
    raw = path.read_bytes()
    for bad in (raw[:-1], raw[1:], raw + b"\0", b"", raw[: FOOTER.size - 1]):
        path.write_bytes(bad)
        with pytest.raises(DataCorruption):
            read(path, 0, 1)


def test_expected_crc_identifies_the_block(tmp_path: Path) -> None:
    data = os.urandom(1000)
    path = tmp_path / "b"
    write_block(path, data)
    assert read(path, 0, 10, expected_crc=crc32c_value(data)) == data[:10]
    with pytest.raises(DataCorruption):
        read(path, 0, 10, expected_crc=crc32c_value(data) ^ 1)
