"""Segmenter: chunking-independent segments and hashes, bounded memory, limits."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import zlib
from collections.abc import AsyncIterator

import blake3
import crc32c
import pytest
from data_helpers import chunked, random_chunks

from tessera.common.streams import from_bytes
from tessera.data.segmenter import FIRST, BufferPool, Segmenter
from tessera.model.errors import EntityTooLarge

SEG = 100_000  # above SMALL, so hashing goes through worker threads


async def collect(
    seg: Segmenter,
) -> list[tuple[int, int, bytes, str, bool]]:
    out = []
    async for p in seg:
        out.append((p.index, p.offset, bytes(p.data), await p.digest(), p.last))
        p.release()
    return out


def expected(data: bytes, size: int = SEG) -> list[tuple[int, int, bytes, str, bool]]:
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return [
        (i, i * size, p, blake3.blake3(p).hexdigest(), i == len(pieces) - 1)
        for i, p in enumerate(pieces)
    ]


@pytest.mark.parametrize(
    "size", [0, 1, FIRST - 1, FIRST, FIRST + 1, SEG - 1, SEG, SEG + 1, 3 * SEG + 17]
)
async def test_random_chunkings_give_identical_segments_and_hashes(size: int) -> None:
    data = os.urandom(size)
    want = expected(data)
    algorithms = ("CRC32", "CRC32C", "SHA1", "SHA256")
    sources = [from_bytes(data, 1 << 20), from_bytes(data, SEG)]
    sources += [random_chunks(data, seed, biggest) for seed, biggest in [(1, 7), (2, 3 * SEG)]]
    sources += [random_chunks(data, 3, SEG // 2)]
    for source in sources:
        seg = Segmenter(source, segment_size=SEG, algorithms=algorithms, window=3)
        assert await collect(seg) == want
        assert seg.size == size
        assert seg.md5() == hashlib.md5(data).digest()
        assert seg.checksums() == {
            "CRC32": base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode(),
            "CRC32C": base64.b64encode(crc32c.crc32c(data).to_bytes(4, "big")).decode(),
            "SHA1": base64.b64encode(hashlib.sha1(data).digest()).decode(),
            "SHA256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        }


async def test_small_segments_hash_on_the_loop() -> None:
    data = os.urandom(10_000)
    seg = Segmenter(random_chunks(data, 4, 100), segment_size=1000, algorithms=["CRC32C"])
    assert await collect(seg) == expected(data, 1000)
    assert seg.md5() == hashlib.md5(data).digest()


async def test_results_before_the_end_are_refused() -> None:
    seg = Segmenter(from_bytes(b"abc"), segment_size=SEG)
    with pytest.raises(RuntimeError):
        seg.md5()


async def test_memoryview_and_bytearray_chunks() -> None:
    data = os.urandom(3 * SEG)

    async def source() -> AsyncIterator[bytes]:
        yield bytearray(data[:SEG])  # type: ignore[misc]
        yield memoryview(data)[SEG:]  # type: ignore[misc]

    seg = Segmenter(source(), segment_size=SEG)
    assert await collect(seg) == expected(data)


async def test_max_size_raises_before_yielding_the_excess() -> None:
    data = os.urandom(3 * SEG)
    seg = Segmenter(from_bytes(data, 1000), segment_size=SEG, max_size=2 * SEG + 500)
    seen = []
    with pytest.raises(EntityTooLarge):
        async for p in seg:
            seen.append(p.size)
            p.release()
    # the 2nd full segment waits for the next chunk (is it the last?), which is too much
    assert seen == [SEG]
    await seg.aclose()


async def test_max_size_exactly_is_fine() -> None:
    seg = Segmenter(from_bytes(b"x" * 500), segment_size=SEG, max_size=500)
    assert [p[2] for p in await collect(seg)] == [b"x" * 500]


async def test_source_error_propagates() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"x" * (SEG + 10)
        raise ConnectionResetError("client went away")

    seg = Segmenter(source(), segment_size=SEG)
    with pytest.raises(ConnectionResetError):
        await collect(seg)
    await seg.aclose()


async def test_back_pressure_stops_pulling_while_the_window_is_full() -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1000
            yield b"z" * 1000

    seg = Segmenter(endless(), segment_size=SEG, window=2)
    held = []

    async def consume() -> None:
        async for p in seg:
            held.append(p)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    assert len(held) == 2
    assert pulled <= 2 * SEG + 1000  # plus the one chunk proving the 2nd piece not last
    held[0].release()
    await asyncio.sleep(0.2)
    assert len(held) == 3 and pulled <= 3 * SEG + 1000
    task.cancel()
    for p in held:
        p.release()
    await asyncio.gather(task, return_exceptions=True)


async def test_buffers_are_reused_across_segments_and_streams() -> None:
    allocated = 0

    class CountingPool(BufferPool):
        def acquire(self) -> bytearray:
            nonlocal allocated
            if not self._idle:
                allocated += 1
            return super().acquire()

    pool = CountingPool(SEG, keep=4)
    for _ in range(3):
        data = os.urandom(20 * SEG + 1)
        seg = Segmenter(from_bytes(data, 65536), segment_size=SEG, window=2, pool=pool)
        assert len(await collect(seg)) == 21
        await seg.aclose()
    assert allocated <= 2


async def test_released_piece_data_cannot_be_used() -> None:
    seg = Segmenter(chunked(b"a" * 10, lambda: 10), segment_size=SEG)
    async for p in seg:
        p.release()
        p.release()  # idempotent
        with pytest.raises(ValueError):
            bytes(p.data)
        with pytest.raises(RuntimeError):  # a small piece is hashed on demand
            await p.digest()


async def test_a_small_stream_never_takes_a_segment_buffer() -> None:
    class CountingPool(BufferPool):
        taken = 0

        def acquire(self) -> bytearray:
            self.taken += 1
            return super().acquire()

    pool = CountingPool(SEG, keep=4)
    data = os.urandom(FIRST)
    seg = Segmenter(from_bytes(data, 1000), segment_size=SEG, pool=pool)
    assert await collect(seg) == expected(data)
    assert pool.taken == 0
    # One byte more and the stream moves into a pooled buffer, keeping its bytes.
    data += b"x"
    seg = Segmenter(from_bytes(data, 1000), segment_size=SEG, pool=pool)
    assert await collect(seg) == expected(data)
    assert pool.taken == 1
