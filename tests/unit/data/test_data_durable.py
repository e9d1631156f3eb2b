"""SegmentStore with rep/n and ec/k,m policies over several disks: placement,
quorum writes, degraded reads, read repair, down servers."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tessera.common.checksums import Buffer
from tessera.common.ranges import ByteRange
from tessera.common.streams import from_bytes, read_all
from tessera.data import codec
from tessera.data.contract import WriteResult
from tessera.data.store import SegmentStore
from tessera.data.topology import Topology
from tessera.data.volume import LocalVolume, Stored
from tessera.model.errors import DataCorruption, StorageFull, Unavailable
from tessera.model.policy import Policy

SEG = 64 << 10
CHUNK = 8 << 10
EC = "ec/k=4,m=2"
REP = "rep/n=3"


class Disk(LocalVolume):
    """A LocalVolume that can be made to fail puts or gets; counts bytes read."""

    fail_put: BaseException | None = None
    fail_get: BaseException | None = None
    read_bytes: int = 0

    async def put(self, name: str, data: Buffer) -> Stored:
        if self.fail_put is not None:
            raise self.fail_put
        return await super().put(name, data)

    async def get(
        self, name: str, start: int = 0, end: int | None = None, *, crc32c: int | None = None
    ) -> bytes:
        if self.fail_get is not None:
            raise self.fail_get
        data = await super().get(name, start, end, crc32c=crc32c)
        self.read_bytes += len(data)
        return data


MakeStore = Callable[..., SegmentStore]


@pytest.fixture
async def make_store(tmp_path: Path) -> AsyncIterator[MakeStore]:
    stores: list[SegmentStore] = []

    def make(n: int = 6, topology: Topology | None = None, **kw: object) -> SegmentStore:
        disks = [Disk(tmp_path / f"d{i}", f"d{i}") for i in range(n)]
        kw.setdefault("segment_size", SEG)
        kw.setdefault("inline_threshold", 1024)
        kw.setdefault("read_chunk", CHUNK)
        store = SegmentStore(disks, topology=topology, **kw)  # type: ignore[arg-type]
        stores.append(store)
        return store

    yield make
    for s in stores:
        await s.close()


def disk(store: SegmentStore, vid: str) -> Disk:
    v = store.volumes[vid]
    assert isinstance(v, Disk)
    return v


async def read(store: SegmentStore, r: WriteResult, rng: ByteRange | None = None) -> bytes:
    return await read_all(store.read(r.inline, r.manifest, rng))


def block_path(store: SegmentStore, vid: str, block: str) -> Path:
    return disk(store, vid).root / "blocks" / block[:3] / block


@pytest.mark.parametrize("kernel", ["isal", "python"])
@pytest.mark.parametrize("size", [1025, SEG - 1, SEG, 3 * SEG + 4097])
async def test_ec_round_trip_and_layout(make_store: MakeStore, kernel: str, size: int) -> None:
    try:
        k = codec.select_kernel(kernel)
    except OSError:
        pytest.skip("ISA-L not available")
    store = make_store(kernel=k)
    data = os.urandom(size)
    r = await store.write(from_bytes(data), policy=EC)
    for s in r.manifest.segments:
        assert s.policy == EC
        assert [f.index for f in s.fragments] == list(range(6))
        assert len({f.volume for f in s.fragments}) == 6  # distinct disks
        assert {f.size for f in s.fragments} == {codec.fragment_size(s.size, 4)}
        assert all(f.block == f"{s.hash}.k4m2.{f.index}" for f in s.fragments)
    assert await read(store, r) == data
    for a, b in [(0, 1), (size - 1, size), (size // 5, size - 20), (size // 3, size // 2)]:
        assert await read(store, r, ByteRange(a, b)) == data[a:b]


async def test_rep_layout_and_failover(make_store: MakeStore) -> None:
    store = make_store()
    data = os.urandom(2 * SEG + 5)
    r = await store.write(from_bytes(data), policy=REP)
    for s in r.manifest.segments:
        assert [f.index for f in s.fragments] == [0, 1, 2]
        assert len({f.volume for f in s.fragments}) == 3
        assert {f.block for f in s.fragments} == {s.hash}
    # two copies of every segment lost: the third serves, the losses are queued
    for s in r.manifest.segments:
        for f in s.fragments[:2]:
            block_path(store, f.volume, f.block).unlink()
    assert await read(store, r) == data
    lost = {(f.volume, f.block) for s in r.manifest.segments for f in s.fragments[:2]}
    assert lost <= set(store.repairs)
    assert {b.reason for b in store.repairs.values()} == {"missing"}


@pytest.mark.parametrize("lost", [(0,), (5,), (0, 1), (2, 4), (1, 3), (4, 5), (0, 5)])
async def test_ec_reads_with_any_two_fragments_lost(
    make_store: MakeStore, lost: tuple[int, ...]
) -> None:
    store = make_store()
    size = 2 * SEG + 3 * CHUNK + 11
    data = os.urandom(size)
    r = await store.write(from_bytes(data), policy=EC)
    for s in r.manifest.segments:
        for f in s.fragments:
            if f.index in lost:
                block_path(store, f.volume, f.block).unlink()
    assert await read(store, r) == data
    for a, b in [(0, 1), (5, CHUNK + 7), (SEG - 3, SEG + 3), (size - CHUNK - 1, size)]:
        assert await read(store, r, ByteRange(a, b)) == data[a:b]


async def test_degraded_full_read_fetches_each_needed_byte_once(make_store: MakeStore) -> None:
    topo = Topology.build({"z": {f"s{i}": [f"d{i}"] for i in range(6)}})
    store = make_store(topology=topo)
    data = os.urandom(4 * SEG)  # fragment size 16 KiB = 2 read chunks
    r = await store.write(from_bytes(data), policy=EC)
    store.update_cluster(topo.with_up("s0", False), store.volumes)
    disk(store, "d0").fail_get = AssertionError("a down server was asked")
    assert await read(store, r) == data
    total = sum(disk(store, f"d{i}").read_bytes for i in range(6))
    # every segment: k fragments read whole, nothing twice
    assert total == len(data)


async def test_corrupt_fragment_is_decoded_around_and_queued(make_store: MakeStore) -> None:
    store = make_store()
    data = os.urandom(SEG)
    r = await store.write(from_bytes(data), policy=EC)
    f = r.manifest.segments[0].fragments[1]
    path = block_path(store, f.volume, f.block)
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(raw)
    assert await read(store, r) == data
    assert store.repairs[(f.volume, f.block)].reason == "corrupt"


async def test_three_fragments_lost_is_an_error_never_wrong_bytes(make_store: MakeStore) -> None:
    store = make_store()
    r = await store.write(from_bytes(os.urandom(SEG)), policy=EC)
    for f in r.manifest.segments[0].fragments[:3]:
        block_path(store, f.volume, f.block).unlink()
    with pytest.raises(DataCorruption):
        await read(store, r)
    for i in range(6):
        disk(store, f"d{i}").fail_get = OSError(errno.EIO, "gone")
    with pytest.raises(Unavailable):
        await read(store, r)


async def test_quorum_write_with_failing_disks(make_store: MakeStore) -> None:
    store = make_store(6)
    disk(store, "d3").fail_put = OSError(errno.EIO, "I/O error")
    data = os.urandom(3 * SEG)
    r = await store.write(from_bytes(data), policy=EC)  # 5 of 6 >= k+1
    for s in r.manifest.segments:
        assert len(s.fragments) == 5 and "d3" not in {f.volume for f in s.fragments}
    assert await read(store, r) == data
    disk(store, "d4").fail_put = StorageFull("full")
    before = sorted(p.name for p in Path(disk(store, "d0").root).glob("blocks/*/*"))
    with pytest.raises(Unavailable) as info:
        await store.write(from_bytes(os.urandom(3 * SEG)), policy=EC)
    assert {"d3", "d4"} <= set(info.value.causes)
    # nothing of the failed write is left behind
    assert sorted(p.name for p in Path(disk(store, "d0").root).glob("blocks/*/*")) == before


async def test_spare_disks_replace_failing_ones(make_store: MakeStore) -> None:
    store = make_store(8)
    disk(store, "d1").fail_put = StorageFull("full")
    disk(store, "d2").fail_put = OSError(errno.EIO, "I/O error")
    data = os.urandom(4 * SEG)
    r = await store.write(from_bytes(data), policy=EC)
    for s in r.manifest.segments:
        assert len(s.fragments) == 6
        assert not {"d1", "d2"} & {f.volume for f in s.fragments}
    r2 = await store.write(from_bytes(data[:SEG]), policy=REP)
    assert len(r2.manifest.segments[0].fragments) == 3
    assert await read(store, r) == data


async def test_rep_quorum(make_store: MakeStore) -> None:
    assert Policy.parse(REP).write_quorum == 2
    store = make_store(3)
    disk(store, "d0").fail_put = OSError(errno.EIO, "I/O error")
    r = await store.write(from_bytes(os.urandom(SEG)), policy=REP)
    assert len(r.manifest.segments[0].fragments) == 2
    disk(store, "d1").fail_put = OSError(errno.EIO, "I/O error")
    with pytest.raises(Unavailable):
        await store.write(from_bytes(os.urandom(SEG)), policy=REP)


async def test_fragments_spread_over_servers_and_skip_down_ones(make_store: MakeStore) -> None:
    layout = {"z1": {"s1": ["d0", "d1"], "s2": ["d2", "d3"]}, "z2": {"s3": ["d4", "d5"]}}
    topo = Topology.build(layout)
    store = make_store(6, topology=topo)
    data = os.urandom(8 * SEG)
    r = await store.write(from_bytes(data), policy=EC)
    for s in r.manifest.segments:
        servers = [topo.server_of(f.volume) for f in s.fragments]
        assert all(servers.count(x) == 2 for x in ("s1", "s2", "s3"))
    store.update_cluster(topo.with_up("s3", False), store.volumes)
    r2 = await store.write(from_bytes(data), policy=REP)
    assert all(f.volume not in ("d4", "d5") for s in r2.manifest.segments for f in s.fragments)
    with pytest.raises(Unavailable):  # 4 disks up, k+1 = 5 needed
        await store.write(from_bytes(data), policy=EC)
    # reads of the EC object go around the down server without asking it
    disk(store, "d4").fail_get = disk(store, "d5").fail_get = AssertionError("asked")
    assert await read(store, r) == data


async def test_a_failing_disk_is_avoided_after_its_first_error(make_store: MakeStore) -> None:
    store = make_store()
    data = os.urandom(8 * SEG)
    r = await store.write(from_bytes(data), policy=EC)
    disk(store, "d0").fail_get = OSError(errno.EIO, "dead disk")
    calls = 0
    real_get = Disk.get

    async def counting(self: Disk, *a: object, **kw: object) -> bytes:
        nonlocal calls
        calls += self.id == "d0"
        return await real_get(self, *a, **kw)  # type: ignore[arg-type]

    Disk.get = counting  # type: ignore[method-assign]
    try:
        assert await read(store, r) == data
    finally:
        Disk.get = real_get  # type: ignore[method-assign]
    assert calls <= 3  # the reads in flight when it first failed, then never again
    assert not store.repairs  # an I/O error is not lost data
