"""Contract suite of :class:`tessera.meta.store.MetadataStore`.

Every test runs against every implementation: SQLite (a file in ``tmp_path``)
and PostgreSQL (a throwaway server started once per session from the
PostgreSQL 15 binaries, one fresh schema per test; skipped when the binaries
are absent). The last section checks SQL-specific promises: migrations match
the live schema, and listings are index seeks.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import pgserver
from tessera.common.clock import FakeClock
from tessera.meta.sql import SqlMetadataStore
from tessera.meta.sql.migrate import SchemaOutOfDate
from tessera.meta.sql.transactions import SqliteRunner, open_runner
from tessera.meta.store import MetadataStore
from tessera.model.cluster import DiskInfo, ManifestRow, ServerInfo
from tessera.model.errors import (
    AccessKeyNotFound,
    AccountAlreadyExists,
    AccountNotFound,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    BucketNotFound,
    InvalidArgument,
    ObjectNotFound,
    ServerNotFound,
    UploadNotFound,
    VersionNotFound,
)
from tessera.model.manifest import FragmentRef, Manifest, Segment
from tessera.model.records import (
    AccessKey,
    Account,
    Bucket,
    ObjectPart,
    ObjectVersion,
    Part,
    Upload,
)

T0 = 1_700_000_000.0
ORDER_KEYS = [
    "a",
    "a/b",
    "a!",
    "a\nb",
    "a\x7f",
    "A",
    "b",
    "é",
    "\u00ff",
    "\u0100",
    "\uffef",
    "\ue000",
    "\U0001f600",
    "\U0001f600/x",
    "\U0010ffff",
    "z z",
    "0",
]


# -- PostgreSQL server (one per session) ---------------------------------------------------
@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a throwaway PostgreSQL server (fsync off: it holds test data only)."""
    try:
        with pgserver.postgres() as url:
            yield url
    except pgserver.Unavailable as e:
        pytest.skip(str(e))


def _pg_schema_url(pg_url: str) -> str:
    """A fresh, empty schema of the session server, as the URL's search_path."""
    schema = "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine.dispose()
    return f"{pg_url}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return _pg_schema_url(request.getfixturevalue("pg_url"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def store(db_url: str, clock: FakeClock) -> AsyncIterator[SqlMetadataStore]:
    s = await SqlMetadataStore.connect(db_url, clock=clock)
    yield s
    await s.close()


@pytest.fixture
async def bucket(store: MetadataStore) -> str:
    await store.create_account(Account("acct", "Account", T0))
    await store.create_bucket(Bucket("bkt", "acct", T0))
    return "bkt"


# -- record helpers ---------------------------------------------------------------------------
def manifest(*refs: tuple[str, str]) -> Manifest:
    """One segment per ``(volume, block)``."""
    return Manifest(
        tuple(Segment(10, "plain", f"h-{b}", (FragmentRef(0, b, 10, v, 7),)) for v, b in refs)
    )


def ver(
    key: str,
    vid: str = "null",
    *refs: tuple[str, str],
    bucket: str = "bkt",
    marker: bool = False,
    size: int = 10,
    inline: bytes | None = None,
) -> ObjectVersion:
    return ObjectVersion(
        bucket,
        key,
        vid,
        T0,
        size=0 if marker else size,
        etag="" if marker else "e",
        delete_marker=marker,
        inline=inline,
        manifest=manifest(*refs),
    )


async def refcounts(store: MetadataStore, *blocks: str) -> list[int]:
    return [await store.block_refcount("v1", b) for b in blocks]


def ids(items: list[ObjectVersion]) -> list[tuple[str, str]]:
    return [(v.key, v.version_id) for v in items]


async def check_latest(store: MetadataStore, bucket: str, key: str) -> None:
    """Exactly the newest version of ``key`` is latest, and get_version agrees."""
    vs = [v for v in await store.list_versions(bucket, key, limit=100000) if v.key == key]
    assert [v.is_latest for v in vs] == [True] + [False] * (len(vs) - 1)
    got = await store.get_version(bucket, key)
    assert (got.version_id, got.is_latest) == (vs[0].version_id, True)


# -- accounts and keys -------------------------------------------------------------------------
async def test_accounts(store: MetadataStore) -> None:
    b = Account("b-id", "Bee", T0, email="b@x", properties={"quota": "10", "ü": "✓"})
    await store.create_account(b)
    await store.create_account(Account("a-id", "Ay", T0 + 1))
    assert await store.get_account("b-id") == b
    assert [a.id for a in await store.list_accounts()] == ["a-id", "b-id"]
    with pytest.raises(AccountAlreadyExists):
        await store.create_account(Account("b-id", "Other", T0))
    assert (await store.get_account("b-id")).display_name == "Bee"
    with pytest.raises(AccountNotFound):
        await store.get_account("nope")
    with pytest.raises(AccountNotFound):
        await store.delete_account("nope")
    await store.put_access_key(AccessKey("K1", "s", "a-id", T0))
    await store.delete_account("a-id")
    with pytest.raises(AccountNotFound):
        await store.get_account("a-id")
    with pytest.raises(AccessKeyNotFound):
        await store.get_access_key("K1")
    assert [a.id for a in await store.list_accounts()] == ["b-id"]


async def test_delete_account_owning_buckets(store: MetadataStore) -> None:
    await store.create_account(Account("acct", "A", T0))
    await store.create_bucket(Bucket("bkt", "acct", T0))
    with pytest.raises(BucketNotEmpty):
        await store.delete_account("acct")
    await store.delete_bucket("bkt")
    await store.delete_account("acct")


async def test_access_keys(store: MetadataStore) -> None:
    with pytest.raises(AccountNotFound):
        await store.put_access_key(AccessKey("K0", "s", "ghost", T0))
    await store.create_account(Account("a", "A", T0))
    await store.create_account(Account("b", "B", T0))
    assert await store.list_access_keys("a") == []
    await store.put_access_key(AccessKey("K2", "s2", "a", T0 + 2))
    await store.put_access_key(AccessKey("K1", "s1", "a", T0 + 1))
    await store.put_access_key(AccessKey("K3", "s3", "a", T0 + 3))
    assert [k.access_key_id for k in await store.list_access_keys("a")] == ["K1", "K2", "K3"]
    moved = AccessKey("K2", "new", "b", T0 + 5, enabled=False)
    await store.put_access_key(moved)
    assert await store.get_access_key("K2") == moved
    assert [k.access_key_id for k in await store.list_access_keys("b")] == ["K2"]
    await store.delete_access_key("K1")
    with pytest.raises(AccessKeyNotFound):
        await store.delete_access_key("K1")
    with pytest.raises(AccessKeyNotFound):
        await store.get_access_key("K1")
    assert [k.access_key_id for k in await store.list_access_keys("a")] == ["K3"]


# -- buckets -----------------------------------------------------------------------------------
async def test_bucket_conflicts(store: MetadataStore) -> None:
    await store.create_account(Account("a", "A", T0))
    await store.create_account(Account("b", "B", T0))
    await store.create_bucket(Bucket("bkt", "a", T0, versioning="enabled"))
    with pytest.raises(BucketAlreadyOwnedByYou):
        await store.create_bucket(Bucket("bkt", "a", T0 + 1))
    with pytest.raises(BucketAlreadyExists):
        await store.create_bucket(Bucket("bkt", "b", T0 + 1))
    got = await store.get_bucket("bkt")
    assert (got.owner, got.versioning, got.created) == ("a", "enabled", T0)


async def test_bucket_get_list_update(store: MetadataStore) -> None:
    for name, owner in [("zeta", "a"), ("alpha", "b"), ("mid", "a")]:
        await store.create_bucket(Bucket(name, owner, T0))
    assert [b.name for b in await store.list_buckets()] == ["alpha", "mid", "zeta"]
    assert [b.name for b in await store.list_buckets("a")] == ["mid", "zeta"]
    assert await store.list_buckets("nobody") == []
    old = await store.get_bucket("mid")
    new = replace(
        old,
        versioning="suspended",
        policy="rep/n=3",
        object_lock=True,
        tags={"t": "1"},
        config={"cors": "<CORSConfiguration/>", "policy": '{"a": "é"}'},
    )
    await store.update_bucket(new)
    assert await store.get_bucket("mid") == new
    with pytest.raises(BucketNotFound):
        await store.update_bucket(Bucket("ghost", "a", T0))
    with pytest.raises(BucketNotFound):
        await store.get_bucket("ghost")


async def test_delete_bucket(store: MetadataStore, bucket: str) -> None:
    with pytest.raises(BucketNotFound):
        await store.delete_bucket("ghost")
    await store.put_version(ver("k", "v1"))
    with pytest.raises(BucketNotEmpty):
        await store.delete_bucket(bucket)
    await store.put_version(ver("k", "m1", marker=True))
    await store.delete_version(bucket, "k", "v1")
    with pytest.raises(BucketNotEmpty):  # only a delete marker left
        await store.delete_bucket(bucket)
    await store.delete_version(bucket, "k", "m1")
    await store.create_upload(Upload(bucket, "k", "u1", T0, "acct"))
    await store.put_part(Part("u1", 1, 10, "e", T0, b"m" * 16, manifest=manifest(("v1", "p1"))))
    assert await refcounts(store, "p1") == [1]
    await store.delete_bucket(bucket)  # unfinished uploads go with the bucket
    assert await refcounts(store, "p1") == [0]
    with pytest.raises(BucketNotFound):
        await store.get_bucket(bucket)
    with pytest.raises(UploadNotFound):
        await store.get_upload(bucket, "u1")


# -- versions ---------------------------------------------------------------------------------
async def test_put_get_full_record(store: MetadataStore, bucket: str) -> None:
    v = ObjectVersion(
        bucket,
        "dir/ключ\n😀",
        "v1",
        T0 + 0.25,
        size=1234,
        etag="abc-2",
        is_latest=False,  # ignored on writes
        content_type="text/plain; charset=utf-8",
        headers={"content-encoding": "gzip", "cache-control": "no-cache"},
        user_metadata={"owner": "émile", "empty": ""},
        tags={"k": "v"},
        checksums={"CRC32": "AAAAAA==-2"},
        storage_class="STANDARD_IA",
        owner="acct",
        manifest=manifest(("v1", "b1"), ("v2", "b2")),
        parts=(ObjectPart(1, 1000, {"CRC32": "AAAAAA=="}), ObjectPart(3, 234)),
        upload_id="u-9",
    )
    assert await store.put_version(v) is None
    assert await store.get_version(bucket, v.key) == replace(v, is_latest=True)
    assert await store.get_version(bucket, v.key, "v1") == replace(v, is_latest=True)
    small = ver("small", "null", inline=b"\x00\xffdata")
    await store.put_version(small)
    assert (await store.get_version(bucket, "small")).inline == b"\x00\xffdata"
    [listed] = await store.list_latest(bucket, "small")
    assert listed == replace(small, inline=None)  # listing records: no content
    [listed] = await store.list_versions(bucket, "small")
    assert listed == replace(small, inline=None)
    [listed] = await store.list_latest(bucket, "dir/")
    assert (listed.parts, listed.upload_id) == ((), "")  # listings read neither
    assert (listed.checksums, listed.owner, listed.storage_class) == (
        {"CRC32": "AAAAAA==-2"},
        "acct",
        "STANDARD_IA",
    )
    assert (listed.last_modified, listed.is_latest, listed.delete_marker) == (
        T0 + 0.25,
        True,
        False,
    )


async def test_put_version_missing_bucket(store: MetadataStore) -> None:
    with pytest.raises(BucketNotFound):
        await store.put_version(ver("k", "v1", ("v1", "b1"), bucket="ghost"))
    assert await refcounts(store, "b1") == [0]


async def test_get_version_errors(store: MetadataStore, bucket: str) -> None:
    with pytest.raises(ObjectNotFound):
        await store.get_version(bucket, "k")
    with pytest.raises(VersionNotFound):
        await store.get_version(bucket, "k", "v1")
    await store.put_version(ver("k", "v1"))
    with pytest.raises(VersionNotFound):
        await store.get_version(bucket, "k", "v2")
    with pytest.raises(VersionNotFound):
        await store.get_version(bucket, "other", "v1")


async def test_null_version_replacement(store: MetadataStore, bucket: str) -> None:
    first = ver("k", "null", ("v1", "b1"), ("v1", "shared"))
    assert await store.put_version(first) is None
    second = ver("k", "null", ("v1", "b2"), ("v1", "shared"), size=99)
    displaced = await store.put_version(second)
    assert displaced == first
    assert await refcounts(store, "b1", "b2", "shared") == [0, 1, 1]
    assert ids(await store.list_versions(bucket)) == [("k", "null")]
    assert (await store.get_version(bucket, "k")).size == 99


async def test_null_version_deep_in_history(store: MetadataStore, bucket: str) -> None:
    await store.put_version(ver("k", "v1"))
    await store.put_version(ver("k", "null", ("v1", "old")))
    await store.put_version(ver("k", "v2"))
    displaced = await store.put_version(ver("k", "null", ("v1", "new")))
    assert displaced is not None and displaced.is_latest is False
    assert ids(await store.list_versions(bucket)) == [("k", "null"), ("k", "v2"), ("k", "v1")]
    await check_latest(store, bucket, "k")
    assert await refcounts(store, "old", "new") == [0, 1]


async def test_delete_markers_and_promotion(store: MetadataStore, bucket: str) -> None:
    await store.put_version(ver("k", "v1", ("v1", "b1")))
    await store.put_version(ver("k", "v2", ("v1", "b2")))
    await store.put_version(ver("k", "m3", marker=True))
    latest = await store.get_version(bucket, "k")
    assert (latest.version_id, latest.delete_marker, latest.is_latest) == ("m3", True, True)
    assert await store.list_latest(bucket) == []
    assert (await store.get_version(bucket, "k", "v2")).is_latest is False
    removed = await store.delete_version(bucket, "k", "m3")
    assert (removed.version_id, removed.delete_marker, removed.is_latest) == ("m3", True, True)
    assert ids(await store.list_latest(bucket)) == [("k", "v2")]
    await check_latest(store, bucket, "k")
    removed = await store.delete_version(bucket, "k", "v1")  # not latest: nothing moves
    assert removed.is_latest is False
    assert await refcounts(store, "b1", "b2") == [0, 1]
    await check_latest(store, bucket, "k")
    await store.put_version(ver("k", "v4"))
    await store.delete_version(bucket, "k", "v4")
    await check_latest(store, bucket, "k")
    assert (await store.get_version(bucket, "k")).version_id == "v2"
    await store.delete_version(bucket, "k", "v2")
    with pytest.raises(ObjectNotFound):
        await store.get_version(bucket, "k")
    with pytest.raises(VersionNotFound):
        await store.delete_version(bucket, "k", "v2")
    assert await refcounts(store, "b1", "b2") == [0, 0]


class Refused(Exception):
    pass


def refuse(seen: list[ObjectVersion | None]) -> Callable[[ObjectVersion | None], None]:
    """A guard that records what it is shown, then refuses."""

    def guard(v: ObjectVersion | None) -> None:
        seen.append(v)
        raise Refused

    return guard


async def test_put_version_guard(store: MetadataStore, bucket: str) -> None:
    seen: list[ObjectVersion | None] = []
    with pytest.raises(Refused):
        await store.put_version(ver("k", "v1", ("v1", "b1")), refuse(seen))
    assert seen == [None]  # the key has no version
    with pytest.raises(ObjectNotFound):
        await store.get_version(bucket, "k")
    assert await refcounts(store, "b1") == [0]
    shown: list[ObjectVersion | None] = []
    await store.put_version(ver("k", "v1", ("v1", "b1")), shown.append)
    await store.put_version(ver("k", "null", ("v1", "b2"), size=5), shown.append)
    assert shown[0] is None
    assert shown[1] is not None
    assert (shown[1].version_id, shown[1].size, shown[1].etag) == ("v1", 10, "e")
    # A refused put changes nothing, not even the null version it would replace.
    seen.clear()
    with pytest.raises(Refused):
        await store.put_version(ver("k", "null", ("v1", "b3")), refuse(seen))
    [latest] = seen
    assert latest is not None
    assert (latest.version_id, latest.size, latest.delete_marker) == ("null", 5, False)
    assert ids(await store.list_versions(bucket)) == [("k", "null"), ("k", "v1")]
    assert await refcounts(store, "b1", "b2", "b3") == [1, 1, 0]
    await check_latest(store, bucket, "k")
    # Delete markers are shown as such.
    await store.put_version(ver("k", "m1", marker=True))
    seen.clear()
    with pytest.raises(Refused):
        await store.put_version(ver("k", "v2"), refuse(seen))
    [latest] = seen
    assert latest is not None
    assert (latest.version_id, latest.delete_marker) == ("m1", True)
    assert (await store.get_version(bucket, "k")).version_id == "m1"


async def test_delete_version_guard(store: MetadataStore, bucket: str) -> None:
    await store.put_version(ver("k", "v1", ("v1", "b1")))
    await store.put_version(ver("k", "v2", ("v1", "b2"), size=7))
    seen: list[ObjectVersion | None] = []
    with pytest.raises(Refused):
        await store.delete_version(bucket, "k", "v2", refuse(seen))
    [shown] = seen
    assert shown is not None
    assert (shown.version_id, shown.size, shown.is_latest) == ("v2", 7, True)
    assert ids(await store.list_versions(bucket)) == [("k", "v2"), ("k", "v1")]
    await check_latest(store, bucket, "k")
    assert await refcounts(store, "b1", "b2") == [1, 1]
    seen.clear()
    with pytest.raises(VersionNotFound):  # missing: the guard is not called
        await store.delete_version(bucket, "k", "v9", refuse(seen))
    assert seen == []
    shown_ok: list[ObjectVersion] = []
    removed = await store.delete_version(bucket, "k", "v2", shown_ok.append)
    assert [v.version_id for v in shown_ok] == ["v2"] and removed.version_id == "v2"
    await check_latest(store, bucket, "k")
    assert await refcounts(store, "b1", "b2") == [1, 0]


async def test_update_version(store: MetadataStore, bucket: str) -> None:
    await store.put_version(ver("k", "v1", ("v1", "b1")))
    await store.put_version(ver("k", "v2"))
    old = await store.get_version(bucket, "k", "v1")
    changed = replace(
        old,
        tags={"a": "b"},
        user_metadata={"m": "ü"},
        headers={"content-language": "fr"},
        content_type="image/png",
        checksums={"SHA256": "x"},
        acl="public-read",
        size=1,  # not an updatable field
        etag="zzz",
    )
    await store.update_version(changed)
    got = await store.get_version(bucket, "k", "v1")
    assert got == replace(changed, size=old.size, etag=old.etag)
    assert ids(await store.list_versions(bucket)) == [("k", "v2"), ("k", "v1")]
    assert await refcounts(store, "b1") == [1]
    with pytest.raises(VersionNotFound):
        await store.update_version(replace(changed, version_id="v9"))


async def test_list_latest_byte_order(store: MetadataStore, bucket: str) -> None:
    keys = ORDER_KEYS[:]
    random.Random(7).shuffle(keys)
    for k in keys:
        await store.put_version(ver(k))
    expected = sorted(keys, key=lambda k: k.encode())
    assert [v.key for v in await store.list_latest(bucket)] == expected
    paged, after = [], None
    while page := await store.list_latest(bucket, after=after, limit=3):
        paged += [v.key for v in page]
        after = page[-1].key
    assert paged == expected

    def starting(p: str) -> list[str]:
        return [k for k in expected if k.startswith(p)]

    for prefix in ["a", "a/", "é", "\U0001f600", "\U0010ffff", "\uffef", "zz", "A"]:
        assert [v.key for v in await store.list_latest(bucket, prefix)] == starting(prefix)
    assert [v.key for v in await store.list_latest(bucket, "a", after="a!")] == [
        k for k in starting("a") if k.encode() > b"a!"
    ]
    assert [v.key for v in await store.list_latest(bucket, "é", after="a")] == ["é"]
    assert await store.list_latest(bucket, "a", after="b") == []
    assert await store.list_latest(bucket, limit=0) == []
    assert [v.key for v in await store.list_latest(bucket, after="\U0001f600")] == [
        "\U0001f600/x",
        "\U0010ffff",
    ]


async def test_list_latest_skips_hidden(store: MetadataStore, bucket: str) -> None:
    for i in range(5):
        await store.put_version(ver(f"k{i}", "v1"))
        await store.put_version(ver(f"k{i}", "v2", size=i))
    await store.put_version(ver("k1", "m", marker=True))
    await store.put_version(ver("k3", "m", marker=True))
    live = await store.list_latest(bucket)
    assert ids(live) == [("k0", "v2"), ("k2", "v2"), ("k4", "v2")]
    assert await store.count_objects(bucket) == (3, 0 + 2 + 4)
    assert await store.count_objects("empty-or-missing") == (0, 0)


async def test_list_versions(store: MetadataStore, bucket: str) -> None:
    await store.put_version(ver("b", "b1"))
    await store.put_version(ver("a", "a1"))
    await store.put_version(ver("a", "a2"))
    await store.put_version(ver("c", "c1"))
    await store.put_version(ver("a", "am", marker=True))
    await store.put_version(ver("b", "b2"))
    await store.put_version(ver("é", "e1"))
    full = await store.list_versions(bucket)
    expected = [
        ("a", "am"),
        ("a", "a2"),
        ("a", "a1"),
        ("b", "b2"),
        ("b", "b1"),
        ("c", "c1"),
        ("é", "e1"),
    ]
    assert ids(full) == expected
    assert [(v.is_latest, v.delete_marker) for v in full[:3]] == [
        (True, True),
        (False, False),
        (False, False),
    ]
    assert all(v.inline is None and not v.manifest.segments for v in full)
    paged: list[tuple[str, str]] = []
    after_key: str | None = None
    after_version: str | None = None
    while page := await store.list_versions(bucket, "", after_key, after_version, limit=2):
        paged += ids(page)
        after_key, after_version = page[-1].key, page[-1].version_id
    assert paged == expected
    assert ids(await store.list_versions(bucket, "", "a", "a2")) == expected[2:]
    assert ids(await store.list_versions(bucket, "", "a", "zzz")) == expected[3:]  # unknown version
    assert ids(await store.list_versions(bucket, "", "a")) == expected[3:]
    assert ids(await store.list_versions(bucket, "b")) == expected[3:5]
    assert ids(await store.list_versions(bucket, "b", "b", "b2")) == [("b", "b1")]
    assert ids(await store.list_versions(bucket, "b", "a", "a2")) == expected[3:5]
    assert ids(await store.list_versions(bucket, "", "a", "am", limit=1)) == [("a", "a2")]
    assert await store.list_versions(bucket, limit=0) == []


# -- multipart ------------------------------------------------------------------------------
def part(upload_id: str, number: int, *refs: tuple[str, str], etag: str = "p") -> Part:
    return Part(upload_id, number, 10 * len(refs), etag, T0, md5=b"\x01" * 16,
                checksums={"CRC32C": "abc"}, manifest=manifest(*refs))  # fmt: skip


async def test_uploads(store: MetadataStore, bucket: str) -> None:
    with pytest.raises(BucketNotFound):
        await store.create_upload(Upload("ghost", "k", "u0", T0, "acct"))
    await store.create_bucket(Bucket("other", "acct", T0))
    u = Upload(bucket, "k", "u1", T0, "acct", content_type="text/x", headers={"a": "b"},
               user_metadata={"m": "1"}, tags={"t": "2"}, storage_class="GLACIER",
               policy="ec/k=4,m=2", checksum_algorithm="CRC32", checksum_type="COMPOSITE", acl="public-read")  # fmt: skip
    await store.create_upload(u)
    assert await store.get_upload(bucket, "u1") == u
    with pytest.raises(UploadNotFound):
        await store.get_upload("other", "u1")
    with pytest.raises(UploadNotFound):
        await store.get_upload(bucket, "nope")
    for key, uid in [("b", "u2"), ("k", "u3"), ("a", "u4"), ("k", "u0"), ("é", "u5")]:
        await store.create_upload(Upload(bucket, key, uid, T0, "acct"))
    await store.create_upload(Upload("other", "k", "u9", T0, "acct"))

    def uids(us: list[Upload]) -> list[str]:
        return [x.upload_id for x in us]

    assert uids(await store.list_uploads(bucket)) == ["u4", "u2", "u1", "u3", "u0", "u5"]
    assert uids(await store.list_uploads(bucket, "k")) == ["u1", "u3", "u0"]
    assert uids(await store.list_uploads(bucket, key_marker="b")) == ["u1", "u3", "u0", "u5"]
    assert uids(await store.list_uploads(bucket, "", "k", "u3")) == ["u0", "u5"]
    assert uids(await store.list_uploads(bucket, "", "k", "unknown")) == ["u5"]
    assert uids(await store.list_uploads(bucket, limit=2)) == ["u4", "u2"]
    assert uids(await store.list_uploads(bucket, "", "k", "u1", limit=1)) == ["u3"]


async def test_parts(store: MetadataStore, bucket: str) -> None:
    with pytest.raises(UploadNotFound):
        await store.put_part(part("nope", 1, ("v1", "x")))
    assert await refcounts(store, "x") == [0]
    await store.create_upload(Upload(bucket, "k", "u1", T0, "acct"))
    p1 = part("u1", 1, ("v1", "a"), ("v1", "a"))
    assert await store.put_part(p1) is None
    assert await refcounts(store, "a") == [2]
    p1b = part("u1", 1, ("v1", "b"), etag="second")
    assert await store.put_part(p1b) == p1
    assert await refcounts(store, "a", "b") == [0, 1]
    inline_part = replace(part("u1", 3), inline=b"tiny")
    await store.put_part(inline_part)
    await store.put_part(part("u1", 2, ("v1", "c")))
    assert [p.number for p in await store.list_parts("u1")] == [1, 2, 3]
    assert await store.list_parts("u1") == [p1b, part("u1", 2, ("v1", "c")), inline_part]
    assert [p.number for p in await store.list_parts("u1", after=1, limit=1)] == [2]
    assert await store.list_parts("u1", after=3) == []
    assert await store.list_parts("nope") == []


async def test_complete_upload(store: MetadataStore, bucket: str) -> None:
    await store.put_version(ver("k", "null", ("v1", "old")))
    await store.create_upload(Upload(bucket, "k", "u1", T0, "acct"))
    await store.put_part(part("u1", 1, ("v1", "a"), ("v1", "b")))
    await store.put_part(part("u1", 2, ("v1", "c")))
    await store.put_part(part("u1", 3, ("v1", "unused")))
    final = replace(
        ver("k", "null", ("v1", "a"), ("v1", "b"), ("v1", "c")),
        parts=(ObjectPart(1, 20, {"SHA256": "x"}), ObjectPart(2, 10, {"SHA256": "y"})),
    )
    with pytest.raises(UploadNotFound):  # wrong bucket: nothing happens
        await store.complete_upload("ghost", "u1", final)
    with pytest.raises(UploadNotFound):
        await store.get_completed_upload(bucket, "k", "u1")
    displaced = await store.complete_upload(bucket, "u1", final)
    assert displaced is not None and displaced.manifest == manifest(("v1", "old"))
    assert await refcounts(store, "a", "b", "c", "unused", "old") == [1, 1, 1, 0, 0]
    stored = replace(final, upload_id="u1")  # the store records the upload id
    assert await store.get_version(bucket, "k") == stored
    assert await store.get_completed_upload(bucket, "k", "u1") == stored
    assert await store.list_parts("u1") == []
    with pytest.raises(UploadNotFound):
        await store.get_upload(bucket, "u1")
    with pytest.raises(UploadNotFound):
        await store.complete_upload(bucket, "u1", final)
    assert await refcounts(store, "a") == [1]


async def test_get_completed_upload(store: MetadataStore, bucket: str) -> None:
    """A completed upload is found while its version exists, as is (not latest
    any more too), and no longer once that version is deleted or replaced."""
    for uid in ("u1", "u2"):
        await store.create_upload(Upload(bucket, "k", uid, T0, "acct"))
        await store.put_part(part(uid, 1, ("v1", uid)))
    await store.complete_upload(bucket, "u1", ver("k", "v1", ("v1", "u1")))
    await store.put_version(ver("k", "v2"))  # newer version: u1's is not latest
    found = await store.get_completed_upload(bucket, "k", "u1")
    assert (found.version_id, found.is_latest, found.upload_id) == ("v1", False, "u1")
    with pytest.raises(UploadNotFound):  # another key
        await store.get_completed_upload(bucket, "other", "u1")
    with pytest.raises(UploadNotFound):  # not completed
        await store.get_completed_upload(bucket, "k", "u2")
    await store.delete_version(bucket, "k", "v1")
    with pytest.raises(UploadNotFound):
        await store.get_completed_upload(bucket, "k", "u1")
    # The null version completed from u2, then overwritten by a plain put.
    await store.complete_upload(bucket, "u2", ver("k", "null", ("v1", "u2")))
    assert (await store.get_completed_upload(bucket, "k", "u2")).version_id == "null"
    await store.put_version(ver("k", "null"))
    with pytest.raises(UploadNotFound):
        await store.get_completed_upload(bucket, "k", "u2")
    # A plain put never carries the id of an upload by accident.
    assert (await store.get_version(bucket, "k")).upload_id == ""


async def test_complete_upload_guard(store: MetadataStore, bucket: str) -> None:
    await store.put_version(ver("k", "null", ("v1", "old")))
    await store.create_upload(Upload(bucket, "k", "u1", T0, "acct"))
    await store.put_part(part("u1", 1, ("v1", "a")))
    final = ver("k", "null", ("v1", "a"))
    seen: list[ObjectVersion | None] = []
    with pytest.raises(Refused):
        await store.complete_upload(bucket, "u1", final, refuse(seen))
    [shown] = seen
    assert shown is not None and shown.version_id == "null"
    # Nothing changed: the upload, its part and the old version are all there.
    assert (await store.get_upload(bucket, "u1")).key == "k"
    assert [p.number for p in await store.list_parts("u1")] == [1]
    assert (await store.get_version(bucket, "k")).manifest == manifest(("v1", "old"))
    assert await refcounts(store, "a", "old") == [1, 1]
    displaced = await store.complete_upload(bucket, "u1", final, lambda v: None)
    assert displaced is not None and displaced.manifest == manifest(("v1", "old"))
    assert await refcounts(store, "a", "old") == [1, 0]


async def test_abort_upload(store: MetadataStore, bucket: str) -> None:
    await store.create_upload(Upload(bucket, "k", "u1", T0, "acct"))
    await store.put_part(part("u1", 1, ("v1", "a"), ("v1", "shared")))
    await store.put_version(ver("k", "v1", ("v1", "shared")))
    with pytest.raises(UploadNotFound):
        await store.abort_upload("ghost", "u1")
    await store.abort_upload(bucket, "u1")
    assert await refcounts(store, "a", "shared") == [0, 1]
    with pytest.raises(UploadNotFound):
        await store.abort_upload(bucket, "u1")
    with pytest.raises(UploadNotFound):
        await store.put_part(part("u1", 2))


# -- block references and garbage -------------------------------------------------------------
async def test_refcounts_and_repetition(store: MetadataStore, bucket: str) -> None:
    assert await store.block_refcount("v1", "never") == 0
    await store.put_version(ver("k1", "v1", ("v1", "x"), ("v1", "x"), ("v2", "x")))
    await store.put_version(ver("k2", "v1", ("v1", "x")))
    assert await refcounts(store, "x") == [3]
    assert await store.block_refcount("v2", "x") == 1
    await store.delete_version(bucket, "k1", "v1")
    assert await refcounts(store, "x") == [1]
    assert await store.block_refcount("v2", "x") == 0


async def test_known_blocks(store: MetadataStore, bucket: str) -> None:
    assert await store.known_blocks("v1", []) == set()
    await store.put_version(ver("k1", "v1", ("v1", "x"), ("v2", "y")))
    await store.put_version(ver("k2", "v1", ("v1", "z")))
    await store.delete_version(bucket, "k2", "v1")  # z at zero: known (the GC's)
    names = ["x", "y", "z", "orphan"] + [f"n{i}" for i in range(1200)]  # several IN chunks
    assert await store.known_blocks("v1", names) == {"x", "z"}
    assert await store.known_blocks("v2", names) == {"y"}


async def test_claim_garbage_timing(store: MetadataStore, bucket: str, clock: FakeClock) -> None:
    await store.put_version(ver("k", "v1", ("v1", "early")))
    await store.put_version(ver("k", "v2", ("v1", "late")))
    await store.put_version(ver("k", "v3", ("v1", "kept")))
    await store.delete_version(bucket, "k", "v1")  # "early" drops at T0
    clock.advance(10)
    await store.delete_version(bucket, "k", "v2")  # "late" drops at T0 + 10
    assert await store.claim_garbage(T0) == []  # strictly before
    assert await store.claim_garbage(T0 + 10) == [("v1", "early")]
    assert await store.claim_garbage(T0 + 10) == []  # forgotten once claimed
    # Re-referenced after dropping: not garbage; dropped again: a new time.
    await store.put_version(ver("k", "v4", ("v1", "late")))
    assert await store.claim_garbage(T0 + 100) == []
    clock.advance(10)
    await store.delete_version(bucket, "k", "v4")
    assert await store.claim_garbage(T0 + 20) == []
    assert await store.claim_garbage(T0 + 20.5) == [("v1", "late")]
    assert await store.block_refcount("v1", "kept") == 1


async def test_claim_garbage_limit_oldest_first(
    store: MetadataStore, bucket: str, clock: FakeClock
) -> None:
    for i in range(5):
        await store.put_version(ver(f"k{i}", "v", ("v1", f"g{i}")))
    for i in (3, 1, 4, 0, 2):
        clock.advance(1)
        await store.delete_version(bucket, f"k{i}", "v")
    assert sorted(await store.claim_garbage(T0 + 100, limit=2)) == [("v1", "g1"), ("v1", "g3")]
    assert await store.claim_garbage(T0 + 100, limit=0) == []
    assert sorted(await store.claim_garbage(T0 + 100)) == [("v1", "g0"), ("v1", "g2"), ("v1", "g4")]


# -- concurrency --------------------------------------------------------------------------------
async def test_concurrent_null_puts_one_key(store: MetadataStore, bucket: str) -> None:
    n = 48
    puts = [ver("hot", "null", ("v1", f"b{i}"), ("v1", "common")) for i in range(n)]
    displaced = await asyncio.gather(*(store.put_version(v) for v in puts))
    assert sum(d is None for d in displaced) == 1  # exactly the first committed
    final = await store.get_version(bucket, "hot")
    assert ids(await store.list_versions(bucket)) == [("hot", "null")]
    survivors = [v for v in puts if v.manifest == final.manifest]
    assert len(survivors) == 1
    counts = await refcounts(store, *(f"b{i}" for i in range(n)))
    assert sorted(counts) == [0] * (n - 1) + [1]
    assert await refcounts(store, "common") == [1]


async def test_concurrent_guarded_puts_one_key(store: MetadataStore, bucket: str) -> None:
    """Create-only puts racing on one key: the guard sees every committed put,
    so exactly one succeeds (check and write are atomic)."""

    def absent(v: ObjectVersion | None) -> None:
        if v is not None:
            raise Refused

    n = 32
    puts = [ver("hot", f"v{i:02}", ("v1", f"c{i}")) for i in range(n)]
    results = await asyncio.gather(
        *(store.put_version(v, absent) for v in puts), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, Refused) for r in results if r is not None)
    assert len(await store.list_versions(bucket)) == 1
    assert sorted(await refcounts(store, *(f"c{i}" for i in range(n)))) == [0] * (n - 1) + [1]
    # Compare-and-set on the ETag: each writer expects the ETag it last saw.
    current = await store.get_version(bucket, "hot")

    def expect(etag: str) -> Callable[[ObjectVersion | None], None]:
        def guard(v: ObjectVersion | None) -> None:
            if v is None or v.etag != etag:
                raise Refused

        return guard

    updates = [replace(ver("hot", f"w{i:02}"), etag=f"w{i}") for i in range(n)]
    results = await asyncio.gather(
        *(store.put_version(u, expect(current.etag)) for u in updates), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert len(await store.list_versions(bucket)) == 2
    await check_latest(store, bucket, "hot")


async def test_concurrent_versioned_puts_and_deletes(store: MetadataStore, bucket: str) -> None:
    n = 48
    await asyncio.gather(
        *(store.put_version(ver(f"k{i % 3}", f"v{i:03}", ("v1", "s"))) for i in range(n))
    )
    assert await refcounts(store, "s") == [n]
    for k in ("k0", "k1", "k2"):
        await check_latest(store, bucket, k)
    assert len(await store.list_latest(bucket)) == 3
    # Delete every version concurrently with new puts on the same keys.
    doomed = await store.list_versions(bucket)
    results = await asyncio.gather(
        *(store.delete_version(bucket, v.key, v.version_id) for v in doomed),
        *(store.put_version(ver(f"k{i}", f"new{i}", ("v1", "s"))) for i in range(3)),
    )
    assert len(results) == n + 3
    assert ids(await store.list_latest(bucket)) == [("k0", "new0"), ("k1", "new1"), ("k2", "new2")]
    for k in ("k0", "k1", "k2"):
        await check_latest(store, bucket, k)
    assert await refcounts(store, "s") == [3]


async def test_failures_do_not_leak_into_concurrent_writes(
    store: MetadataStore, bucket: str
) -> None:
    calls = []
    for i in range(30):
        if i % 3 == 0:
            calls.append(store.put_version(ver(f"k{i}", "v", ("v1", f"x{i}"), bucket="ghost")))
        elif i % 3 == 1:
            calls.append(store.delete_version(bucket, "absent", "v"))
        else:
            calls.append(store.put_version(ver(f"k{i}", "v", ("v1", f"x{i}"))))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, BucketNotFound) for r in results[0::3])
    assert all(isinstance(r, VersionNotFound) for r in results[1::3])
    assert all(r is None for r in results[2::3])
    assert len(await store.list_latest(bucket)) == 10
    assert await refcounts(store, *(f"x{i}" for i in range(30))) == [
        int(i % 3 == 2) for i in range(30)
    ]


async def test_concurrent_parts_and_abort(store: MetadataStore, bucket: str) -> None:
    await store.create_upload(Upload(bucket, "k", "u1", T0, "acct"))
    replaced = await asyncio.gather(
        *(store.put_part(part("u1", 1, ("v1", f"p{i}"))) for i in range(24))
    )
    assert sum(r is None for r in replaced) == 1
    assert sorted(await refcounts(store, *(f"p{i}" for i in range(24)))) == [0] * 23 + [1]
    # Parts racing an abort: each either fails or is released by the abort.
    results = await asyncio.gather(
        *(store.put_part(part("u1", n, ("v1", f"q{n}"))) for n in range(2, 20)),
        store.abort_upload(bucket, "u1"),
        *(store.put_part(part("u1", n, ("v1", f"q{n}"))) for n in range(20, 40)),
        return_exceptions=True,
    )
    assert all(r is None or isinstance(r, UploadNotFound) for r in results)
    assert await store.list_parts("u1") == []
    assert await refcounts(store, *(f"q{n}" for n in range(2, 40))) == [0] * 38


# -- cluster map ----------------------------------------------------------------------------
def server(sid: str, *disks: str, url: str = "http://h:9101", zone: str = "z1",
           at: float = T0) -> ServerInfo:  # fmt: skip
    return ServerInfo(sid, url, zone, tuple(DiskInfo(d, 1.0, 100, 50) for d in disks),
                      heartbeat=at)  # fmt: skip


async def test_register_and_reregister(store: MetadataStore) -> None:
    # state and registered of the input are ignored for a new server
    given = replace(server("s1", "d1"), state="removed", registered=5.0)
    stored = await store.register_server(given)
    assert stored == replace(given, state="active", registered=T0, heartbeat=T0)
    assert await store.get_server("s1") == stored
    assert (await store.set_server_state("s1", "draining")).state == "draining"
    again = ServerInfo("s1", "http://new:1", "z2", (DiskInfo("d1", 2.0, 7, 3), DiskInfo("d2")),
                       state="active", heartbeat=T0 + 10, registered=T0 + 10)  # fmt: skip
    stored = await store.register_server(again)
    assert stored == replace(again, state="draining", registered=T0)  # state, registered kept
    assert await store.get_server("s1") == stored
    assert await store.list_servers() == [stored]


async def test_list_servers_order(store: MetadataStore) -> None:
    assert await store.list_servers() == []
    names = ["s1", "S", "é", "s0", "s10", "\U0001f600"]
    for i, sid in enumerate(names):
        await store.register_server(server(sid, f"d{i}"))
    assert [s.id for s in await store.list_servers()] == sorted(names)


async def test_heartbeat_server(store: MetadataStore) -> None:
    assert await store.heartbeat_server("s1", (DiskInfo("d1"),), T0) is False
    assert await store.list_servers() == []
    disks = (DiskInfo("d1", 2.0, 100, 50), DiskInfo("d2", 1.0, 300, 200))
    await store.register_server(ServerInfo("s1", "http://h", "z", disks, heartbeat=T0))
    fresh = (DiskInfo("d1", 9.0, 110, 10), DiskInfo("unknown", 1.0, 1, 1))
    assert await store.heartbeat_server("s1", fresh, T0 + 5) is True
    got = await store.get_server("s1")
    # capacities of d1 refreshed (weight kept), d2 untouched, unknown ignored
    assert got.disks == (DiskInfo("d1", 2.0, 110, 10), DiskInfo("d2", 1.0, 300, 200))
    assert (got.heartbeat, got.registered, got.state) == (T0 + 5, T0, "active")
    await store.set_server_state("s1", "removed")
    assert await store.heartbeat_server("s1", (), T0 + 9) is True
    got = await store.get_server("s1")
    assert (got.heartbeat, got.state, got.disks[0].free) == (T0 + 9, "removed", 10)


async def test_duplicate_disk_ids_refused(store: MetadataStore) -> None:
    await store.register_server(server("s1", "d1", "d2"))
    with pytest.raises(InvalidArgument) as info:
        await store.register_server(server("s2", "d3", "d2"))
    assert info.value.details["disk_id"] == "d2"
    assert info.value.details["other_server_id"] == "s1"
    assert "d2" in info.value.message and "s1" in info.value.message
    with pytest.raises(ServerNotFound):
        await store.get_server("s2")  # nothing stored
    with pytest.raises(InvalidArgument):
        await store.register_server(server("s2", "d3", "d3"))  # twice on one server
    # moving a disk from one existing server to another is refused too
    await store.register_server(server("s2", "d3"))
    with pytest.raises(InvalidArgument):
        await store.register_server(server("s2", "d3", "d1"))
    assert [d.id for d in (await store.get_server("s2")).disks] == ["d3"]
    await store.register_server(server("s1", "d2", "d1"))  # its own disks again: fine
    await store.delete_server("s1")
    assert [d.id for d in (await store.register_server(server("s2", "d1"))).disks] == ["d1"]


async def test_concurrent_registrations_claim_a_disk_once(store: MetadataStore) -> None:
    results = await asyncio.gather(
        *(store.register_server(server(f"s{i}", f"own{i}", "shared")) for i in range(16)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ServerInfo) for r in results) == 1
    assert all(isinstance(r, (ServerInfo, InvalidArgument)) for r in results)
    assert len(await store.list_servers()) == 1


async def test_server_state_and_delete(store: MetadataStore) -> None:
    with pytest.raises(ServerNotFound):
        await store.get_server("s1")
    with pytest.raises(ServerNotFound):
        await store.set_server_state("s1", "draining")
    with pytest.raises(ServerNotFound):
        await store.delete_server("s1")
    await store.register_server(server("s1", "d1"))
    await store.register_server(server("s2", "d2"))
    with pytest.raises(InvalidArgument):
        await store.set_server_state("s1", "asleep")
    assert (await store.get_server("s1")).state == "active"
    for state in ("draining", "removed", "active"):
        assert (await store.set_server_state("s1", state)).state == state
    await store.delete_server("s1")
    with pytest.raises(ServerNotFound):
        await store.get_server("s1")
    with pytest.raises(ServerNotFound):
        await store.delete_server("s1")
    assert [s.id for s in await store.list_servers()] == ["s2"]


# -- manifest scan and repair ---------------------------------------------------------------
async def scan_all(store: MetadataStore, limit: int) -> list[ManifestRow]:
    rows: list[ManifestRow] = []
    after: str | None = None
    while True:
        page = await store.scan_manifests(after, limit)
        assert len(page) <= limit
        if not page:
            return rows
        rows += page
        after = page[-1].cursor


async def test_scan_manifests_paging(store: MetadataStore, bucket: str) -> None:
    assert await store.scan_manifests(None, 10) == []
    expected: list[tuple[str, Manifest]] = []
    for i in range(7):
        m = manifest(("v1", f"k{i}"), ("v2", f"k{i}"))
        await store.put_version(ver(f"k{i}", f"v{i}", ("v1", f"k{i}"), ("v2", f"k{i}")))
        expected.append(("version", m))
        await store.put_version(ver(f"k{i}", f"i{i}", inline=b"tiny"))  # inline: skipped
        await store.put_version(ver(f"k{i}", f"m{i}", marker=True))  # marker: skipped
    await store.put_version(ver("k0", "null"))  # no segments at all: skipped
    # upload ids whose byte order differs from a naive "id:number" string order
    uids = ("ab", "ab-x", "a", "é", "ab0")
    for uid in uids:
        await store.create_upload(Upload(bucket, "mp", uid, T0, "acct"))
        for n in (11, 2, 1):
            await store.put_part(part(uid, n, ("v1", f"{uid}.{n}")))
        await store.put_part(replace(part(uid, 3), inline=b"x"))  # inline part: skipped
    for uid in sorted(uids):  # code-point order is UTF-8 byte order
        expected += [("part", manifest(("v1", f"{uid}.{n}"))) for n in (1, 2, 11)]
    full = await store.scan_manifests(None, 1000)
    assert [(r.kind, r.manifest) for r in full] == expected
    assert all(r.text == r.manifest.to_json() for r in full)
    cursors = [r.cursor for r in full]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    for limit in (1, 2, 3, 7, 8):
        assert await scan_all(store, limit) == full
    # resuming from any cursor gives exactly the rest
    for i, row in enumerate(full):
        assert await store.scan_manifests(row.cursor, 1000) == full[i + 1 :]
    assert await store.scan_manifests(None, 0) == []
    for bad in ("", "x:1", "o:12", "p:zz.0000000001", "p:61"):
        with pytest.raises(InvalidArgument):
            await store.scan_manifests(bad, 10)


async def test_scan_manifests_after_removed_rows(store: MetadataStore, bucket: str) -> None:
    """A cursor stays valid when its row is deleted: the scan resumes after it."""
    for i in range(3):
        await store.put_version(ver("k", f"v{i}", ("v1", f"b{i}")))
    await store.create_upload(Upload(bucket, "mp", "u1", T0, "acct"))
    await store.put_part(part("u1", 1, ("v1", "p1")))
    await store.put_part(part("u1", 2, ("v1", "p2")))
    first = await store.scan_manifests(None, 1)
    await store.delete_version(bucket, "k", "v0")
    rest = await store.scan_manifests(first[0].cursor, 10)
    assert [r.manifest for r in rest] == [manifest(("v1", b)) for b in ("b1", "b2", "p1", "p2")]
    part_row = rest[2]
    await store.abort_upload(bucket, "u1")
    assert await store.scan_manifests(part_row.cursor, 10) == []


async def test_replace_manifest(store: MetadataStore, bucket: str, clock: FakeClock) -> None:
    await store.put_version(ver("k", "v1", ("v1", "old"), ("v1", "keep")))
    await store.put_version(ver("k2", "v1", ("v1", "old")))  # another reference to old
    [row, other] = await store.scan_manifests(None, 10)
    new = manifest(("v1", "new"), ("v1", "keep"))
    assert await store.replace_manifest(row, new) is True
    assert (await store.get_version(bucket, "k", "v1")).manifest == new
    assert await refcounts(store, "old", "keep", "new") == [1, 1, 1]
    assert await store.replace_manifest(row, manifest(("v1", "x"))) is False  # stale
    assert await refcounts(store, "old", "keep", "new", "x") == [1, 1, 1, 0]
    assert (await store.get_version(bucket, "k", "v1")).manifest == new
    clock.advance(5)
    assert await store.replace_manifest(other, manifest(("v1", "moved"))) is True
    assert await refcounts(store, "old", "moved") == [0, 1]
    # the released block is garbage after the grace delay, like any release
    assert await store.claim_garbage(T0 + 5) == []
    assert await store.claim_garbage(T0 + 6) == [("v1", "old")]
    # the fresh row (new text) can be replaced; identical manifests change nothing
    [row, other] = await store.scan_manifests(None, 10)
    assert row.text == new.to_json()
    assert await store.replace_manifest(row, new) is True
    assert await refcounts(store, "keep", "new") == [1, 1]
    # a row that is gone
    await store.delete_version(bucket, "k2", "v1")
    assert await store.replace_manifest(other, manifest(("v1", "y"))) is False
    assert await refcounts(store, "y", "moved") == [0, 0]
    with pytest.raises(InvalidArgument):
        await store.replace_manifest(row, Manifest())
    with pytest.raises(InvalidArgument):
        await store.replace_manifest(replace(row, cursor="bogus"), new)


async def test_replace_manifest_of_part(store: MetadataStore, bucket: str) -> None:
    await store.create_upload(Upload(bucket, "k", "u1", T0, "acct"))
    await store.put_part(part("u1", 1, ("v1", "a"), ("v1", "a")))
    await store.put_part(part("u1", 2, ("v1", "b")))
    rows = await store.scan_manifests(None, 10)
    assert [r.kind for r in rows] == ["part", "part"]
    assert await store.replace_manifest(rows[0], manifest(("v1", "a"), ("v2", "a"))) is True
    assert await refcounts(store, "a", "b") == [1, 1]
    assert await store.block_refcount("v2", "a") == 1
    p1 = (await store.list_parts("u1"))[0]
    assert p1.manifest == manifest(("v1", "a"), ("v2", "a"))
    assert await store.replace_manifest(rows[0], manifest(("v1", "z"))) is False
    await store.put_part(part("u1", 2, ("v1", "c")))  # replaced since the scan
    assert await store.replace_manifest(rows[1], manifest(("v1", "z"))) is False
    assert await refcounts(store, "b", "c", "z") == [0, 1, 0]


async def test_concurrent_replace_manifest_and_delete(store: MetadataStore, bucket: str) -> None:
    """Swaps racing deletes and overwrites never leak or lose a reference."""
    n = 24
    for i in range(n):
        await store.put_version(ver(f"k{i}", "null", ("v1", f"a{i}")))
    rows = await store.scan_manifests(None, 1000)
    results = await asyncio.gather(
        *(store.replace_manifest(r, manifest(("v1", f"b{i}"))) for i, r in enumerate(rows)),
        *(store.delete_version(bucket, f"k{i}", "null") for i in range(0, n, 3)),
        *(store.put_version(ver(f"k{i}", "null", ("v1", f"c{i}"))) for i in range(1, n, 3)),
    )
    swapped = results[:n]
    for i in range(n):
        a, b, c = await refcounts(store, f"a{i}", f"b{i}", f"c{i}")
        assert a == 0
        if i % 3 == 2:
            assert swapped[i] is True and (b, c) == (1, 0)
        elif i % 3 == 0:  # deleted: nothing referenced whatever the order
            assert (b, c) == (0, 0)
        else:  # overwritten: only the newest put's blocks remain
            assert (b, c) == (0, 1)


# -- SQL specifics: lifecycle, migrations, plans --------------------------------------------
async def test_reopen_and_migrate_false(db_url: str, clock: FakeClock) -> None:
    s = await SqlMetadataStore.connect(db_url, clock=clock)
    await s.create_account(Account("a", "A", T0))
    await s.close()
    await s.close()  # idempotent
    with pytest.raises(RuntimeError):
        await s.get_account("a")
    s = await SqlMetadataStore.connect(db_url, migrate=False)
    assert (await s.get_account("a")).display_name == "A"
    await s.close()


async def test_migrate_false_on_empty_database(tmp_path: Path) -> None:
    with pytest.raises(SchemaOutOfDate):
        await SqlMetadataStore.connect(f"sqlite:///{tmp_path / 'empty.db'}", migrate=False)


async def test_migrations_match_schema(store: SqlMetadataStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tessera.meta.sql.schema import metadata

    def diff(conn: sa.Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return [d for d in compare_metadata(ctx, metadata) if "alembic_version" not in str(d)]

    assert await store._db.read(diff) == []


async def test_migration_0003_keeps_part_sizes(db_url: str) -> None:
    """Rows written at revision 0002 (``part_sizes``) read back as parts 1..N."""
    from alembic import command

    from tessera.meta.sql.migrate import alembic_config

    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0002")
            conn.exec_driver_sql(
                "INSERT INTO buckets (name, owner, created, region, versioning, policy, "
                "object_lock) VALUES ('bkt', 'acct', 0, 'us-east-1', 'unversioned', 'plain', "
                "false)"
            )
            for key, sizes in (("mp", "[5242880,7]"), ("plain", None)):
                conn.execute(
                    sa.text(
                        "INSERT INTO versions (bucket, key, version_id, is_latest, "
                        "delete_marker, last_modified, size, etag, storage_class, owner, "
                        "content_type, part_sizes) VALUES ('bkt', :k, 'null', true, false, "
                        "0, 5242887, 'e-2', 'STANDARD', 'acct', 'x', :p)"
                    ),
                    {"k": key, "p": sizes},
                )
    finally:
        engine.dispose()
    s = await SqlMetadataStore.connect(db_url)
    try:
        mp = await s.get_version("bkt", "mp")
        assert mp.parts == (ObjectPart(1, 5242880), ObjectPart(2, 7))
        assert mp.upload_id == ""
        assert (await s.get_version("bkt", "plain")).parts == ()
    finally:
        await s.close()


async def test_migration_0004_on_existing_data(db_url: str, clock: FakeClock) -> None:
    """A database with objects and parts at revision 0003 upgrades to the cluster
    map; its manifests are scanned and repaired like new ones."""
    from alembic import command

    from tessera.meta.sql.migrate import alembic_config, current_revision

    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0003")
            assert current_revision(conn) == "0003"
    finally:
        engine.dispose()
    # Write data with the current code against the 0003 schema (the tables it
    # uses are unchanged by 0004), then upgrade.
    from tessera.meta.sql.transactions import open_runner

    runner = open_runner(db_url)
    s = SqlMetadataStore(runner, clock)
    try:
        await s.create_account(Account("acct", "A", T0))
        await s.create_bucket(Bucket("bkt", "acct", T0))
        await s.put_version(ver("k", "v1", ("v1", "a")))
        await s.put_version(ver("k", "v2", inline=b"x"))
        await s.create_upload(Upload("bkt", "k", "u1", T0, "acct"))
        await s.put_part(part("u1", 1, ("v1", "p")))
    finally:
        await s.close()
    s = await SqlMetadataStore.connect(db_url, clock=clock)
    try:
        assert await s.list_servers() == []
        assert (await s.register_server(server("s1", "v1"))).state == "active"
        rows = await s.scan_manifests(None, 10)
        assert [(r.kind, r.manifest) for r in rows] == [
            ("version", manifest(("v1", "a"))),
            ("part", manifest(("v1", "p"))),
        ]
        assert await s.replace_manifest(rows[0], manifest(("v1", "b"))) is True
        assert await refcounts(s, "a", "b", "p") == [0, 1, 1]
        assert (await s.get_version("bkt", "k", "v2")).inline == b"x"
    finally:
        await s.close()


async def test_manifest_scan_is_index_seeks(store: SqlMetadataStore) -> None:
    """Scan pages seek the primary keys of versions and parts, with no sort step."""
    from tessera.meta.sql import manifests as m

    queries: list[tuple[Any, dict[str, object]]] = [
        (m._SCAN_VERSIONS, {"seq": 5, "n": 100}),
        (m._SCAN_PARTS_OF_UPLOAD, {"u": "u1", "num": 3, "n": 100}),
        (m._SCAN_PARTS_AFTER, {"u": "u1", "n": 100}),
        (m._SCAN_PARTS_FROM, {"u": "", "n": 100}),
        (m._SWAP_VERSION, {"seq": 5, "old": "[]", "new": "[]"}),
        (m._SWAP_PART, {"u": "u1", "num": 3, "old": "[]", "new": "[]"}),
    ]
    dialect = store._db.dialect
    pg = dialect.name == "postgresql"

    def plans(conn: sa.Connection) -> list[str]:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        if pg:  # an empty table has no statistics: rule out what only suits tiny tables
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute("SET LOCAL enable_bitmapscan = off")
        out = []
        for stmt, params in queries:
            sql, defaults = dialect.compiled(stmt)
            cur.execute(("EXPLAIN " if pg else "EXPLAIN QUERY PLAN ") + sql, {**defaults, **params})
            out.append("\n".join(str(r[0] if pg else r[3]) for r in cur.fetchall()))
        return out

    for plan in await store._db.read(plans, snapshot=True):
        if pg:
            assert "_pkey" in plan and "Seq Scan" not in plan and "Sort" not in plan, plan
        else:
            assert "SEARCH" in plan and ("PRIMARY KEY" in plan or "autoindex" in plan), plan
            assert "SCAN " not in plan and "TEMP B-TREE" not in plan, plan


async def test_listings_are_index_seeks(store: SqlMetadataStore, bucket: str) -> None:
    """The planner serves listings and lookups from the intended indexes, with
    no sort step, exactly as the store compiles and runs them."""
    from tessera.meta.sql import versions as v

    queries = {
        "ux_versions_live": v.listing(True, bucket, "a/", "a/m", 1000),
        "ix_versions_order": v.listing(False, bucket, "a/", "a/m", 1000),
        # On an empty table PostgreSQL may pick either index on (bucket, key...).
        "_versions_": (v._GET_NAMED, {"b": bucket, "k": "a/x", "vid": "v"}),
    }
    dialect = store._db.dialect
    pg = dialect.name == "postgresql"

    def plans(conn: sa.Connection) -> dict[str, str]:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        if pg:
            cur.execute("SET LOCAL enable_seqscan = off")
        out = {}
        for index, (stmt, params) in queries.items():
            sql, defaults = dialect.compiled(stmt)
            cur.execute(("EXPLAIN " if pg else "EXPLAIN QUERY PLAN ") + sql, {**defaults, **params})
            out[index] = "\n".join(str(r[0] if pg else r[3]) for r in cur.fetchall())
        return out

    for index, plan in (await store._db.read(plans)).items():
        assert index in plan and "Seq Scan" not in plan and "SCAN versions" not in plan, plan
        assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan


async def test_sqlite_durability_settings(store: SqlMetadataStore) -> None:
    if store._db.dialect.name != "sqlite":
        pytest.skip("SQLite connection settings")

    def pragmas(conn: sa.Connection) -> tuple[object, ...]:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        return tuple(raw.execute(f"PRAGMA {n}").fetchone()[0] for n in names)

    assert await store._db.read(pragmas) == ("wal", 2, 1, 10000)  # 2: FULL
    assert await store._db.write(pragmas) == ("wal", 2, 1, 10000)


async def test_sqlite_in_memory(clock: FakeClock) -> None:
    s = await SqlMetadataStore.connect("sqlite://", clock=clock)
    try:
        await s.create_account(Account("acct", "A", T0))
        await s.create_bucket(Bucket("bkt", "acct", T0))
        await asyncio.gather(*(s.put_version(ver(f"k{i}")) for i in range(20)))
        assert len(await s.list_latest("bkt")) == 20
    finally:
        await s.close()


async def test_postgres_reconnects(store: SqlMetadataStore, bucket: str, db_url: str) -> None:
    """Connections killed under the store are replaced; the call is retried."""
    if store._db.dialect.name != "postgresql":
        pytest.skip("PostgreSQL connection loss")
    await asyncio.gather(*(store.put_version(ver(f"k{i}")) for i in range(40)))
    killer = sa.create_engine(db_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        killed = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = current_database() "
            "AND backend_type = 'client backend'"
        ).scalar()
    killer.dispose()
    assert killed
    await asyncio.gather(*(store.put_version(ver(f"k{i}", "v2")) for i in range(40)))
    assert len(await store.list_versions(bucket)) == 80


# -- leases ---------------------------------------------------------------------------------------
async def test_leases(store: MetadataStore, clock: FakeClock) -> None:
    assert await store.acquire_lease("healer", "gw-a", 10)
    assert not await store.acquire_lease("healer", "gw-b", 10)  # held by a
    assert await store.acquire_lease("other", "gw-b", 10)  # leases are independent
    clock.advance(5)
    assert await store.acquire_lease("healer", "gw-a", 10)  # renewed to T0 + 15
    clock.advance(9)
    assert not await store.acquire_lease("healer", "gw-b", 10)
    clock.advance(2)  # expired
    assert await store.acquire_lease("healer", "gw-b", 10)
    assert not await store.acquire_lease("healer", "gw-a", 10)


async def test_leases_race(store: MetadataStore) -> None:
    won = await asyncio.gather(*(store.acquire_lease("gc", f"gw-{i}", 60) for i in range(8)))
    assert sum(won) == 1


# -- shared statuses ------------------------------------------------------------------------------
async def test_shared_statuses(store: MetadataStore, clock: FakeClock) -> None:
    assert await store.get_status("heal") is None
    await store.put_status("heal", "host:1", {"running": True, "rows": 3, "list": [1, "é"]})
    got = await store.get_status("heal")
    assert got is not None
    assert (got.name, got.holder, got.updated) == ("heal", "host:1", clock.now())
    assert got.body == {"running": True, "rows": 3, "list": [1, "é"]}
    clock.advance(7)
    await store.put_status("heal", "host:2", {"running": False})  # another process, later
    got = await store.get_status("heal")
    assert got is not None and (got.holder, got.body, got.updated) == (
        "host:2",
        {"running": False},
        clock.now(),
    )
    assert await store.get_status("scrub") is None  # names are independent


# -- where reads run ---------------------------------------------------------------------------
async def test_sqlite_point_lookups_run_on_the_callers_thread(tmp_path: Path) -> None:
    """A file database answers lookups on the calling thread (no hand-off) and
    other reads on its reader threads; in memory, everything is the writer's."""
    here = threading.get_ident()

    def thread(_conn: Any) -> int:
        return threading.get_ident()

    for url, lookup_here in [(f"sqlite:///{tmp_path / 'm.db'}", True), ("sqlite://", False)]:
        runner = open_runner(url)
        try:
            assert (await runner.lookup(thread) == here) is lookup_here
            assert await runner.read(thread) != here
        finally:
            await runner.close()


async def test_lookups_see_each_write_once_it_is_answered(
    store: MetadataStore, bucket: str
) -> None:
    """Lookups (on their own connection) never lag behind acknowledged writes."""
    for i in range(30):
        await store.put_version(ver("k", f"v{i:02d}"))
        assert (await store.get_version(bucket, "k")).version_id == f"v{i:02d}"
        await store.delete_version(bucket, "k", f"v{i:02d}")
        with pytest.raises(ObjectNotFound):
            await store.get_version(bucket, "k")


async def test_lookup_connections_of_ended_threads_are_closed(tmp_path: Path) -> None:
    """Each thread that calls lookup gets a reader connection of its own; when
    the thread ends, it is closed and forgotten (not kept until the store closes)."""
    runner = open_runner(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        await runner.lookup(lambda conn: 1)  # this (long-lived) thread's own
        assert isinstance(runner, SqliteRunner)
        baseline = len(runner._reader_conns)
        opened: list[Any] = []

        def call() -> None:
            opened.append(asyncio.run(runner.lookup(lambda conn: conn)))

        for _ in range(6):
            t = threading.Thread(target=call)
            t.start()
            t.join()
            del t
        gc.collect()
        assert len(opened) == 6 and len({id(c) for c in opened}) == 6
        assert len(runner._reader_conns) == baseline
        assert all(c.closed for c in opened)
        assert await runner.lookup(lambda conn: 2) == 2  # this thread's still works
    finally:
        await runner.close()
    assert not runner._reader_conns


async def test_sqlite_writers_take_turns_on_the_write_lock_file(tmp_path: Path) -> None:
    """Every write transaction of a file database holds ``<db>-writer.lock``
    (flock), so writers of several processes queue in the kernel: while someone
    else holds it, a write waits; once released, it commits."""
    import fcntl

    db = tmp_path / "m.db"
    runner = open_runner(f"sqlite:///{db}")
    other = open_runner(f"sqlite:///{db}")  # a second process's runner, in effect
    try:
        await runner.write(lambda conn: conn.exec_driver_sql("CREATE TABLE t (x INTEGER)"))
        lock = tmp_path / "m.db-writer.lock"
        assert lock.exists()
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            task = asyncio.ensure_future(
                runner.write(lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES (1)"))
            )
            done, _ = await asyncio.wait({task}, timeout=0.3)
            assert not done  # waiting for the lock
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        await task
        await asyncio.gather(
            *(
                r.write(lambda conn, i=i: conn.exec_driver_sql(f"INSERT INTO t VALUES ({i})"))
                for i in range(2, 42)
                for r in (runner, other)
            )
        )
        count = await other.read(
            lambda conn: conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
        )
        assert count == 1 + 2 * 40
    finally:
        await runner.close()
        await other.close()
