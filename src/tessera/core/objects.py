"""Object operations: put, get, head, delete (versions and markers), copy, tags.

Theory of operation:

* Bytes go to the data path first; the version row is committed afterwards in
  one metadata transaction. A failure before the commit leaves only blocks no
  row references (deleted at once when this call created them, otherwise left
  to GC): a half-written object is never visible.
* Versioning: ``unversioned`` and ``suspended`` buckets write the ``null``
  version, replacing the previous ``null`` version; ``enabled`` buckets add a
  new version. Deleting without a version id on a versioned bucket adds a
  delete marker.
* Copies share data: the destination version names the same blocks as the
  source (the metadata store counts the extra references). No bytes move.
* Conditional writes and deletes (:mod:`tessera.core.conditions`) are checked
  before any byte is read, then again as a guard inside the metadata
  transaction that commits: the check and the change are atomic. A refused
  write discards the blocks it stored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools

from tessera.common.checksums import ALGORITHMS, checksum_type_of
from tessera.common.ids import NULL_VERSION, new_version_id
from tessera.common.ranges import ByteRange
from tessera.core.access import check_acl, require_bucket, require_object_read
from tessera.core.base import ServiceBase
from tessera.core.conditions import check_copy_source, check_delete, check_read, check_write
from tessera.core.requests import (
    CopyRequest,
    CopyResult,
    DeleteConditions,
    DeleteError,
    DeleteResult,
    DeleteTarget,
    GetRequest,
    Integrity,
    ObjectAttributes,
    ObjectRead,
    Principal,
    PutRequest,
)
from tessera.core.validation import check_key, check_tags, check_user_metadata
from tessera.data.contract import WriteResult
from tessera.model.errors import (
    BadDigest,
    DeleteMarkerHit,
    IncompleteBody,
    InvalidArgument,
    InvalidPartNumber,
    InvalidRange,
    InvalidRequest,
    NotFound,
    ObjectNotFound,
    PreconditionFailed,
    TesseraError,
    VersionNotFound,
)
from tessera.model.records import Bucket, ObjectVersion


class _NothingToDelete(Exception):
    """Raised by a conditional delete's guard: the key has no version at all."""


def _current_delete_guard(cond: DeleteConditions, current: ObjectVersion | None) -> None:
    """Guard of a conditional delete marker: checks the current version."""
    if current is None:
        raise _NothingToDelete
    check_delete(cond, current)


class ObjectOps(ServiceBase):
    # -- helpers ---------------------------------------------------------------
    def _version_id_for_write(self, bucket: Bucket) -> str:
        return new_version_id() if bucket.versioning == "enabled" else NULL_VERSION

    async def _current(self, bucket: str, key: str) -> ObjectVersion | None:
        try:
            return await self.meta.get_version(bucket, key)
        except NotFound:
            return None

    async def _version_for(
        self, who: Principal, bucket: Bucket, key: str, version_id: str | None
    ) -> ObjectVersion:
        """:meth:`_readable_version` for a reader ``who``: AccessDenied unless the
        object's ACL lets ``who`` read it, and AccessDenied instead of a missing
        object for a caller who may not list the bucket (existence is not leaked)."""
        try:
            v = await self._readable_version(bucket.name, key, version_id)
        except NotFound:
            require_bucket(who, bucket, "read")
            raise
        require_object_read(who, bucket, v)
        return v

    async def _readable_version(
        self, bucket: str, key: str, version_id: str | None
    ) -> ObjectVersion:
        """The version to read. Raises ObjectNotFound, VersionNotFound, DeleteMarkerHit."""
        if version_id is not None and version_id != NULL_VERSION and len(version_id) > 64:
            raise InvalidArgument("Invalid version id specified", argument="versionId")
        v = await self.meta.get_version(bucket, key, version_id)
        if v.delete_marker:
            raise DeleteMarkerHit(
                "The specified key does not exist."
                if version_id is None
                else "The specified method is not allowed against this resource.",
                version_id=v.version_id,
                named=version_id is not None,
                last_modified=v.last_modified,
            )
        return v

    async def _store(
        self,
        policy: str,
        integrity: Integrity,
        body: object,
        *,
        allow_inline: bool = True,
    ) -> WriteResult:
        """Write a body through the data path and check every promised digest.

        On a digest or length mismatch the blocks this call created are deleted
        and BadDigest / IncompleteBody raised.
        """
        algorithms = tuple(a for a in integrity.algorithms if a in ALGORITHMS)
        result = await self.data.write(
            body,  # type: ignore[arg-type]
            policy=policy,
            algorithms=algorithms,
            max_size=self.options.max_object_size,
            allow_inline=allow_inline,
        )
        try:
            if integrity.declared_size is not None and result.size != integrity.declared_size:
                raise IncompleteBody(
                    f"You did not provide the number of bytes specified by the Content-Length HTTP header "
                    f"({result.size} != {integrity.declared_size})"
                )
            if integrity.content_md5 is not None and integrity.content_md5 != result.md5:
                raise BadDigest("The Content-MD5 you specified did not match what we received.")
            for algo, value in integrity.expected().items():
                got = result.checksums.get(algo.upper())
                if got is not None and got != value:
                    raise BadDigest(
                        f"The {algo.upper()} you specified did not match the calculated checksum.",
                        algorithm=algo.upper(),
                    )
        except TesseraError:
            await self.data.discard(result)
            raise
        return result

    # -- put --------------------------------------------------------------------
    async def put_object(self, who: Principal, req: PutRequest) -> ObjectVersion:
        """Store a whole object. Raises BucketNotFound, AccessDenied, KeyTooLong,
        MetadataTooLarge, InvalidTag, BadDigest, IncompleteBody, EntityTooLarge,
        PreconditionFailed and ObjectNotFound (``req.conditions``), StorageFull,
        Unavailable."""
        bucket = await self._bucket(who, req.bucket, "write")
        check_key(req.key)
        attrs = req.attributes
        check_user_metadata(attrs.user_metadata)
        check_tags(attrs.tags)
        if not req.conditions.empty:
            check_write(req.conditions, await self._current(req.bucket, req.key))
        result = await self._store(
            self.policy_for(bucket, attrs.storage_class), req.integrity, req.body
        )
        version = ObjectVersion(
            bucket=req.bucket,
            key=req.key,
            version_id=self._version_id_for_write(bucket),
            last_modified=self.clock.now(),
            size=result.size,
            etag=result.md5.hex(),
            content_type=attrs.content_type or "binary/octet-stream",
            headers=dict(attrs.headers),
            user_metadata=dict(attrs.user_metadata),
            tags=dict(attrs.tags),
            checksums=dict(result.checksums),
            storage_class=attrs.storage_class,
            owner=who.account_id,
            inline=result.inline,
            manifest=result.manifest,
            acl=check_acl(attrs.acl, bucket=False),
        )
        guard = None if req.conditions.empty else functools.partial(check_write, req.conditions)
        try:
            await self.meta.put_version(version, guard)
        except (PreconditionFailed, NotFound):  # refused: the row was not stored
            await self.data.discard(result)
            raise
        return version

    # -- get / head -----------------------------------------------------------------
    async def get_object(
        self, who: Principal, req: GetRequest, *, head: bool = False
    ) -> ObjectRead:
        """Read (or, with ``head``, describe) an object or a range of it.

        Raises ObjectNotFound, VersionNotFound, DeleteMarkerHit, PreconditionFailed,
        NotModified, InvalidRange, InvalidPartNumber.
        """
        bucket = await self._bucket(who, req.bucket, "exists")
        v = await self._version_for(who, bucket, req.key, req.version_id)
        check_read(req.conditions, v)
        byte_range = None
        checksums = v.checksums
        if req.part_number is not None:
            byte_range = self._part_range(v, req.part_number)
            if v.parts:
                checksums = v.parts[req.part_number - 1].checksums
        elif req.range is not None:
            byte_range = req.range.resolve(v.size)
            if byte_range is None:
                raise InvalidRange(v.size)
            checksums = {}
        body = None if head else self.data.read(v.inline, v.manifest, byte_range)
        return ObjectRead(
            version=v,
            range=byte_range,
            parts_count=len(v.parts) or None,
            body=body,
            versioned=bucket.versioning != "unversioned",
            checksums=dict(checksums),
            checksum_type=self._checksum_type(v) if checksums else "",
        )

    @staticmethod
    def _checksum_type(v: ObjectVersion) -> str:
        """The object's checksum type (its values say; FULL_OBJECT when none)."""
        return checksum_type_of(next(iter(v.checksums.values()), ""))

    @staticmethod
    def _part_range(v: ObjectVersion, number: int) -> ByteRange:
        """Bytes of part ``number``: parts are numbered by position (1..N), so
        that 1..PartsCount always works even when the upload skipped numbers.
        An object that is not multipart is its own part 1."""
        sizes = [p.size for p in v.parts] or [v.size]
        if number < 1 or number > len(sizes):
            raise InvalidPartNumber(
                "The requested partnumber is not satisfiable", part_number=number
            )
        start = sum(sizes[: number - 1])
        return ByteRange(start, start + sizes[number - 1])

    # -- delete -----------------------------------------------------------------
    async def delete_object(
        self,
        who: Principal,
        bucket_name: str,
        key: str,
        version_id: str | None = None,
        conditions: DeleteConditions | None = None,
    ) -> DeleteResult:
        """Delete a version, or the current object (a delete marker on versioned
        buckets). Deleting something absent succeeds (S3 semantics).

        With ``conditions``, the version removed or hidden (the named one, else
        the current one) must match them, or PreconditionFailed is raised and
        nothing changes. A conditional delete of a key that has no version at
        all does nothing (no delete marker is added)."""
        bucket = await self._bucket(who, bucket_name, "write")
        cond = conditions if conditions is not None and not conditions.empty else None
        guard = None if cond is None else functools.partial(check_delete, cond)
        if version_id is not None:
            try:
                removed = await self.meta.delete_version(bucket_name, key, version_id, guard)
            except (VersionNotFound, ObjectNotFound):
                return DeleteResult(key, version_id, False)
            return DeleteResult(key, version_id, removed.delete_marker)
        if bucket.versioning == "unversioned":
            with contextlib.suppress(VersionNotFound, ObjectNotFound):
                await self.meta.delete_version(bucket_name, key, NULL_VERSION, guard)
            return DeleteResult(key, None, False)
        marker = ObjectVersion(
            bucket=bucket_name,
            key=key,
            version_id=self._version_id_for_write(bucket),
            last_modified=self.clock.now(),
            delete_marker=True,
            owner=who.account_id,
            etag="",
        )
        if cond is None:
            await self.meta.put_version(marker)
        else:
            try:
                await self.meta.put_version(marker, functools.partial(_current_delete_guard, cond))
            except _NothingToDelete:
                return DeleteResult(key, None, False)
        return DeleteResult(key, marker.version_id, True)

    async def delete_objects(
        self, who: Principal, bucket_name: str, items: list[DeleteTarget]
    ) -> list[DeleteResult | DeleteError]:
        """Delete many; one result per item, in order (a failed condition is that
        item's PreconditionFailed error). Bucket-level errors raise."""
        await self._bucket(who, bucket_name, "write")
        out: list[DeleteResult | DeleteError] = []
        for item in items:
            try:
                out.append(
                    await self.delete_object(
                        who, bucket_name, item.key, item.version_id, item.conditions
                    )
                )
            except TesseraError as e:
                out.append(DeleteError(item.key, item.version_id, e))
        return out

    # -- copy --------------------------------------------------------------------
    async def copy_object(self, who: Principal, req: CopyRequest) -> CopyResult:
        """Server-side copy sharing the source's blocks. Raises the errors of a
        read of the source (PreconditionFailed for failed source conditions), of
        a write of the destination, and InvalidRequest for a no-op self copy."""
        src_bucket = await self._bucket(who, req.src_bucket, "exists")
        dst_bucket = await self._bucket(who, req.dst_bucket, "write")
        check_key(req.dst_key)
        src = await self._version_for(who, src_bucket, req.src_key, req.src_version_id)
        check_copy_source(req.source_conditions, src)
        replace = req.metadata_directive == "REPLACE"
        if req.metadata_directive not in ("COPY", "REPLACE") or req.tagging_directive not in (
            "COPY",
            "REPLACE",
        ):
            raise InvalidArgument("Unknown metadata or tagging directive")
        same = (req.src_bucket, req.src_key) == (req.dst_bucket, req.dst_key) and (
            req.src_version_id is None or req.src_version_id == src.version_id
        )
        if (
            same
            and not replace
            and req.attributes.storage_class == src.storage_class
            and not req.checksum_algorithm
        ):
            raise InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself without changing "
                "the object's metadata, storage class, website redirect location or encryption attributes."
            )
        attrs: ObjectAttributes = req.attributes
        if replace:
            check_user_metadata(attrs.user_metadata)
        tags = dict(attrs.tags) if req.tagging_directive == "REPLACE" else dict(src.tags)
        check_tags(tags)
        inline, manifest, checksums = src.inline, src.manifest, dict(src.checksums)
        parts = src.parts
        algo = (req.checksum_algorithm or "").upper()
        if algo and algo not in ALGORITHMS:
            raise InvalidRequest(f"Checksum algorithm {algo} is not supported.")
        policy = self.policy_for(dst_bucket, attrs.storage_class)
        # A storage class mapped to another policy (a "transition") re-stores the
        # bytes; otherwise the copy shares the source's blocks.
        restore = attrs.storage_class != src.storage_class and any(
            s.policy != policy for s in src.manifest.segments
        )
        if (algo and "-" in checksums.get(algo, "-")) or restore:
            # A new algorithm (or replacing a composite multipart checksum, which
            # base64 marks with "-N") needs the bytes: copy them through the data
            # path. The copy's checksum is then of type FULL_OBJECT.
            result = await self._store(
                policy,
                Integrity(algorithms=(algo,) if algo else ()),
                self.data.read(src.inline, src.manifest),
            )
            inline, manifest, checksums = result.inline, result.manifest, dict(result.checksums)
            parts = tuple(dataclasses.replace(p, checksums={}) for p in parts)
        elif algo:
            checksums = {algo: checksums[algo]}
        version = ObjectVersion(
            bucket=req.dst_bucket,
            key=req.dst_key,
            version_id=self._version_id_for_write(dst_bucket),
            last_modified=self.clock.now(),
            size=src.size,
            etag=src.etag,
            content_type=(attrs.content_type or "binary/octet-stream")
            if replace
            else src.content_type,
            headers=dict(attrs.headers) if replace else dict(src.headers),
            user_metadata=dict(attrs.user_metadata) if replace else dict(src.user_metadata),
            tags=tags,
            checksums=checksums,
            storage_class=attrs.storage_class,
            owner=who.account_id,
            inline=inline,
            manifest=manifest,
            parts=parts,
            acl=check_acl(attrs.acl, bucket=False),
        )
        await self.meta.put_version(version)
        return CopyResult(version, src.version_id)

    # -- tagging --------------------------------------------------------------------
    async def get_object_tags(
        self, who: Principal, bucket: str, key: str, version_id: str | None = None
    ) -> ObjectVersion:
        """The version whose ``tags`` are wanted (and whose id the answer names)."""
        await self._bucket(who, bucket)
        return await self._readable_version(bucket, key, version_id)

    async def put_object_tags(
        self,
        who: Principal,
        bucket: str,
        key: str,
        tags: dict[str, str],
        version_id: str | None = None,
    ) -> ObjectVersion:
        await self._bucket(who, bucket)
        check_tags(tags)
        v = await self._readable_version(bucket, key, version_id)
        updated = dataclasses.replace(v, tags=dict(tags))
        await self.meta.update_version(updated)
        return updated

    async def delete_object_tags(
        self, who: Principal, bucket: str, key: str, version_id: str | None = None
    ) -> ObjectVersion:
        return await self.put_object_tags(who, bucket, key, {}, version_id)

    # -- ACL ------------------------------------------------------------------------
    async def get_object_acl(
        self, who: Principal, bucket: str, key: str, version_id: str | None = None
    ) -> ObjectVersion:
        """The version whose ``owner`` and ``acl`` are wanted. Bucket owner only.
        Raises BucketNotFound, AccessDenied, ObjectNotFound, VersionNotFound."""
        await self._bucket(who, bucket)
        return await self._readable_version(bucket, key, version_id)

    async def put_object_acl(
        self, who: Principal, bucket: str, key: str, acl: str, version_id: str | None = None
    ) -> ObjectVersion:
        """Set the canned ACL of a version (bucket owner only). Raises the errors of
        :meth:`get_object_acl` and InvalidArgument for an unknown canned ACL."""
        acl = check_acl(acl, bucket=False)
        v = await self.get_object_acl(who, bucket, key, version_id)
        updated = dataclasses.replace(v, acl=acl)
        await self.meta.update_version(updated)
        return updated


__all__ = ["ObjectNotFound", "ObjectOps"]
