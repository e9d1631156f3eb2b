"""Bucket operations: create, delete, head, list, versioning, tags, stored configs."""

from __future__ import annotations

import dataclasses

from tessera.core.access import ACL_CONFIG, ANONYMOUS, bucket_acl, check_acl
from tessera.core.base import ServiceBase
from tessera.core.requests import Principal
from tessera.core.validation import MAX_BUCKET_TAGS, check_bucket_name, check_tags
from tessera.model.errors import (
    AccessDenied,
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
        acl: str = "private",
    ) -> Bucket:
        """Create a bucket owned by ``who``.

        Raises InvalidBucketName, BucketAlreadyExists (another account owns it),
        BucketAlreadyOwnedByYou (outside us-east-1; there re-creating your own
        bucket returns it unchanged), InvalidArgument (unknown policy or location).
        """
        check_bucket_name(name)
        if region is not None and region not in ("", self.options.region):
            raise InvalidArgument(f"Invalid location constraint {region!r}", location=region)
        pol = str(Policy.parse(policy or self.default_policy()))
        acl = check_acl(acl, bucket=True)
        bucket = Bucket(
            name=name,
            owner=who.account_id,
            created=self.clock.now(),
            region=self.options.region,
            versioning="enabled" if object_lock else "unversioned",
            policy=pol,
            object_lock=object_lock,
            config={ACL_CONFIG: acl} if acl != "private" else {},
        )
        try:
            await self.meta.create_bucket(bucket)
        except BucketAlreadyOwnedByYou:
            # S3's legacy rule: in us-east-1, re-creating a bucket you own succeeds
            # and changes nothing; every other region answers the error.
            if self.options.region != "us-east-1":
                raise
            # ...and, as S3 does, resets the bucket's ACL to the one requested.
            return await self.put_bucket_acl(who, name, acl)
        return bucket

    async def head_bucket(self, who: Principal, name: str) -> Bucket:
        """Raises BucketNotFound or AccessDenied."""
        return await self._bucket(who, name, "read")

    async def delete_bucket(self, who: Principal, name: str) -> None:
        """Raises BucketNotFound, AccessDenied, BucketNotEmpty."""
        await self._bucket(who, name)
        self._buckets.pop(name, None)
        try:
            await self.meta.delete_bucket(name)
        finally:
            self._forget_bucket(name)

    async def list_buckets(self, who: Principal) -> list[Bucket]:
        """The caller's buckets by name. AccessDenied for anonymous callers."""
        if who == ANONYMOUS:
            raise AccessDenied("Access Denied")
        return await self.meta.list_buckets(who.account_id)

    async def get_bucket_acl(self, who: Principal, name: str) -> str:
        """The bucket's canned ACL (owner only). Raises BucketNotFound, AccessDenied."""
        return bucket_acl(await self._bucket(who, name))

    async def put_bucket_acl(self, who: Principal, name: str, acl: str) -> Bucket:
        """Set the bucket's canned ACL (owner only). Raises BucketNotFound,
        AccessDenied, InvalidArgument."""
        acl = check_acl(acl, bucket=True)
        bucket = await self._bucket(who, name)
        config = {k: v for k, v in bucket.config.items() if k != ACL_CONFIG}
        if acl != "private":
            config[ACL_CONFIG] = acl
        updated = dataclasses.replace(bucket, config=config)
        await self._update_bucket(updated)
        return updated

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
        await self._update_bucket(updated)
        return updated

    async def put_bucket_tags(self, who: Principal, name: str, tags: dict[str, str]) -> None:
        bucket = await self._bucket(who, name)
        check_tags(tags, limit=MAX_BUCKET_TAGS)
        await self._update_bucket(dataclasses.replace(bucket, tags=dict(tags)))

    async def get_bucket_tags(self, who: Principal, name: str) -> dict[str, str]:
        """Raises TagSetNotFound when the bucket has no tags."""
        bucket = await self._bucket(who, name)
        if not bucket.tags:
            raise TagSetNotFound("The TagSet does not exist", bucket=name)
        return dict(bucket.tags)

    async def delete_bucket_tags(self, who: Principal, name: str) -> None:
        bucket = await self._bucket(who, name)
        await self._update_bucket(dataclasses.replace(bucket, tags={}))

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
        await self._update_bucket(dataclasses.replace(bucket, config=config))
