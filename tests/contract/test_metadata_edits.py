"""Contract tests of the MetadataStore methods the SDK's object operations need:
``update_account``, ``touch_version``, ``drain_version``. Same fixtures (and
so the same implementations: SQLite and PostgreSQL) as the main suite."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_metadata_store import (  # fixtures and helpers of the main suite
    T0,
    bucket,
    clock,
    db_url,
    pg_url,
    refcounts,
    store,
    ver,
)

from tessera.common.clock import FakeClock
from tessera.meta.store import MetadataStore
from tessera.model.errors import AccountNotFound, VersionNotFound
from tessera.model.records import Account

__all__ = ["bucket", "clock", "db_url", "pg_url", "store"]  # fixtures, used by name


async def test_update_account(store: MetadataStore) -> None:
    await store.create_account(Account("a1", "One", T0, email="a@x"))
    await store.update_account(
        Account("a1", "Renamed", T0 + 50, email="b@x", properties={"tier": "gold", "é": "ü"})
    )
    got = await store.get_account("a1")
    assert (got.display_name, got.email, got.created) == ("Renamed", "b@x", T0)  # created kept
    assert got.properties == {"tier": "gold", "é": "ü"}
    await store.update_account(replace(got, properties={}))
    assert (await store.get_account("a1")).properties == {}
    with pytest.raises(AccountNotFound):
        await store.update_account(Account("ghost", "G", T0))
    assert [a.id for a in await store.list_accounts()] == ["a1"]


async def test_touch_version(store: MetadataStore, bucket: str) -> None:
    await store.put_version(ver("k", "v1", ("v1", "a")))
    await store.put_version(ver("k", "v2", ("v1", "b")))
    await store.touch_version(bucket, "k", "v1", T0 + 99)
    old = await store.get_version(bucket, "k", "v1")
    assert old.last_modified == T0 + 99
    assert not old.is_latest  # order is not clock order: v2 stays latest
    latest = await store.get_version(bucket, "k")
    assert (latest.version_id, latest.last_modified) == ("v2", T0)
    assert old.manifest == ver("k", "v1", ("v1", "a")).manifest
    assert await refcounts(store, "a", "b") == [1, 1]
    listed = await store.list_versions(bucket)
    assert [(v.version_id, v.last_modified) for v in listed] == [("v2", T0), ("v1", T0 + 99)]
    with pytest.raises(VersionNotFound):
        await store.touch_version(bucket, "k", "v9", T0)
    with pytest.raises(VersionNotFound):
        await store.touch_version(bucket, "nokey", "v1", T0)


async def test_drain_version(store: MetadataStore, bucket: str, clock: FakeClock) -> None:
    await store.put_version(ver("k", "v1", ("v1", "a"), ("v1", "shared")))
    await store.put_version(ver("other", "v1", ("v1", "shared")))
    await store.put_version(ver("small", "null", inline=b"0123456789"))
    before = await store.drain_version(bucket, "k", "v1")
    assert before.manifest == ver("k", "v1", ("v1", "a"), ("v1", "shared")).manifest
    assert await refcounts(store, "a", "shared") == [0, 1]  # the other object keeps its own
    after = await store.get_version(bucket, "k", "v1")
    assert after.inline is None and after.manifest.segments == ()
    assert (after.size, after.etag, after.is_latest) == (10, "e", True)  # the record stays
    assert [v.key for v in await store.list_latest(bucket)] == ["k", "other", "small"]
    # released references become garbage after the usual delay
    assert await store.claim_garbage(T0 + 1) == [("v1", "a")]
    again = await store.drain_version(bucket, "k", "v1")  # idempotent
    assert again.manifest.segments == ()
    assert await refcounts(store, "shared") == [1]
    inline = await store.drain_version(bucket, "small", "null")
    assert inline.inline == b"0123456789"
    assert (await store.get_version(bucket, "small")).inline is None
    with pytest.raises(VersionNotFound):
        await store.drain_version(bucket, "k", "v9")
    # deleting a drained version releases nothing more
    await store.delete_version(bucket, "k", "v1")
    assert await refcounts(store, "a", "shared") == [0, 1]
