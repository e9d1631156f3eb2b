"""State and access checks shared by the service's operation groups."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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
        self._key_cache: dict[str, tuple[AccessKey, float]] = {}
        self._buckets: dict[str, tuple[Bucket, float]] = {}
        """Bucket records by name, each reused for ``options.bucket_cache_ttl``."""
        """Policy of new buckets; replaceable (a cluster's ``auto`` policy follows
        the number of chunk servers)."""

    def policy_for(self, bucket: Bucket, storage_class: str) -> str:
        """The storage policy of an object written to ``bucket`` with ``storage_class``."""
        return self.options.storage_classes.get(storage_class) or bucket.policy

    async def _bucket(self, who: Principal, name: str, need: str = "owner") -> Bucket:
        """The bucket if ``who`` has ``need`` (``owner``, ``read``, ``write`` or
        ``exists``: no check) on it; see :mod:`tessera.core.access`. Raises
        BucketNotFound, AccessDenied."""
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

    async def _update_bucket(self, bucket: Bucket) -> None:
        """Store a changed bucket record (and forget the cached one)."""
        self._buckets.pop(bucket.name, None)
        try:
            await self.meta.update_bucket(bucket)
        finally:
            self._buckets.pop(bucket.name, None)
