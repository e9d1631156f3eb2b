"""The healer over a real SQLite metadata store and real disk volumes: read
repair, full passes after disk loss, degraded writes completed, draining and
removed disks emptied onto others, verify reports."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tessera.common.streams import from_bytes, read_all
from tessera.core.base import CoreOptions
from tessera.core.healer import Healer
from tessera.core.requests import GetRequest, Principal, PutRequest
from tessera.core.service import ObjectService
from tessera.data.store import SegmentStore
from tessera.data.topology import Topology
from tessera.data.volume import LocalVolume
from tessera.meta.sql import SqlMetadataStore

SEG = 64 << 10
EC = "ec/k=4,m=2"
ROOT = Principal("root")


@dataclass
class Stack:
    root: Path
    meta: SqlMetadataStore
    store: SegmentStore
    service: ObjectService
    healer: Healer
    topo: Topology

    async def put(self, key: str, data: bytes) -> None:
        await self.service.put_object(ROOT, PutRequest("bkt", key, from_bytes(data)))

    async def get(self, key: str) -> bytes:
        got = await self.service.get_object(ROOT, GetRequest("bkt", key))
        assert got.body is not None
        return await read_all(got.body)

    def blocks(self, disk: str) -> list[Path]:
        return [p for p in (self.root / disk / "blocks").glob("*/*") if p.is_file()]

    def wipe(self, disk: str) -> None:
        shutil.rmtree(self.root / disk / "blocks")
        (self.root / disk / "blocks").mkdir()

    def set_topology(self, topo: Topology) -> None:
        self.topo = topo
        self.store.update_cluster(topo, self.store.volumes)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    disks = [LocalVolume(tmp_path / f"d{i}", f"d{i}") for i in range(8)]
    topo = Topology.build({"z": {f"s{i}": [f"d{i}"] for i in range(6)}})
    meta = await SqlMetadataStore.connect(f"sqlite:///{tmp_path / 'meta.db'}", migrate=True)
    store = SegmentStore(disks, topology=topo, segment_size=SEG, inline_threshold=1024)
    service = ObjectService(meta, store, options=CoreOptions(default_policy=EC))
    await service.ensure_account("root", "root", [("AKROOT00000000000001", "secret" * 7)])
    await service.create_bucket(ROOT, "bkt")
    yield Stack(tmp_path, meta, store, service, Healer(meta, store), topo)
    await service.close()


async def test_healthy_store_verifies_clean(stack: Stack) -> None:
    await stack.put("a", os.urandom(3 * SEG))
    st = await stack.healer.heal_pass(repair=False)
    assert (st.segments, st.healthy, st.degraded, st.lost) == (3, 3, 0, 0)


async def test_lost_disk_is_rebuilt_in_place(stack: Stack) -> None:
    data = {f"k{i}": os.urandom(2 * SEG + i) for i in range(5)}
    for k, v in data.items():
        await stack.put(k, v)
    before = sorted(p.name for p in stack.blocks("d2"))
    stack.wipe("d2")
    stack.wipe("d5")
    st = await stack.healer.heal_pass(repair=False)
    assert st.degraded == st.segments and st.fragments_rebuilt == 0
    st = await stack.healer.heal_pass()
    assert st.fragments_rebuilt == 2 * st.segments
    assert st.manifests_updated == 0  # same disks, same names
    assert sorted(p.name for p in stack.blocks("d2")) == before
    st = await stack.healer.heal_pass(repair=False, deep=True)
    assert st.healthy == st.segments
    for k, v in data.items():
        assert await stack.get(k) == v


async def test_read_repair_rewrites_a_corrupt_fragment(stack: Stack) -> None:
    data = os.urandom(SEG)
    await stack.put("a", data)
    v = await stack.meta.get_version("bkt", "a")
    f = v.manifest.segments[0].fragments[0]  # a data fragment: a plain read uses it
    (victim,) = stack.blocks(f.volume)
    raw = bytearray(victim.read_bytes())
    raw[10] ^= 1
    victim.write_bytes(raw)
    assert await stack.get("a") == data
    assert len(stack.store.repairs) == 1
    assert await stack.healer.repair_reported() == 1
    assert not stack.store.repairs
    st = await stack.healer.heal_pass(repair=False, deep=True)
    assert st.healthy == 1


async def test_degraded_write_is_completed_on_another_server(stack: Stack) -> None:
    stack.set_topology(stack.topo.with_up("s1", False))
    data = os.urandom(2 * SEG)
    await stack.put("a", data)  # 5 fragments, quorum k+1
    st = await stack.healer.heal_pass()
    assert st.degraded == 2 and st.fragments_rebuilt == 0  # nowhere to put them
    stack.set_topology(stack.topo.with_up("s1", True))  # the server is back
    st = await stack.healer.heal_pass()
    assert st.fragments_rebuilt == 2 and st.manifests_updated == 1
    v = await stack.meta.get_version("bkt", "a")
    for s in v.manifest.segments:
        assert len({f.volume for f in s.fragments}) == 6
    assert await stack.get("a") == data
    # the block references moved with the manifest
    for s in v.manifest.segments:
        for f in s.fragments:
            assert await stack.meta.block_refcount(f.volume, f.block) == 1


async def test_removed_and_draining_disks_are_emptied(stack: Stack) -> None:
    data = os.urandom(4 * SEG)
    await stack.put("a", data)
    layout = {"z": {f"s{i}": {f"d{i}": 1.0} for i in range(8)}}
    layout["z"]["s3"] = {"d3": 0.0}  # draining
    stack.set_topology(Topology.build(layout))
    stack.store.update_cluster(
        stack.topo, {k: v for k, v in stack.store.volumes.items() if k != "d4"}
    )  # d4 removed from the cluster
    st = await stack.healer.heal_pass()
    assert st.fragments_rebuilt == 2 * 4 and st.manifests_updated == 1
    v = await stack.meta.get_version("bkt", "a")
    for s in v.manifest.segments:
        assert not {"d3", "d4"} & {f.volume for f in s.fragments}
        assert len({f.volume for f in s.fragments}) == 6
    assert await stack.get("a") == data
    assert (await stack.healer.heal_pass(repair=False)).healthy == 4


async def test_three_lost_fragments_are_reported_lost(stack: Stack) -> None:
    await stack.put("a", os.urandom(SEG))
    for d in ("d0", "d1", "d2"):
        stack.wipe(d)
    st = await stack.healer.heal_pass()
    assert st.lost == 1 and st.fragments_rebuilt == 0


async def test_added_server_takes_its_share(stack: Stack) -> None:
    data = {f"k{i}": os.urandom(3 * SEG) for i in range(6)}
    for k, v in data.items():
        await stack.put(k, v)
    layout = {"z": {f"s{i}": [f"d{i}"] for i in range(7)}}  # d6 joins
    stack.set_topology(Topology.build(layout))
    st = await stack.healer.heal_pass()
    moved = st.fragments_moved
    assert 0 < moved < 18 * 6 // 2  # some, not most
    assert len(stack.blocks("d6")) == moved  # all onto the new disk
    assert (await stack.healer.heal_pass()).fragments_moved == 0  # stable
    for k, v in data.items():
        assert await stack.get(k) == v
    for k in data:
        v = await stack.meta.get_version("bkt", k)
        for s in v.manifest.segments:
            assert len({f.volume for f in s.fragments}) == 6
