"""State and access checks shared by the service's operation groups."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from tessera.common.clock import Clock, SystemClock
from tessera.core.access import require_bucket
from tessera.core.requests import Principal
from tessera.data.contract import DataStore
from tessera.meta.store import MetadataStore
from tessera.model.records import AccessKey, Bucket

BUCKET_CACHE_SIZE = 10_000
"""Cached bucket records per process; the cache is simply emptied when full."""


@dataclass(frozen=True, slots=True)
class CoreOptions:
    region: str = "us-east-1"
    default_policy: str = "plain"
    """Policy of new buckets (and of storage classes not in ``storage_classes``)."""
    storage_classes: Mapping[str, str] = field(default_factory=dict)
    """``x-amz-storage-class`` -> storage policy for objects sent with that class;
    classes not listed use their bucket's policy."""
    min_part_size: int = 5 << 20
    """Minimum size of every part but the last (S3: 5 MiB)."""
    max_object_size: int = 5 << 40
    max_part_size: int = 5 << 30
    max_parts: int = 10000
    max_buckets_per_account: int = 1000
    key_cache_ttl: float = 5.0
    """Seconds an access key looked up for a request is reused (0: no cache)."""
    bucket_cache_ttl: float = 1.0
    """Seconds a bucket record read for a request is reused (0: no cache). A
    change made through this process applies at once; one made through another
    gateway (versioning, ACL, deletion) within this delay, as S3 itself warns
    that bucket configuration changes take time to propagate."""


class CacheEpoch(Protocol):
    """Says when cached bucket and access-key records may be stale because another
    process sharing the metadata store changed one (``tessera serve --workers``).

    :meth:`bump` is called after every committed change of a bucket record or a
    key; :meth:`token` is read before each cached lookup, and a token unlike the
    last one read empties both caches. Both must be cheap (every request)."""

    def token(self) -> bytes: ...

    def bump(self) -> None: ...


class LocalEpoch:
    """The epoch of a process that is alone with its caches: its own changes
    already forget what they change, so nothing more is needed."""

    def token(self) -> bytes:
        return b""

    def bump(self) -> None:
        pass


class ServiceBase:
    """Holds the injected stores; operation groups (mixins) build on it."""

    def __init__(
        self,
        meta: MetadataStore,
        data: DataStore,
        *,
        clock: Clock | None = None,
        options: CoreOptions | None = None,
    ) -> None:
        self.meta = meta
        self.data = data
        self.clock: Clock = clock or SystemClock()
        self.options = options or CoreOptions()
        self.default_policy: Callable[[], str] = lambda: self.options.default_policy
        """Policy of new buckets; replaceable (a cluster's ``auto`` policy follows
        the number of chunk servers)."""
        self._key_cache: dict[str, tuple[AccessKey, float]] = {}
        self._buckets: dict[str, tuple[Bucket, float]] = {}
        """Bucket records by name, each reused for ``options.bucket_cache_ttl``."""
        self.epoch: CacheEpoch = LocalEpoch()
        """Replaceable (before the first request) when several processes share
        the metadata store and should see each other's changes at once."""
        self._epoch_seen = b""

    def policy_for(self, bucket: Bucket, storage_class: str) -> str:
        """The storage policy of an object written to ``bucket`` with ``storage_class``."""
        return self.options.storage_classes.get(storage_class) or bucket.policy

    async def _bucket(self, who: Principal, name: str, need: str = "owner") -> Bucket:
        """The bucket if ``who`` has ``need`` (``owner``, ``read``, ``write`` or
        ``exists``: no check) on it; see :mod:`tessera.core.access`. Raises
        BucketNotFound, AccessDenied."""
        self._check_epoch()
        now = self.clock.now()
        cached = self._buckets.get(name)
        if cached is not None and cached[1] > now:
            bucket = cached[0]
        else:
            bucket = await self.meta.get_bucket(name)
            if self.options.bucket_cache_ttl > 0:
                if len(self._buckets) >= BUCKET_CACHE_SIZE:
                    self._buckets.clear()
                self._buckets[name] = (bucket, now + self.options.bucket_cache_ttl)
        if need != "exists":
            require_bucket(who, bucket, need)
        return bucket

    def _check_epoch(self) -> None:
        """Empty the bucket and key caches if another process changed a record."""
        token = self.epoch.token()
        if token != self._epoch_seen:
            self._buckets.clear()
            self._key_cache.clear()
            self._epoch_seen = token

    def _forget_bucket(self, name: str) -> None:
        """After a bucket record changed (or may have): drop it here, tell the others."""
        self._buckets.pop(name, None)
        self.epoch.bump()

    async def _update_bucket(self, bucket: Bucket) -> None:
        """Store a changed bucket record (and forget the cached one)."""
        self._buckets.pop(bucket.name, None)
        try:
            await self.meta.update_bucket(bucket)
        finally:
            self._forget_bucket(bucket.name)
