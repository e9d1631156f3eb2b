"""SegmentStore: round trips, ranges, placement, failure cleanup and dedup safety."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from data_helpers import block_files, random_chunks

from tessera.common.checksums import Buffer
from tessera.common.ranges import ByteRange, RangeSpec
from tessera.common.streams import from_bytes, read_all
from tessera.data import placement
from tessera.data.contract import DataStore, WriteResult
from tessera.data.store import SegmentStore
from tessera.data.volume import LocalVolume, Stored
from tessera.model.errors import (
    DataCorruption,
    EntityTooLarge,
    InvalidArgument,
    StorageFull,
    Unavailable,
)
from tessera.model.manifest import Manifest

SEG = 256 << 10
INL = 16 << 10
SIZES = [0, 1, INL - 1, INL, INL + 1, SEG - 1, SEG, SEG + 1, 3 * SEG + 17]


class FaultyVolume(LocalVolume):
    """A LocalVolume whose puts can be made to fail; records get calls."""

    fail: BaseException | None = None
    gets: list[tuple[str, int, int | None]]

    async def put(self, name: str, data: Buffer) -> Stored:
        if self.fail is not None:
            raise self.fail
        return await super().put(name, data)

    async def get(
        self, name: str, start: int = 0, end: int | None = None, *, crc32c: int | None = None
    ) -> bytes:
        self.gets.append((name, start, end))
        return await super().get(name, start, end, crc32c=crc32c)


@pytest.fixture
async def make_store(tmp_path: Path) -> AsyncIterator[Callable[..., SegmentStore]]:
    stores: list[SegmentStore] = []

    def make(n: int = 2, **kw: int) -> SegmentStore:
        vols = []
        for i in range(n):
            v = FaultyVolume(tmp_path / f"v{i}", f"v{i}")
            v.gets = []
            vols.append(v)
        kw.setdefault("segment_size", SEG)
        kw.setdefault("inline_threshold", INL)
        store = SegmentStore(vols, **kw)
        stores.append(store)
        return store

    yield make
    for s in stores:
        await s.close()


def vol(store: SegmentStore, vid: str) -> FaultyVolume:
    v = store.volumes[vid]
    assert isinstance(v, FaultyVolume)
    return v


def all_blocks(store: SegmentStore) -> set[tuple[str, str]]:
    return {(vid, n) for vid in store.volume_ids for n in block_files(vol(store, vid).root)}


async def read(store: SegmentStore, r: WriteResult, rng: ByteRange | None = None) -> bytes:
    return await read_all(store.read(r.inline, r.manifest, rng))


def test_is_a_data_store(make_store: Callable[..., SegmentStore]) -> None:
    store: DataStore = make_store()
    assert isinstance(store, SegmentStore)


@pytest.mark.parametrize("size", SIZES)
async def test_round_trip(make_store: Callable[..., SegmentStore], size: int) -> None:
    store = make_store()
    data = os.urandom(size)
    r = await store.write(random_chunks(data, size, 50_000), algorithms=["SHA256"])
    assert r.size == size and r.md5 == hashlib.md5(data).digest()
    assert set(r.checksums) == {"SHA256"}
    if size <= INL:
        assert r.inline == data and r.manifest.segments == () and r.created == ()
        assert all_blocks(store) == set()
    else:
        assert r.inline is None
        assert [s.size for s in r.manifest.segments] == [
            min(SEG, size - i) for i in range(0, size, SEG)
        ]
        assert set(r.created_refs()) == set(r.manifest.block_refs()) == all_blocks(store)
        for s in r.manifest.segments:
            (f,) = s.fragments
            assert f.block == s.hash and f.size == s.size and s.policy == "plain"
    assert await read(store, r) == data


@pytest.mark.parametrize("size", [0, 1, INL])
async def test_no_inline_when_not_allowed(
    make_store: Callable[..., SegmentStore], size: int
) -> None:
    store = make_store()
    data = os.urandom(size)
    r = await store.write(from_bytes(data), allow_inline=False)
    assert r.inline is None and r.manifest.size == size
    assert len(r.manifest.segments) == (1 if size else 0)
    assert await read(store, r) == data


async def test_every_kind_of_range(make_store: Callable[..., SegmentStore]) -> None:
    store = make_store(read_chunk=64 << 10)
    size = 3 * SEG + 17
    data = os.urandom(size)
    r = await store.write(from_bytes(data))
    small = await store.write(from_bytes(data[:INL]))
    cases = [(0, 1), (size - 1, size), (0, size), (SEG - 1, SEG + 1), (SEG, SEG + 1)]
    cases += [(SEG - 10, 2 * SEG + 10), (5, 3 * SEG + 5), (3 * SEG, size), (100, 100)]
    cases += [(70_000, 200_000), (65535, 65537), (2 * SEG, 3 * SEG)]
    for a, b in cases:
        chunks = [c async for c in store.read(None, r.manifest, ByteRange(a, b))]
        assert b"".join(chunks) == data[a:b], (a, b)
        assert all(0 < len(c) <= 64 << 10 for c in chunks)
    for spec in (RangeSpec(None, 10), RangeSpec(SEG, None), RangeSpec(0, 0)):
        rng = spec.resolve(size)
        assert rng is not None
        assert await read(store, r, rng) == data[rng.start : rng.end]
    for a, b in [(0, 1), (INL - 1, INL), (10, 5000), (0, INL)]:
        assert await read(store, small, ByteRange(a, b)) == data[a:b]
    with pytest.raises(InvalidArgument):
        await read(store, r, ByteRange(0, size + 1))


async def test_range_reads_only_the_needed_bytes(make_store: Callable[..., SegmentStore]) -> None:
    store = make_store(1)
    r = await store.write(from_bytes(os.urandom(3 * SEG)))
    v = vol(store, "v0")
    v.gets.clear()
    await read(store, r, ByteRange(SEG + 5, SEG + 10))
    assert v.gets == [(r.manifest.segments[1].hash, 5, 10)]
    v.gets.clear()
    await read(store, r, ByteRange(SEG - 3, SEG + 3))
    assert v.gets == [
        (r.manifest.segments[0].hash, SEG - 3, SEG),
        (r.manifest.segments[1].hash, 0, 3),
    ]


async def test_blocks_follow_rendezvous_placement(
    make_store: Callable[..., SegmentStore],
) -> None:
    store = make_store(3, segment_size=INL * 2, inline_threshold=INL)
    data = os.urandom(40 * INL * 2)
    r = await store.write(from_bytes(data))
    used = set()
    for s in r.manifest.segments:
        (f,) = s.fragments
        assert f.volume == placement.rank(s.hash, store.volume_ids)[0]
        used.add(f.volume)
    assert used == {"v0", "v1", "v2"}
    assert await read(store, r) == data


async def test_full_volume_is_skipped_and_all_full_is_storage_full(
    make_store: Callable[..., SegmentStore],
) -> None:
    store = make_store(2)
    vol(store, "v0").fail = StorageFull("full")
    data = os.urandom(4 * SEG)
    r = await store.write(from_bytes(data))
    assert {f.volume for s in r.manifest.segments for f in s.fragments} == {"v1"}
    assert await read(store, r) == data
    vol(store, "v1").fail = StorageFull("full")
    with pytest.raises(StorageFull) as info:
        await store.write(from_bytes(os.urandom(2 * SEG)))
    assert set(info.value.details["causes"]) == {"v0", "v1"}  # type: ignore[arg-type]
    assert all_blocks(store) == set(r.manifest.block_refs())


async def test_failing_volumes_are_unavailable(make_store: Callable[..., SegmentStore]) -> None:
    store = make_store(2)
    vol(store, "v0").fail = OSError(errno.EIO, "I/O error")
    vol(store, "v1").fail = StorageFull("full")
    with pytest.raises(Unavailable) as info:
        await store.write(from_bytes(os.urandom(SEG + 1)))
    assert set(info.value.causes) == {"v0", "v1"}
    vol(store, "v1").fail = None
    r = await store.write(from_bytes(os.urandom(2 * SEG)))
    assert {f.volume for s in r.manifest.segments for f in s.fragments} == {"v1"}


async def failing_source(data: bytes, error: BaseException) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 10_000):
        yield data[i : i + 10_000]
    raise error


async def test_source_error_removes_new_blocks_but_not_deduplicated_ones(
    make_store: Callable[..., SegmentStore],
) -> None:
    store = make_store(2)
    shared = os.urandom(2 * SEG)
    kept = await store.write(from_bytes(shared))
    before = all_blocks(store)
    with pytest.raises(ConnectionResetError):
        await store.write(failing_source(shared + os.urandom(3 * SEG), ConnectionResetError()))
    assert all_blocks(store) == before
    assert await read(store, kept) == shared


async def test_too_large_removes_new_blocks(make_store: Callable[..., SegmentStore]) -> None:
    store = make_store(2)
    with pytest.raises(EntityTooLarge):
        await store.write(from_bytes(os.urandom(5 * SEG), 10_000), max_size=4 * SEG + 1)
    assert all_blocks(store) == set()
    r = await store.write(from_bytes(os.urandom(4 * SEG + 1)), max_size=4 * SEG + 1)
    assert r.size == 4 * SEG + 1
    # within the inline threshold too (a small stream is taken whole)
    with pytest.raises(EntityTooLarge):
        await store.write(from_bytes(b"x" * 101, 10), max_size=100)
    r = await store.write(from_bytes(b"x" * 100, 10), max_size=100)
    assert (r.size, r.inline, r.manifest.segments) == (100, b"x" * 100, ())


@pytest.mark.parametrize("algorithms", [(), ("crc32", "sha256")])
@pytest.mark.parametrize("size", [0, 1, INL, INL + 1])
async def test_inline_and_segmented_writes_hash_alike(
    make_store: Callable[..., SegmentStore], size: int, algorithms: tuple[str, ...]
) -> None:
    """A small stream (taken whole) and the same bytes written as a block give
    the same size, MD5 and checksums."""
    store = make_store(2)
    data = os.urandom(size)
    inline = await store.write(from_bytes(data, 1000), algorithms=algorithms)
    blocks = await store.write(from_bytes(data, 1000), algorithms=algorithms, allow_inline=False)
    assert (inline.inline is not None) == (size <= INL)
    assert blocks.inline is None and len(blocks.manifest.segments) == (1 if size else 0)
    for r in (inline, blocks):
        assert r.size == size and r.md5 == hashlib.md5(data).digest()
        assert set(r.checksums) == {a.upper() for a in algorithms}
        assert await read(store, r) == data
    assert inline.checksums == blocks.checksums


async def test_disk_full_midway_removes_new_blocks(
    make_store: Callable[..., SegmentStore],
) -> None:
    store = make_store(1)
    v = vol(store, "v0")
    real = v.put
    count = 0

    async def put(name: str, data: Buffer) -> Stored:
        nonlocal count
        count += 1
        if count > 3:
            raise StorageFull("full")
        return await real(name, data)

    v.put = put  # type: ignore[method-assign]
    with pytest.raises(StorageFull):
        await store.write(from_bytes(os.urandom(8 * SEG)))
    assert all_blocks(store) == set()


async def test_cancelled_write_removes_new_blocks(
    make_store: Callable[..., SegmentStore],
) -> None:
    store = make_store(2)
    stall = asyncio.Event()

    async def source() -> AsyncIterator[bytes]:
        yield os.urandom(3 * SEG)
        await stall.wait()
        yield b"never"

    task = asyncio.create_task(store.write(source()))
    for _ in range(500):  # the 3rd segment waits for proof that it is not the last
        await asyncio.sleep(0.01)
        if len(all_blocks(store)) == 2:
            break
    assert len(all_blocks(store)) == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all_blocks(store) == set()


async def test_concurrent_identical_upload_survives_the_failed_one(
    make_store: Callable[..., SegmentStore],
) -> None:
    """B creates the blocks, A deduplicates onto them and commits, then B fails:
    B's cleanup must keep the blocks A now uses."""
    store = make_store(2)
    data = os.urandom(3 * SEG)
    b_wrote, b_fail = asyncio.Event(), asyncio.Event()

    async def b_source() -> AsyncIterator[bytes]:
        yield data
        yield b"x"  # proves the 3rd segment is not the last, so it gets written
        b_wrote.set()
        await b_fail.wait()
        raise ConnectionResetError()

    b = asyncio.create_task(store.write(b_source()))
    await b_wrote.wait()
    while len(all_blocks(store)) < 3:
        await asyncio.sleep(0.01)
    a = await store.write(from_bytes(data))
    assert a.created == ()  # everything was deduplicated onto B's blocks
    b_fail.set()
    with pytest.raises(ConnectionResetError):
        await b
    assert await read(store, a) == data


async def test_discard_spares_blocks_stored_again_since(
    make_store: Callable[..., SegmentStore],
) -> None:
    """A write rejected after the fact (BadDigest) is discarded; a concurrent writer
    that deduplicated onto its blocks in the meantime keeps them."""
    store = make_store(2)
    data = os.urandom(3 * SEG)
    rejected = await store.write(from_bytes(data))
    assert rejected.created
    kept = await store.write(from_bytes(data))
    assert kept.created == ()
    assert await store.discard(rejected) == 0
    assert await read(store, kept) == data
    alone = await store.write(from_bytes(os.urandom(2 * SEG)))
    assert await store.discard(alone) == len(alone.created) == 2
    assert all_blocks(store) == set(kept.manifest.block_refs())


async def test_repeated_segments_are_stored_once(
    make_store: Callable[..., SegmentStore],
) -> None:
    store = make_store(2)
    data = bytes(5 * SEG)
    r = await store.write(from_bytes(data))
    assert len({s.hash for s in r.manifest.segments}) == 1
    assert len(r.created) == 1 and len(all_blocks(store)) == 1
    assert await read(store, r) == data
    again = await store.write(from_bytes(data))
    assert again.created == () and again.manifest == r.manifest


async def test_corrupt_or_missing_block_raises_from_the_iterator(
    make_store: Callable[..., SegmentStore],
) -> None:
    store = make_store(1)
    data = os.urandom(2 * SEG)
    r = await store.write(from_bytes(data))
    seg0 = r.manifest.segments[0]
    path = vol(store, "v0").root / "blocks" / seg0.hash[:3] / seg0.hash
    raw = bytearray(path.read_bytes())
    raw[100_000] ^= 0xFF
    path.write_bytes(raw)
    with pytest.raises(DataCorruption):
        await read(store, r)
    assert await read(store, r, ByteRange(0, 65536)) == data[:65536]
    assert await read(store, r, ByteRange(SEG, 2 * SEG)) == data[SEG:]
    path.unlink()
    with pytest.raises(DataCorruption):
        await read(store, r, ByteRange(0, 10))
    moved = Manifest.from_json(r.manifest.to_json().replace('"v0"', '"gone"'))
    with pytest.raises(Unavailable):
        await read_all(store.read(None, moved, ByteRange(SEG, SEG + 1)))


async def test_stopping_a_read_early_is_clean(make_store: Callable[..., SegmentStore]) -> None:
    store = make_store(1)
    r = await store.write(from_bytes(os.urandom(4 * SEG)))
    reader = store.read(None, r.manifest)
    first = await reader.__anext__()
    assert len(first) == SEG  # read_chunk is 1 MiB: one piece per segment here
    await reader.aclose()  # type: ignore[attr-defined]


async def test_delete_blocks(make_store: Callable[..., SegmentStore]) -> None:
    store = make_store(2)
    r = await store.write(from_bytes(os.urandom(3 * SEG)))
    refs = r.manifest.block_refs()
    assert await store.delete_blocks(refs, older_than=0.0) == 0
    missing = [("v0", "ab" * 32), ("nowhere", "cd" * 32)]
    assert await store.delete_blocks([*refs, *refs, *missing]) == 3
    assert all_blocks(store) == set()


async def test_bad_policy(make_store: Callable[..., SegmentStore]) -> None:
    store = make_store(1)
    with pytest.raises(InvalidArgument):
        await store.write(from_bytes(b"x"), policy="raid5")


class CountingVolume(FaultyVolume):
    """Counts the puts running at once across all its instances (each put is
    held for a moment, so concurrent segment writes overlap)."""

    running = 0
    most = 0

    async def put(self, name: str, data: Buffer) -> Stored:
        cls = CountingVolume
        cls.running += 1
        cls.most = max(cls.most, cls.running)
        try:
            await asyncio.sleep(0.02)
            return await super().put(name, data)
        finally:
            cls.running -= 1


@pytest.mark.parametrize(("own", "total", "uploads"), [(2, 3, 4), (2, 8, 4), (3, 5, 1)])
async def test_segments_in_flight_are_bounded_per_upload_and_in_all(
    tmp_path: Path, own: int, total: int, uploads: int
) -> None:
    CountingVolume.running = CountingVolume.most = 0
    vols = [CountingVolume(tmp_path / f"v{i}", f"v{i}") for i in range(2)]
    for v in vols:
        v.gets = []
    store = SegmentStore(
        vols,
        segment_size=SEG,
        inline_threshold=INL,
        write_concurrency=own,
        total_write_concurrency=total,
    )
    try:
        datas = [os.urandom(6 * SEG) for _ in range(uploads)]
        results = await asyncio.gather(*(store.write(from_bytes(d)) for d in datas))
        for data, r in zip(datas, results, strict=True):
            assert await read(store, r) == data
    finally:
        await store.close()
    # plain policy: one put per segment; the bound that binds is reached
    assert CountingVolume.running == 0
    assert CountingVolume.most == min(own * uploads, total)


def test_total_write_concurrency_covers_one_upload(tmp_path: Path) -> None:
    vols = [LocalVolume(tmp_path / "v0", "v0")]
    with pytest.raises(ValueError):
        SegmentStore(vols, write_concurrency=3, total_write_concurrency=2)
    assert SegmentStore(vols, write_concurrency=3).total_write_concurrency == 4
