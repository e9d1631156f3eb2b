"""Link, locate, truncate, append, touch and drain through the whole core + data
path + SQLite stack in one process, with small segments so that objects span
several of them: what is shared, what is read, what is refused."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tessera.common.clock import FakeClock
from tessera.common.ranges import ByteRange
from tessera.common.streams import ByteSource, from_bytes, read_all
from tessera.core.edits import segment_etag
from tessera.core.requests import (
    Conditions,
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
    InvalidArgument,
    ObjectDrained,
    ObjectNotFound,
    PreconditionFailed,
)
from tessera.model.manifest import Manifest
from tessera.model.records import ObjectVersion

ROOT = Principal("root")
ALICE = Principal("alice")
SEG = 1000


class RecordingStore(SegmentStore):
    """Remembers the segments and ranges every read asked for."""

    reads: list[tuple[tuple[str, ...], ByteRange | None]]

    def read(
        self, inline: bytes | None, manifest: Manifest, byte_range: ByteRange | None = None
    ) -> ByteSource:
        self.reads.append((tuple(s.hash for s in manifest.segments), byte_range))
        return super().read(inline, manifest, byte_range)


Env = tuple[ObjectService, RecordingStore, FakeClock]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = FakeClock(1_000_000.0)
    meta = await SqlMetadataStore.connect(f"sqlite:///{tmp_path / 'meta.db'}", migrate=True)
    data = RecordingStore(
        [LocalVolume(tmp_path / "d0", "d0")], segment_size=SEG, inline_threshold=100
    )
    data.reads = []
    svc = ObjectService(meta, data, clock=clock)
    await svc.ensure_account("root", "root", [])
    await svc.ensure_account("alice", "alice", [])
    await svc.create_container(ROOT, "bkt", versioning=True)
    yield svc, data, clock
    await svc.close()


async def put(svc: ObjectService, key: str, body: bytes, bucket: str = "bkt") -> ObjectVersion:
    return await svc.put_object(ROOT, PutRequest(bucket, key, from_bytes(body, 333)))


async def get(svc: ObjectService, key: str, bucket: str = "bkt", vid: str | None = None) -> bytes:
    read = await svc.get_object(ROOT, GetRequest(bucket, key, version_id=vid))
    assert read.body is not None
    return await read_all(read.body)


async def refs(svc: ObjectService, v: ObjectVersion) -> list[int]:
    full = await svc.meta.get_version(v.bucket, v.key, v.version_id)
    return [await svc.meta.block_refcount(vol, b) for vol, b in full.manifest.block_refs()]


async def test_truncate_reads_only_the_cut_segment(env: Env) -> None:
    svc, data, _ = env
    body = os.urandom(3500)
    v = await put(svc, "k", body)
    assert [s.size for s in v.manifest.segments] == [1000, 1000, 1000, 500]
    data.reads.clear()
    t = await svc.truncate_object(ROOT, "bkt", "k", 2300, v.version_id)
    # only segment 3 was read, and only its first 300 bytes
    assert data.reads == [((v.manifest.segments[2].hash,), ByteRange(0, 300))]
    assert t.size == 2300 and t.version_id != v.version_id
    assert t.manifest.segments[:2] == v.manifest.segments[:2]  # shared, not rewritten
    assert t.etag == segment_etag(t.manifest) and t.etag.endswith("-3")
    assert await get(svc, "k") == body[:2300]
    assert await get(svc, "k", vid=v.version_id) == body  # the source is intact
    assert (await refs(svc, t))[:2] == [2, 2]  # each shared block counted twice
    # on a segment boundary nothing is read at all
    data.reads.clear()
    t2 = await svc.truncate_object(ROOT, "bkt", "k", 2000, v.version_id)
    assert data.reads == [] and t2.manifest.segments == v.manifest.segments[:2]
    # inside the first segment: the one rewritten segment holds it all, a plain MD5
    t3 = await svc.truncate_object(ROOT, "bkt", "k", 700, v.version_id)
    assert t3.etag == hashlib.md5(body[:700]).hexdigest()
    zero = await svc.truncate_object(ROOT, "bkt", "k", 0)
    assert zero.size == 0 and await get(svc, "k") == b""
    assert zero.etag == hashlib.md5(b"").hexdigest()
    with pytest.raises(InvalidArgument):
        await svc.truncate_object(ROOT, "bkt", "k", 3501, v.version_id)
    with pytest.raises(InvalidArgument):
        await svc.truncate_object(ROOT, "bkt", "k", -1, v.version_id)
    small = await put(svc, "small", b"0123456789")
    ts = await svc.truncate_object(ROOT, "bkt", "small", 4)
    assert ts.inline == b"0123" and ts.etag == hashlib.md5(b"0123").hexdigest()
    assert small.inline is not None


async def test_append_shares_segments_and_reads_nothing(env: Env) -> None:
    svc, data, _ = env
    first, more = os.urandom(2500), os.urandom(1700)
    v = await put(svc, "log", first)
    data.reads.clear()
    a = await svc.append_object(ROOT, "bkt", "log", from_bytes(more, 100))
    assert data.reads == []  # nothing re-read
    assert a.size == 4200 and a.manifest.segments[:3] == v.manifest.segments
    assert a.etag == segment_etag(a.manifest) and a.etag.endswith(f"-{len(a.manifest.segments)}")
    assert await get(svc, "log") == first + more
    assert (await refs(svc, a))[:3] == [2, 2, 2]
    # appending nothing keeps the content (and its ETag)
    same = await svc.append_object(ROOT, "bkt", "log", from_bytes(b""))
    assert same.size == 4200 and same.etag == a.etag
    # a missing key is created; an inline object is re-read (cheap) into a plain MD5
    c = await svc.append_object(ROOT, "bkt", "new", from_bytes(b"abc"), content_type="text/x")
    assert (c.size, c.content_type, c.etag) == (3, "text/x", hashlib.md5(b"abc").hexdigest())
    c2 = await svc.append_object(ROOT, "bkt", "new", from_bytes(b"def" * 100))
    assert c2.etag == hashlib.md5(b"abc" + b"def" * 100).hexdigest()
    assert await get(svc, "new") == b"abc" + b"def" * 100
    # after a delete marker the key is created afresh
    await svc.delete_object(ROOT, "bkt", "new")
    c3 = await svc.append_object(ROOT, "bkt", "new", from_bytes(b"zz"))
    assert c3.size == 2 and await get(svc, "new") == b"zz"


async def test_append_refused_when_the_object_changes_meanwhile(env: Env) -> None:
    svc, _, _ = env
    await put(svc, "race", os.urandom(2500))

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 600
        await put(svc, "race", b"replaced")  # a concurrent writer wins
        yield b"y" * 600

    with pytest.raises(PreconditionFailed):
        await svc.append_object(ROOT, "bkt", "race", body())
    assert await get(svc, "race") == b"replaced"


async def test_link_locate_touch(env: Env) -> None:
    svc, data, clock = env
    body = os.urandom(2200)
    v = await svc.put_object(
        ROOT,
        PutRequest(
            "bkt",
            "src",
            from_bytes(body),
            attributes=ObjectAttributes(content_type="image/png", user_metadata={"color": "red"}),
        ),
    )
    data.reads.clear()
    clock.advance(5)
    link = await svc.link_object(ROOT, "bkt", "src", "bkt", "dir/link")
    assert data.reads == []
    assert link.manifest == v.manifest and link.etag == v.etag
    assert (link.user_metadata, link.content_type) == ({"color": "red"}, "image/png")
    assert link.last_modified == v.last_modified + 5
    assert await get(svc, "dir/link") == body
    assert await refs(svc, link) == [2, 2, 2]
    # delete the source: the link still reads
    await svc.delete_object(ROOT, "bkt", "src", v.version_id)
    assert await get(svc, "dir/link") == body
    loc = await svc.locate_object(ROOT, "bkt", "dir/link")
    assert [s.size for s in loc.manifest.segments] == [1000, 1000, 200]
    assert {f.volume for s in loc.manifest.segments for f in s.fragments} == {"d0"}
    # touch: same version, same data, new mtime
    clock.advance(60)
    t = await svc.touch_object(ROOT, "bkt", "dir/link")
    assert t.version_id == link.version_id and t.last_modified == clock.now()
    again = await svc.describe_object(ROOT, "bkt", "dir/link")
    assert (again.version_id, again.last_modified, again.etag) == (
        link.version_id,
        clock.now(),
        link.etag,
    )
    # another account may not link from or into root's bucket
    with pytest.raises(AccessDenied):
        await svc.link_object(ALICE, "bkt", "dir/link", "bkt", "stolen")
    with pytest.raises(ObjectNotFound):
        await svc.link_object(ROOT, "bkt", "missing", "bkt", "x")


async def test_drain(env: Env) -> None:
    svc, _, _ = env
    body = os.urandom(2500)
    v = await put(svc, "big", body)
    await put(svc, "tiny", b"inline bytes")
    await put(svc, "empty", b"")
    blocks = v.manifest.block_refs()
    await svc.drain_object(ROOT, "bkt", "big")
    assert [await svc.meta.block_refcount(vol, b) for vol, b in blocks] == [0, 0, 0]
    with pytest.raises(ObjectDrained):
        await get(svc, "big")
    head = await svc.get_object(ROOT, GetRequest("bkt", "big"), head=True)  # HEAD still works
    assert (head.version.size, head.version.etag) == (2500, v.etag)
    listed = await svc.object_page(ROOT, "bkt")
    assert [o.key for o in listed.versions] == ["big", "empty", "tiny"]
    # derived objects of a drained one are refused; a copy is drained too
    with pytest.raises(ObjectDrained):
        await svc.link_object(ROOT, "bkt", "big", "bkt", "l")
    with pytest.raises(ObjectDrained):
        await svc.truncate_object(ROOT, "bkt", "big", 10)
    with pytest.raises(ObjectDrained):
        await svc.append_object(ROOT, "bkt", "big", from_bytes(b"more"))
    with pytest.raises(ObjectDrained):
        await svc.copy_object(ROOT, CopyRequest("bkt", "big", None, "bkt", "copy"))
    upload = await svc.create_upload(ROOT, "bkt", "mp", ObjectAttributes())
    with pytest.raises(ObjectDrained):
        await svc.upload_part_copy(
            ROOT,
            "bkt",
            "mp",
            upload.upload_id,
            1,
            src_bucket="bkt",
            src_key="big",
            src_version_id=None,
            src_range=None,
            source_conditions=Conditions(),
        )
    # inline objects drain too; empty ones have nothing to drop
    await svc.drain_object(ROOT, "bkt", "tiny")
    with pytest.raises(ObjectDrained):
        await get(svc, "tiny")
    await svc.drain_object(ROOT, "bkt", "empty")
    assert await get(svc, "empty") == b""
    await svc.drain_object(ROOT, "bkt", "big")  # again: nothing changes
    # a new version is readable again
    await put(svc, "big", b"fresh")
    assert await get(svc, "big") == b"fresh"
