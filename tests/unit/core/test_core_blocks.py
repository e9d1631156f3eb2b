"""BlockStore: the block API's operations over real local volumes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tessera.common.clock import FakeClock
from tessera.core.blocks import (
    DEFAULT_TTL,
    BlockStore,
    NoSuchBlock,
    NoSuchBlockService,
    ReadOnlyService,
    SignatureExpired,
    SignatureInvalid,
)
from tessera.data.scrubber import Scrubber
from tessera.data.store import SegmentStore
from tessera.data.topology import Topology
from tessera.data.volume import LocalVolume, content_block_name, is_content_block
from tessera.model.errors import AccessDenied, BadDigest, DataCorruption, InvalidArgument
from tessera.protocol.blocks import Locator, derive_key

KEY = derive_key("test")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[BlockStore, SegmentStore]]:
    vols = [LocalVolume(tmp_path / f"d{i}", f"v{i}", threads=1) for i in range(3)]
    data = SegmentStore(vols)
    yield BlockStore(data, KEY, clock=FakeClock()), data
    await data.close()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


async def test_put_get_head_delete(store: tuple[BlockStore, SegmentStore]) -> None:
    bs, data = store
    assert [s.id for s in bs.services()] == ["v0", "v1", "v2"]
    assert {(s.server, s.zone, s.read_only) for s in bs.services()} == {("local", "local", False)}
    body = os.urandom(5000)
    locator = await bs.put("alice", "v1", _md5(body), body)
    loc = Locator.parse(locator)
    assert (loc.md5, loc.size) == (_md5(body), 5000)
    assert loc.expiry == int(bs.clock.now() + DEFAULT_TTL)
    assert await bs.get("alice", "v1", locator) == body
    assert await data.volumes["v1"].stat(content_block_name(loc.md5)) is not None
    assert await data.volumes["v0"].stat(content_block_name(loc.md5)) is None
    with pytest.raises(NoSuchBlock):
        await bs.get("alice", "v0", locator)
    size, fresh = await bs.head("alice", "v1", locator)
    assert size == 5000 and Locator.parse(fresh).md5 == loc.md5
    assert await bs.put("alice", "v1", loc.md5, body) is not None  # idempotent
    with pytest.raises(AccessDenied):
        await bs.delete("alice", "v1", loc.md5)
    assert await bs.delete("root", "v1", loc.md5) is True
    assert await bs.delete("root", "v1", loc.md5) is False
    with pytest.raises(NoSuchBlock):
        await bs.get("alice", "v1", locator)


async def test_put_refuses_bad_input(store: tuple[BlockStore, SegmentStore]) -> None:
    bs, _ = store
    with pytest.raises(BadDigest):
        await bs.put("alice", "v0", _md5(b"other"), b"data")
    with pytest.raises(InvalidArgument):
        await bs.put("alice", "v0", "not-a-hash", b"data")
    with pytest.raises(NoSuchBlockService):
        await bs.put("alice", "nope", _md5(b"data"), b"data")
    with pytest.raises(AccessDenied):
        await bs.put("", "v0", _md5(b"data"), b"data")  # anonymous
    with pytest.raises(AccessDenied):
        bs.services_for("")
    assert len(bs.services_for("alice")) == 3


async def test_empty_and_large_blocks(store: tuple[BlockStore, SegmentStore]) -> None:
    bs, _ = store
    empty = await bs.put("alice", "v0", _md5(b""), b"")
    assert await bs.get("alice", "v0", empty) == b""
    big = os.urandom(3 << 20)  # hashed in a thread
    assert await bs.get("alice", "v2", await bs.put("alice", "v2", _md5(big), big)) == big
    with pytest.raises(BadDigest):
        await bs.put("alice", "v2", _md5(b"x"), big)


async def test_signatures_are_required(store: tuple[BlockStore, SegmentStore]) -> None:
    bs, _ = store
    body = b"signed"
    locator = await bs.put("alice", "v0", _md5(body), body)
    with pytest.raises(SignatureInvalid):
        await bs.get("bob", "v0", locator)  # another account
    with pytest.raises(SignatureExpired):
        await bs.get("alice", "v0", Locator.parse(locator).stripped())  # unsigned
    with pytest.raises(InvalidArgument):
        await bs.get("alice", "v0", "garbage")
    assert isinstance(bs.clock, FakeClock)
    bs.clock.advance(DEFAULT_TTL)
    with pytest.raises(SignatureExpired):
        await bs.get("alice", "v0", locator)
    with pytest.raises(SignatureExpired):
        await bs.head("alice", "v0", locator)


async def test_corrupt_copy_is_quarantined(
    store: tuple[BlockStore, SegmentStore], tmp_path: Path
) -> None:
    bs, data = store
    body = os.urandom(10000)
    md5 = _md5(body)
    locator = await bs.put("alice", "v2", md5, body)
    name = content_block_name(md5)
    path = tmp_path / "d2" / "blocks" / name[:3] / name
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataCorruption):
        await bs.get("alice", "v2", locator)
    assert await data.volumes["v2"].quarantined() == [name]
    with pytest.raises(NoSuchBlock):
        await bs.get("alice", "v2", locator)


async def test_read_only_services(tmp_path: Path) -> None:
    vols = [LocalVolume(tmp_path / f"d{i}", f"v{i}", threads=1) for i in range(2)]
    topo = Topology.build({"z": {"s1": {"v0": 1.0}, "s2": {"v1": 0.0}}})
    data = SegmentStore(vols, topology=topo)
    try:
        bs = BlockStore(data, KEY)
        assert [(s.id, s.server, s.read_only) for s in bs.services()] == [
            ("v0", "s1", False),
            ("v1", "s2", True),
        ]
        with pytest.raises(ReadOnlyService):
            await bs.put("alice", "v1", _md5(b"x"), b"x")
        data.update_cluster(topo.with_up("s1", False), data.volumes)
        assert bs.services()[0].read_only
    finally:
        await data.close()


def test_content_block_names_are_their_own_namespace() -> None:
    name = content_block_name(_md5(b"x"))
    assert is_content_block(name)
    assert not is_content_block("ab" * 32)
    assert not is_content_block("ab" * 32 + ".k4m2.3")


async def test_scrubber_verifies_content_blocks(
    store: tuple[BlockStore, SegmentStore], tmp_path: Path
) -> None:
    bs, data = store
    good, bad = os.urandom(3000), os.urandom(3000)
    await bs.put("alice", "v0", _md5(good), good)
    await bs.put("alice", "v0", _md5(bad), bad)
    name = content_block_name(_md5(bad))
    path = tmp_path / "d0" / "blocks" / name[:3] / name
    raw = bytearray(path.read_bytes())
    raw[10] ^= 1
    path.write_bytes(bytes(raw))
    stats = await Scrubber(data.volumes, rate=float("inf")).scrub_once()
    assert stats.blocks_checked == 2
    assert stats.corrupt == [("v0", name)]
