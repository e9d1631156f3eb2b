"""Bucket operations: create, delete, head, list, versioning, tags, stored configs."""

from __future__ import annotations

import dataclasses

from tessera.core.base import ServiceBase
from tessera.core.requests import Principal
from tessera.core.validation import MAX_BUCKET_TAGS, check_bucket_name, check_tags
from tessera.model.errors import (
    BucketAlreadyOwnedByYou,
    ConfigurationNotFound,
    InvalidArgument,
    InvalidRequest,
    TagSetNotFound,
)
from tessera.model.policy import Policy
from tessera.model.records import Bucket


class BucketOps(ServiceBase):
    async def create_bucket(
        self,
        who: Principal,
        name: str,
        *,
        region: str | None = None,
        object_lock: bool = False,
        policy: str | None = None,
    ) -> Bucket:
        """Create a bucket owned by ``who``.

        Raises InvalidBucketName, BucketAlreadyExists (another account owns it),
        BucketAlreadyOwnedByYou (outside us-east-1; there re-creating your own
        bucket returns it unchanged), InvalidArgument (unknown policy or location).
        """
        check_bucket_name(name)
        if region is not None and region not in ("", self.options.region):
            raise InvalidArgument(f"Invalid location constraint {region!r}", location=region)
        pol = str(Policy.parse(policy or self.options.default_policy))
        bucket = Bucket(
            name=name,
            owner=who.account_id,
            created=self.clock.now(),
            region=self.options.region,
            versioning="enabled" if object_lock else "unversioned",
            policy=pol,
            object_lock=object_lock,
        )
        try:
            await self.meta.create_bucket(bucket)
        except BucketAlreadyOwnedByYou:
            # S3's legacy rule: in us-east-1, re-creating a bucket you own succeeds
            # and changes nothing; every other region answers the error.
            if self.options.region != "us-east-1":
                raise
            return await self.meta.get_bucket(name)
        return bucket

    async def head_bucket(self, who: Principal, name: str) -> Bucket:
        """Raises BucketNotFound or AccessDenied."""
        return await self._bucket(who, name)

    async def delete_bucket(self, who: Principal, name: str) -> None:
        """Raises BucketNotFound, AccessDenied, BucketNotEmpty."""
        await self._bucket(who, name)
        await self.meta.delete_bucket(name)

    async def list_buckets(self, who: Principal) -> list[Bucket]:
        return await self.meta.list_buckets(who.account_id)

    async def put_bucket_versioning(self, who: Principal, name: str, status: str) -> Bucket:
        """``status`` is ``Enabled`` or ``Suspended``. A bucket with object lock
        cannot be suspended (InvalidRequest)."""
        bucket = await self._bucket(who, name)
        if status not in ("Enabled", "Suspended"):
            raise InvalidArgument(f"Invalid versioning status {status!r}")
        if status == "Suspended" and bucket.object_lock:
            raise InvalidRequest(
                "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed."
            )
        updated = dataclasses.replace(
            bucket, versioning="enabled" if status == "Enabled" else "suspended"
        )
        await self.meta.update_bucket(updated)
        return updated

    async def put_bucket_tags(self, who: Principal, name: str, tags: dict[str, str]) -> None:
        bucket = await self._bucket(who, name)
        check_tags(tags, limit=MAX_BUCKET_TAGS)
        await self.meta.update_bucket(dataclasses.replace(bucket, tags=dict(tags)))

    async def get_bucket_tags(self, who: Principal, name: str) -> dict[str, str]:
        """Raises TagSetNotFound when the bucket has no tags."""
        bucket = await self._bucket(who, name)
        if not bucket.tags:
            raise TagSetNotFound("The TagSet does not exist", bucket=name)
        return dict(bucket.tags)

    async def delete_bucket_tags(self, who: Principal, name: str) -> None:
        bucket = await self._bucket(who, name)
        await self.meta.update_bucket(dataclasses.replace(bucket, tags={}))

    async def put_bucket_config(self, who: Principal, name: str, kind: str, document: str) -> None:
        """Store a bucket sub-resource document (``cors``, ``policy``, ``lifecycle``...) verbatim."""
        bucket = await self._bucket(who, name)
        await self.meta.update_bucket(
            dataclasses.replace(bucket, config={**bucket.config, kind: document})
        )

    async def get_bucket_config(self, who: Principal, name: str, kind: str) -> str:
        """Raises ConfigurationNotFound when that document is not set."""
        bucket = await self._bucket(who, name)
        if kind not in bucket.config:
            raise ConfigurationNotFound(
                f"The {kind} configuration does not exist", kind=kind, bucket=name
            )
        return bucket.config[kind]

    async def delete_bucket_config(self, who: Principal, name: str, kind: str) -> None:
        bucket = await self._bucket(who, name)
        config = {k: v for k, v in bucket.config.items() if k != kind}
        await self.meta.update_bucket(dataclasses.replace(bucket, config=config))
