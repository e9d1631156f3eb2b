"""Containers (buckets seen by the SDK): create with properties, describe with
counters, force delete, and snapshots.

Snapshots (theory of operation):

* A snapshot is a new bucket of the same owner, marked frozen
  (:data:`~tessera.core.properties.FROZEN_CONFIG` in its config), holding the
  latest live version of every key of the source, each with the same version
  id, attributes and manifest: the snapshot's versions name the same blocks,
  which the metadata store counts once more per version. No data is copied.
* It is built key by key (one metadata write each), not in one transaction: a
  concurrent writer may or may not be seen, per key. If building fails, the
  partial snapshot is deleted again (best effort) and the error raised.
* A frozen bucket refuses every object write or delete through the service
  (:meth:`ContainerOps._bucket` refuses the ``write`` need): PUT, copy into it,
  multipart, delete, properties, link, truncate, append, touch, drain. Deleting
  the snapshot itself is allowed (``force`` deletes its versions first).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

from tessera.core.base import ServiceBase
from tessera.core.properties import (
    FROZEN_CONFIG,
    PROPERTIES_CONFIG,
    is_frozen,
    with_bucket_properties,
)
from tessera.core.requests import Principal
from tessera.core.validation import check_bucket_name
from tessera.model.errors import (
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    FrozenBucket,
    NotFound,
)
from tessera.model.policy import Policy
from tessera.model.records import Bucket

FORCE_DELETE_PASSES = 5
"""Rounds of "delete every version, then the bucket" a forced delete tries
while concurrent writers keep adding objects, before BucketNotEmpty."""
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class ContainerStats:
    """A bucket with its counters (latest live objects and their bytes)."""

    bucket: Bucket
    objects: int
    bytes: int


class ContainerOps(ServiceBase):
    async def _bucket(self, who: Principal, name: str, need: str = "owner") -> Bucket:
        """As :meth:`ServiceBase._bucket`, and FrozenBucket when ``need`` is
        ``write`` and the bucket is a snapshot: every object write and delete of
        the service asks for ``write``, so this one check freezes them all."""
        bucket = await super()._bucket(who, name, need)
        if need == "write" and is_frozen(bucket):
            raise FrozenBucket("The bucket is a snapshot and refuses writes", bucket=name)
        return bucket

    async def create_container(
        self,
        who: Principal,
        name: str,
        *,
        properties: dict[str, str] | None = None,
        policy: str | None = None,
        versioning: bool = False,
    ) -> bool:
        """Create a bucket owned by ``who`` with ``properties``, storage ``policy``
        (default: the service's) and versioning enabled or not. Returns False
        (and changes nothing) when ``who`` already owns it. Raises
        InvalidBucketName, BucketAlreadyExists (another account owns it),
        InvalidArgument (unknown policy)."""
        check_bucket_name(name)
        bucket = Bucket(
            name=name,
            owner=who.account_id,
            created=self.clock.now(),
            region=self.options.region,
            versioning="enabled" if versioning else "unversioned",
            policy=str(Policy.parse(policy or self.default_policy())),
        )
        bucket = with_bucket_properties(bucket, properties or {})
        try:
            await self.meta.create_bucket(bucket)
        except BucketAlreadyOwnedByYou:
            return False
        return True

    async def container_stats(self, who: Principal, name: str) -> ContainerStats:
        """The bucket (owner only) with its object and byte counts.
        Raises BucketNotFound, AccessDenied."""
        bucket = await self._bucket(who, name)
        objects, size = await self.meta.count_objects(name)
        return ContainerStats(bucket, objects, size)

    async def delete_container(self, who: Principal, name: str, *, force: bool = False) -> None:
        """Delete the bucket (owner only). Without ``force``: BucketNotEmpty while
        any version remains. With ``force``: every version and delete marker is
        removed first (also of a snapshot), then the bucket; not atomic (a crash
        midway leaves the bucket with fewer versions). Raises BucketNotFound,
        AccessDenied, BucketNotEmpty (concurrent writers kept adding objects)."""
        await self._bucket(who, name)
        for _ in range(FORCE_DELETE_PASSES if force else 1):
            if force:
                await self._remove_all_versions(name)
            self._buckets.pop(name, None)
            try:
                await self.meta.delete_bucket(name)
                return
            except BucketNotEmpty:
                if not force:
                    raise
            finally:
                self._forget_bucket(name)
        raise BucketNotEmpty("The bucket kept receiving objects while being emptied", bucket=name)

    async def _remove_all_versions(self, name: str) -> None:
        while True:
            page = await self.meta.list_versions(name, limit=_PAGE)
            if not page:
                return
            for v in page:
                with contextlib.suppress(NotFound):  # removed concurrently
                    await self.meta.delete_version(name, v.key, v.version_id)

    async def snapshot_container(self, who: Principal, name: str, snapshot: str) -> Bucket:
        """A frozen copy of bucket ``name`` (owner only) named ``snapshot``, owned
        by the caller, with the source's policy and properties; versioning off.
        See the module docstring. Raises BucketNotFound, AccessDenied,
        InvalidBucketName, BucketAlreadyExists, BucketAlreadyOwnedByYou."""
        source = await self._bucket(who, name)
        check_bucket_name(snapshot)
        config = {FROZEN_CONFIG: "1"}
        if PROPERTIES_CONFIG in source.config:
            config[PROPERTIES_CONFIG] = source.config[PROPERTIES_CONFIG]
        frozen = Bucket(
            name=snapshot,
            owner=who.account_id,
            created=self.clock.now(),
            region=source.region,
            policy=source.policy,
            config=config,
        )
        await self.meta.create_bucket(frozen)
        try:
            after: str | None = None
            while True:
                page = await self.meta.list_latest(name, after=after, limit=_PAGE)
                for entry in page:
                    try:
                        v = await self.meta.get_version(name, entry.key, entry.version_id)
                    except NotFound:
                        continue  # deleted meanwhile
                    await self.meta.put_version(
                        dataclasses.replace(v, bucket=snapshot, upload_id="")
                    )
                if len(page) < _PAGE:
                    return frozen
                after = page[-1].key
        except BaseException:
            with contextlib.suppress(Exception):  # the original error matters more
                await self._remove_all_versions(snapshot)
                await self.meta.delete_bucket(snapshot)
            self._forget_bucket(snapshot)
            raise
