"""Access keys and bucket records are cached per process for a TTL: changes made
through this process apply at once, changes made elsewhere within the TTL."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tessera.common.clock import FakeClock
from tessera.core.base import CoreOptions
from tessera.core.requests import Principal
from tessera.core.service import ObjectService
from tessera.data.store import SegmentStore
from tessera.data.volume import LocalVolume
from tessera.meta.sql import SqlMetadataStore
from tessera.model.errors import AccessKeyNotFound, BucketNotFound
from tessera.model.records import AccessKey

KEY = "AKCACHE0000000000001"


async def test_key_cache(tmp_path: Path) -> None:
    clock = FakeClock(1_000.0)
    meta = await SqlMetadataStore.connect(f"sqlite:///{tmp_path / 'm.db'}", migrate=True)
    svc = ObjectService(
        meta,
        SegmentStore([LocalVolume(tmp_path / "d0", "d0")]),
        clock=clock,
        options=CoreOptions(key_cache_ttl=5.0),
    )
    try:
        await svc.ensure_account("acct", "Acct", [(KEY, "secret-one")])
        assert (await svc.lookup_key(KEY)).secret == "secret-one"
        await svc.ensure_account("acct", "Acct", [(KEY, "secret-two")])  # through us
        assert (await svc.lookup_key(KEY)).secret == "secret-two"
        # disabled by another process: still served from the cache until the TTL
        await meta.put_access_key(AccessKey(KEY, "secret-two", "acct", 0.0, enabled=False))
        assert (await svc.lookup_key(KEY)).secret == "secret-two"
        clock.advance(5.1)
        with pytest.raises(AccessKeyNotFound):
            await svc.lookup_key(KEY)
        with pytest.raises(AccessKeyNotFound):
            await svc.lookup_key("AKUNKNOWN00000000001")
    finally:
        await svc.close()


async def test_bucket_cache(tmp_path: Path) -> None:
    clock = FakeClock(1_000.0)
    meta = await SqlMetadataStore.connect(f"sqlite:///{tmp_path / 'm.db'}", migrate=True)
    svc = ObjectService(
        meta,
        SegmentStore([LocalVolume(tmp_path / "d0", "d0")]),
        clock=clock,
        options=CoreOptions(bucket_cache_ttl=1.0),
    )
    who = Principal("acct")
    try:
        await svc.ensure_account("acct", "Acct", [(KEY, "secret-one")])
        await svc.create_bucket(who, "cached")
        assert (await svc.head_bucket(who, "cached")).versioning == "unversioned"
        await svc.put_bucket_versioning(who, "cached", "Enabled")  # through us: at once
        assert (await svc.head_bucket(who, "cached")).versioning == "enabled"
        other = dataclasses.replace(await meta.get_bucket("cached"), versioning="suspended")
        await meta.update_bucket(other)  # through another gateway: within the TTL
        assert (await svc.head_bucket(who, "cached")).versioning == "enabled"
        clock.advance(1.1)
        assert (await svc.head_bucket(who, "cached")).versioning == "suspended"
        await svc.delete_bucket(who, "cached")
        with pytest.raises(BucketNotFound):
            await svc.head_bucket(who, "cached")
    finally:
        await svc.close()
