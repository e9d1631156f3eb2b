"""Containers, snapshots, properties, account administration and SDK listings
through the whole core + data path + SQLite stack in one process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tessera.common.clock import FakeClock
from tessera.common.streams import from_bytes, read_all
from tessera.core.properties import PropertyUpdate, bucket_properties, is_frozen
from tessera.core.requests import (
    CopyRequest,
    GetRequest,
    ObjectAttributes,
    Principal,
    PutRequest,
)
from tessera.core.service import ObjectService
from tessera.data.store import SegmentStore
from tessera.data.volume import LocalVolume
from tessera.meta.sql import SqlMetadataStore
from tessera.model.errors import (
    AccessDenied,
    AccountNotEmpty,
    AccountNotFound,
    BucketAlreadyExists,
    BucketNotEmpty,
    FrozenBucket,
    InvalidArgument,
)

ROOT = Principal("root")
ALICE = Principal("alice")


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[ObjectService]:
    meta = await SqlMetadataStore.connect(f"sqlite:///{tmp_path / 'meta.db'}", migrate=True)
    data = SegmentStore([LocalVolume(tmp_path / "d0", "d0")], segment_size=1000)
    service = ObjectService(meta, data, clock=FakeClock(2_000_000.0))
    await service.ensure_account("root", "root", [])
    await service.ensure_account("alice", "alice", [])
    yield service
    await service.close()


async def put(svc: ObjectService, bucket: str, key: str, body: bytes) -> None:
    await svc.put_object(ROOT, PutRequest(bucket, key, from_bytes(body)))


async def get(svc: ObjectService, bucket: str, key: str) -> bytes:
    read = await svc.get_object(ROOT, GetRequest(bucket, key))
    assert read.body is not None
    return await read_all(read.body)


async def test_create_show_update_delete(svc: ObjectService) -> None:
    assert await svc.create_container(
        ROOT, "box", properties={"a": "1", "b": "2"}, policy="plain", versioning=True
    )
    assert not await svc.create_container(ROOT, "box")  # already ours: unchanged
    with pytest.raises(BucketAlreadyExists):
        await svc.create_container(ALICE, "box")
    with pytest.raises(InvalidArgument):
        await svc.create_container(ROOT, "badpolicy", policy="nonsense/x")
    await put(svc, "box", "k1", b"12345")
    await put(svc, "box", "k2", os.urandom(1500))
    stats = await svc.container_stats(ROOT, "box")
    assert (stats.objects, stats.bytes, stats.bucket.versioning) == (2, 1505, "enabled")
    with pytest.raises(AccessDenied):
        await svc.container_stats(ALICE, "box")
    upd = await svc.update_bucket_properties(
        ROOT, "box", PropertyUpdate(set={"c": "3", "a": "9"}, delete=("b",))
    )
    assert bucket_properties(upd) == {"a": "9", "c": "3"}
    cleared = await svc.update_bucket_properties(
        ROOT, "box", PropertyUpdate(set={"z": "1"}, clear=True)
    )
    assert bucket_properties(cleared) == {"z": "1"}
    with pytest.raises(AccessDenied):
        await svc.update_bucket_properties(ALICE, "box", PropertyUpdate(set={"x": "y"}))
    # delete: refused while not empty, unless forced (versions, markers and uploads too)
    await svc.delete_object(ROOT, "box", "k1")  # a delete marker
    await svc.create_upload(ROOT, "box", "pending", ObjectAttributes())
    with pytest.raises(BucketNotEmpty):
        await svc.delete_container(ROOT, "box")
    with pytest.raises(AccessDenied):
        await svc.delete_container(ALICE, "box", force=True)
    await svc.delete_container(ROOT, "box", force=True)
    assert [b.name for b in await svc.list_buckets(ROOT)] == []


async def test_snapshot_is_frozen_and_shares_data(svc: ObjectService) -> None:
    await svc.create_container(ROOT, "live", properties={"team": "x"})
    body = os.urandom(2500)
    await put(svc, "live", "big", body)
    await put(svc, "live", "small", b"tiny")
    await put(svc, "live", "gone", b"deleted before the snapshot")
    await svc.delete_object(ROOT, "live", "gone")
    snap = await svc.snapshot_container(ROOT, "live", "live-snap")
    stats = await svc.container_stats(ROOT, "live-snap")
    assert (stats.objects, stats.bytes) == (2, 2504)
    assert is_frozen(snap) and bucket_properties(snap) == {"team": "x"}
    src = await svc.meta.get_version("live", "big")
    copy = await svc.meta.get_version("live-snap", "big")
    assert copy.manifest == src.manifest and copy.version_id == src.version_id
    for vol, block in src.manifest.block_refs():
        assert await svc.meta.block_refcount(vol, block) == 2
    # the source changes; the snapshot does not
    await put(svc, "live", "big", b"new content")
    await svc.delete_object(ROOT, "live", "small")
    assert await get(svc, "live-snap", "big") == body
    assert await get(svc, "live-snap", "small") == b"tiny"
    # every object write or delete into the snapshot is refused
    refused = [
        svc.put_object(ROOT, PutRequest("live-snap", "x", from_bytes(b"1"))),
        svc.delete_object(ROOT, "live-snap", "big"),
        svc.copy_object(ROOT, CopyRequest("live", "big", None, "live-snap", "c")),
        svc.create_upload(ROOT, "live-snap", "mp", ObjectAttributes()),
        svc.update_object_properties(ROOT, "live-snap", "big", PropertyUpdate(set={"a": "b"})),
        svc.link_object(ROOT, "live", "big", "live-snap", "l"),
        svc.truncate_object(ROOT, "live-snap", "big", 1),
        svc.append_object(ROOT, "live-snap", "big", from_bytes(b"more")),
        svc.touch_object(ROOT, "live-snap", "big"),
        svc.drain_object(ROOT, "live-snap", "big"),
    ]
    for call in refused:
        with pytest.raises(FrozenBucket):
            await call
    assert await get(svc, "live-snap", "big") == body
    # reading from a snapshot into elsewhere is fine; its properties may change
    await svc.link_object(ROOT, "live-snap", "big", "live", "restored")
    assert await get(svc, "live", "restored") == body
    await svc.update_bucket_properties(ROOT, "live-snap", PropertyUpdate(set={"k": "v"}))
    with pytest.raises(BucketNotEmpty):
        await svc.delete_container(ROOT, "live-snap")
    await svc.delete_container(ROOT, "live-snap", force=True)
    with pytest.raises(AccessDenied):
        await svc.snapshot_container(ALICE, "live", "stolen")


async def test_object_properties(svc: ObjectService) -> None:
    await svc.create_container(ROOT, "props", versioning=True)
    v1 = await svc.put_object(
        ROOT,
        PutRequest(
            "props",
            "k",
            from_bytes(b"data"),
            attributes=ObjectAttributes(user_metadata={"a": "1", "b": "2"}),
        ),
    )
    await put(svc, "props", "k", b"second")
    upd = await svc.update_object_properties(
        ROOT, "props", "k", PropertyUpdate(set={"C": "3"}, delete=("a",)), v1.version_id
    )
    assert upd.user_metadata == {"b": "2", "c": "3"} and upd.version_id == v1.version_id
    full = await svc.meta.get_version("props", "k", v1.version_id)
    assert full.user_metadata == {"b": "2", "c": "3"}
    assert (full.last_modified, full.etag, full.manifest) == (
        v1.last_modified,
        v1.etag,
        v1.manifest,
    )
    latest = await svc.update_object_properties(
        ROOT, "props", "k", PropertyUpdate(set={"x": "y"}, clear=True)
    )
    assert latest.user_metadata == {"x": "y"} and latest.version_id != v1.version_id
    with pytest.raises(AccessDenied):
        await svc.update_object_properties(ALICE, "props", "k", PropertyUpdate(clear=True))


async def test_account_admin(svc: ObjectService) -> None:
    assert await svc.create_account_as(ROOT, "bob", "Bob")
    assert not await svc.create_account_as(ROOT, "bob", "Bob")
    with pytest.raises(AccessDenied):
        await svc.create_account_as(ALICE, "eve")
    with pytest.raises(AccessDenied):
        await svc.list_account_ids(ALICE)
    assert await svc.list_account_ids(ROOT) == ["alice", "bob", "root"]
    bob = Principal("bob")
    await svc.create_container(bob, "bobs")
    await svc.put_object(bob, PutRequest("bobs", "k", from_bytes(b"x" * 1234)))
    await svc.create_container(bob, "bobs2")
    stats = await svc.account_stats(bob, "bob")
    assert (stats.containers, stats.objects, stats.bytes) == (2, 1, 1234)
    assert (await svc.account_stats(ROOT, "bob")).objects == 1
    with pytest.raises(AccessDenied):
        await svc.account_stats(ALICE, "bob")
    updated = await svc.update_account_properties(bob, "bob", PropertyUpdate(set={"q": "1"}))
    assert updated.properties == {"q": "1"}
    assert (await svc.meta.get_account("bob")).properties == {"q": "1"}
    with pytest.raises(AccessDenied):
        await svc.update_account_properties(ALICE, "bob", PropertyUpdate(clear=True))
    key = await svc.create_access_key_as(bob, "bob")
    assert (await svc.lookup_key(key.access_key_id)).account_id == "bob"
    with pytest.raises(AccessDenied):
        await svc.create_access_key_as(ALICE, "bob")
    with pytest.raises(AccountNotEmpty):
        await svc.delete_account_as(ROOT, "bob")
    await svc.delete_container(bob, "bobs", force=True)
    await svc.delete_container(bob, "bobs2")
    with pytest.raises(AccessDenied):
        await svc.delete_account_as(bob, "bob")
    await svc.delete_account_as(ROOT, "bob")
    with pytest.raises(AccountNotFound):
        await svc.account_stats(ROOT, "bob")
    with pytest.raises(AccountNotFound):
        await svc.delete_account_as(ROOT, "bob")
    with pytest.raises(AccessDenied):
        await svc.delete_account_as(ROOT, "root")


async def test_object_page(svc: ObjectService) -> None:
    await svc.create_container(ROOT, "pages", versioning=True)
    for key in ["a", "b/1", "b/2", "c", "d", "e"]:
        await svc.put_object(
            ROOT,
            PutRequest(
                "pages",
                key,
                from_bytes(key.encode()),
                attributes=ObjectAttributes(user_metadata={"name": key}),
            ),
        )
    await put(svc, "pages", "c", b"c again")
    await svc.delete_object(ROOT, "pages", "d")
    page = await svc.object_page(ROOT, "pages", limit=2)
    assert [v.key for v in page.versions] == ["a", "b/1"]
    assert page.truncated and page.next_marker == "b/1"
    page = await svc.object_page(ROOT, "pages", marker="b/1", end_marker="e", limit=10)
    assert [v.key for v in page.versions] == ["b/2", "c"] and not page.truncated
    page = await svc.object_page(ROOT, "pages", delimiter="/", end_marker="c")
    assert [v.key for v in page.versions] == ["a"] and page.prefixes == ["b/"]
    assert page.versions[0].user_metadata == {}  # listings do not load properties
    page = await svc.object_page(ROOT, "pages", prefix="b/", properties=True)
    assert [v.user_metadata for v in page.versions] == [{"name": "b/1"}, {"name": "b/2"}]
    vers = await svc.object_page(ROOT, "pages", versions=True, prefix="c")
    assert [v.key for v in vers.versions] == ["c", "c"]
    assert [v.is_latest for v in vers.versions] == [True, False]
    hidden = await svc.object_page(ROOT, "pages", versions=True, prefix="d")
    assert [v.delete_marker for v in hidden.versions] == [False]
    shown = await svc.object_page(ROOT, "pages", versions=True, prefix="d", deleted=True)
    assert [v.delete_marker for v in shown.versions] == [True, False]
    first = await svc.object_page(ROOT, "pages", versions=True, limit=4)
    assert first.truncated and (first.next_marker, first.next_version_marker) == (
        "c",
        first.versions[-1].version_id,
    )
    rest = await svc.object_page(
        ROOT,
        "pages",
        versions=True,
        marker=first.next_marker,
        version_marker=first.next_version_marker,
        deleted=True,
    )
    assert [v.key for v in rest.versions] == ["c", "d", "d", "e"]
    assert not rest.versions[0].is_latest and rest.versions[1].delete_marker
    with pytest.raises(InvalidArgument):
        await svc.object_page(ROOT, "pages", limit=0)
    with pytest.raises(AccessDenied):
        await svc.object_page(ALICE, "pages")
