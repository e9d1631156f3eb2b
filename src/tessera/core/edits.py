"""Operations that derive an object from another by sharing its segments: link,
truncate, append; and those that change a version in place: touch, drain; and
locate (where the bytes are).

Theory of operation:

* **Sharing.** A new version may name segments of an existing one; the
  metadata store counts each named block once more (as for copies and
  multipart completion), so no byte moves and either version can be deleted
  alone.
* **Truncate** keeps the whole segments below the new size and rewrites only
  the segment that is cut, reading that one segment's first bytes.
* **Append** writes only the new bytes (as segments, never inline) and stores a
  version whose manifest is the old segments followed by the new ones. The
  append is atomic against concurrent writers: the version is committed only if
  the key's latest version is still the one appended to (else
  PreconditionFailed and the new blocks are discarded). An inline (small)
  object is re-read instead (its bytes are in the metadata row: cheap) and the
  result written as a fresh object.
* **ETag rule for derived objects.** The MD5 of a whole content cannot be
  known without reading it all. A version assembled from segments (append, or
  truncate keeping segments) therefore gets the *segment ETag*
  ``md5(h1 + h2 + ... + hN) + "-N"``, where ``hi`` are the ASCII hex
  content hashes (BLAKE3) of its N segments in order: multipart-shaped (the
  ``-N`` suffix tells clients it is not a content MD5), deterministic, and the
  same for the same segment list. A result small enough to be inline, or
  written whole by this call (a truncate inside the first segment, an append
  to an inline object), gets the plain MD5 of its bytes. Additional checksums
  and part boundaries are dropped.
* **Drain** drops a version's data (inline bytes and manifest; references
  released, blocks collected by the GC) and keeps its row: listings and HEAD
  still show it, with its size and ETag. A version is *drained* when it is not
  a delete marker, has a non-zero size, and holds neither inline bytes nor
  segments (:func:`is_drained`). GET, copy, part copy, link, truncate and
  append of a drained version raise ObjectDrained. An
  empty object has no data to drop: draining it changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
from collections.abc import AsyncIterator

from tessera.common.ranges import ByteRange, RangeSpec
from tessera.common.streams import ByteSource
from tessera.core.access import require_bucket, require_object_read
from tessera.core.multipart import MultipartOps
from tessera.core.requests import (
    Conditions,
    CopyRequest,
    CopyResult,
    GetRequest,
    Integrity,
    ObjectRead,
    Principal,
)
from tessera.core.validation import check_key
from tessera.data.contract import WriteResult
from tessera.model.errors import (
    DeleteMarkerHit,
    InvalidArgument,
    NotFound,
    ObjectDrained,
    PreconditionFailed,
)
from tessera.model.manifest import Manifest
from tessera.model.records import Bucket, ObjectVersion, Part


def is_drained(v: ObjectVersion) -> bool:
    """True when ``v`` (a full record, not a listing one) lost its data to a drain."""
    return not v.delete_marker and v.size > 0 and v.inline is None and not v.manifest.segments


def segment_etag(manifest: Manifest) -> str:
    """The ETag of a version assembled from segments (see the module docstring)."""
    digest = hashlib.md5(usedforsecurity=False)
    for seg in manifest.segments:
        digest.update(seg.hash.encode())
    return f"{digest.hexdigest()}-{len(manifest.segments)}"


def _drained(v: ObjectVersion) -> ObjectDrained:
    return ObjectDrained(
        "The object's data was drained", bucket=v.bucket, key=v.key, version_id=v.version_id
    )


def _still_latest(expected: ObjectVersion | None, latest: ObjectVersion | None) -> None:
    """Guard: the key's latest version is still ``expected`` (None: no live version)."""
    if latest is not None and latest.delete_marker:
        latest = None
    if expected is None and latest is None:
        return
    if (
        expected is None
        or latest is None
        or (latest.version_id, latest.etag, latest.last_modified)
        != (expected.version_id, expected.etag, expected.last_modified)
    ):
        raise PreconditionFailed("The object changed while it was being appended to")


async def _chain(head: bytes, tail: ByteSource) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for piece in tail:
        yield piece


class ObjectEditOps(MultipartOps):
    async def get_object(
        self, who: Principal, req: GetRequest, *, head: bool = False
    ) -> ObjectRead:
        """:meth:`ObjectOps.get_object`, and ObjectDrained (not for ``head``)
        when the version read was drained."""
        read = await super().get_object(who, req, head=head)
        if not head and is_drained(read.version):
            raise _drained(read.version)
        return read

    async def copy_object(self, who: Principal, req: CopyRequest) -> CopyResult:
        """:meth:`ObjectOps.copy_object`, and ObjectDrained when the source was
        drained (checked first: one more metadata read per copy)."""
        await self._require_data(who, req.src_bucket, req.src_key, req.src_version_id)
        return await super().copy_object(who, req)

    async def upload_part_copy(
        self,
        who: Principal,
        bucket_name: str,
        key: str,
        upload_id: str,
        number: int,
        *,
        src_bucket: str,
        src_key: str,
        src_version_id: str | None,
        src_range: RangeSpec | None,
        source_conditions: Conditions,
    ) -> tuple[Part, str]:
        """:meth:`MultipartOps.upload_part_copy`, and ObjectDrained when the source
        was drained."""
        await self._require_data(who, src_bucket, src_key, src_version_id)
        return await super().upload_part_copy(
            who,
            bucket_name,
            key,
            upload_id,
            number,
            src_bucket=src_bucket,
            src_key=src_key,
            src_version_id=src_version_id,
            src_range=src_range,
            source_conditions=source_conditions,
        )

    async def _require_data(
        self, who: Principal, bucket_name: str, key: str, version_id: str | None
    ) -> None:
        """Raise ObjectDrained when the version to read was drained (and the
        errors of reading it)."""
        bucket = await self._bucket(who, bucket_name, "exists")
        v = await self._version_for(who, bucket, key, version_id)
        if is_drained(v):
            raise _drained(v)

    async def describe_object(
        self, who: Principal, bucket_name: str, key: str, version_id: str | None = None
    ) -> ObjectVersion:
        """The full record of the named (or latest) version, a delete marker
        included; a drained version too. Readers of the object only. Raises
        BucketNotFound, AccessDenied, ObjectNotFound, VersionNotFound."""
        bucket = await self._bucket(who, bucket_name, "exists")
        try:
            return await self._version_for(who, bucket, key, version_id)
        except DeleteMarkerHit:
            require_bucket(who, bucket, "read")
            return await self.meta.get_version(bucket_name, key, version_id)

    async def locate_object(
        self, who: Principal, bucket_name: str, key: str, version_id: str | None = None
    ) -> ObjectVersion:
        """The full version record (its manifest says where every fragment is).
        Readers of the object only. Raises BucketNotFound, AccessDenied,
        ObjectNotFound, VersionNotFound, DeleteMarkerHit."""
        bucket = await self._bucket(who, bucket_name, "exists")
        return await self._version_for(who, bucket, key, version_id)

    async def link_object(
        self,
        who: Principal,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        version_id: str | None = None,
    ) -> ObjectVersion:
        """A new version of ``dst_key`` sharing the source version's segments and
        keeping its attributes (properties, content type, ETag, checksums...);
        new modification time, the caller as owner, private ACL. Raises the
        errors of a read of the source and of a write of the destination, and
        ObjectDrained."""
        source_bucket = await self._bucket(who, src_bucket, "exists")
        target = await self._bucket(who, dst_bucket, "write")
        check_key(dst_key)
        src = await self._version_for(who, source_bucket, src_key, version_id)
        if is_drained(src):
            raise _drained(src)
        version = dataclasses.replace(
            src,
            bucket=dst_bucket,
            key=dst_key,
            version_id=self._version_id_for_write(target),
            last_modified=self.clock.now(),
            owner=who.account_id,
            acl="private",
            upload_id="",
            is_latest=True,
        )
        await self.meta.put_version(version)
        return version

    def _rewritten(
        self,
        base: ObjectVersion,
        bucket: Bucket,
        who: Principal,
        size: int,
        etag: str,
        inline: bytes | None,
        manifest: Manifest,
    ) -> ObjectVersion:
        """A new version of ``base`` with new content (truncate, append): its
        metadata kept, its checksums and part table dropped (they described the
        old bytes)."""
        return dataclasses.replace(
            base,
            version_id=self._version_id_for_write(bucket),
            last_modified=self.clock.now(),
            size=size,
            etag=etag,
            inline=inline,
            manifest=manifest,
            checksums={},
            parts=(),
            owner=who.account_id,
            upload_id="",
            is_latest=True,
        )

    async def truncate_object(
        self,
        who: Principal,
        bucket_name: str,
        key: str,
        size: int,
        version_id: str | None = None,
    ) -> ObjectVersion:
        """A new (latest) version holding the first ``size`` bytes of the named
        (or latest) version; see the module docstring. Raises InvalidArgument
        (``size`` negative or beyond the object's), ObjectDrained, and the errors
        of a read and of a write."""
        bucket = await self._bucket(who, bucket_name, "write")
        v = await self._version_for(who, bucket, key, version_id)  # its bytes are read
        if is_drained(v):
            raise _drained(v)
        if size < 0 or size > v.size:
            raise InvalidArgument(
                f"Cannot truncate an object of {v.size} bytes to {size}", argument="size"
            )
        written: WriteResult | None = None
        if v.inline is not None or size == 0:
            inline: bytes | None = (v.inline or b"")[:size]
            manifest = Manifest()
            etag = hashlib.md5(inline or b"", usedforsecurity=False).hexdigest()
        else:
            inline = None
            kept = []
            offset = 0
            for seg in v.manifest.segments:
                if offset + seg.size > size:
                    break
                kept.append(seg)
                offset += seg.size
            if offset < size:
                cut = v.manifest.segments[len(kept)]
                piece = self.data.read(None, Manifest((cut,)), ByteRange(0, size - offset))
                written = await self._store(cut.policy, Integrity(), piece, allow_inline=False)
                kept.extend(written.manifest.segments)
            manifest = Manifest(tuple(kept))
            # Nothing kept: the one segment written holds it all, its MD5 is known.
            whole = written is not None and len(kept) == len(written.manifest.segments)
            etag = written.md5.hex() if written is not None and whole else segment_etag(manifest)
        version = self._rewritten(v, bucket, who, size, etag, inline, manifest)
        try:
            await self.meta.put_version(version)
        except BaseException:
            if written is not None:
                await self.data.discard(written)
            raise
        return version

    async def append_object(
        self,
        who: Principal,
        bucket_name: str,
        key: str,
        body: ByteSource,
        *,
        content_type: str | None = None,
    ) -> ObjectVersion:
        """A new version of ``key``: its current content followed by ``body``
        (created from ``body`` alone when the key has no live version); see the
        module docstring. ``content_type`` applies to a created object only.
        Raises BucketNotFound, AccessDenied, FrozenBucket, KeyTooLong,
        ObjectDrained, PreconditionFailed (a concurrent write won), and the
        errors of the data path."""
        bucket = await self._bucket(who, bucket_name, "write")
        check_key(key)
        current = await self._current(bucket_name, key)
        if current is not None and current.delete_marker:
            current = None
        if current is not None:
            require_object_read(who, bucket, current)  # its bytes go into the new version
            if is_drained(current):
                raise _drained(current)
        storage_class = current.storage_class if current is not None else "STANDARD"
        policy = self.policy_for(bucket, storage_class)
        if current is None or current.inline is not None:
            head = b"" if current is None else current.inline or b""
            result = await self._store(policy, Integrity(), _chain(head, body))
            inline, manifest, size = result.inline, result.manifest, result.size
            etag = result.md5.hex()
        else:
            result = await self._store(policy, Integrity(), body, allow_inline=False)
            inline, manifest = None, current.manifest.concat(result.manifest)
            size = current.size + result.size
            etag = segment_etag(manifest) if result.size else current.etag
        base = current or ObjectVersion(
            bucket=bucket_name,
            key=key,
            version_id="",
            last_modified=0.0,
            content_type=content_type or "binary/octet-stream",
        )
        version = self._rewritten(base, bucket, who, size, etag, inline, manifest)
        try:
            await self.meta.put_version(version, functools.partial(_still_latest, current))
        except BaseException:
            await self.data.discard(result)
            raise
        return version

    async def touch_object(self, who: Principal, bucket_name: str, key: str) -> ObjectVersion:
        """Set the latest version's modification time to now, in place (same
        version, same data). Raises BucketNotFound, AccessDenied, FrozenBucket,
        ObjectNotFound, DeleteMarkerHit."""
        await self._bucket(who, bucket_name, "write")
        v = await self._readable_version(bucket_name, key, None)
        now = self.clock.now()
        await self.meta.touch_version(bucket_name, key, v.version_id, now)
        return dataclasses.replace(v, last_modified=now)

    async def drain_object(
        self, who: Principal, bucket_name: str, key: str, version_id: str | None = None
    ) -> None:
        """Drop the data of the named (or latest) version and keep its record; see
        the module docstring. Draining a drained or empty object changes
        nothing. Raises BucketNotFound, AccessDenied, FrozenBucket,
        ObjectNotFound, VersionNotFound, DeleteMarkerHit."""
        await self._bucket(who, bucket_name, "write")
        v = await self._readable_version(bucket_name, key, version_id)
        if v.inline is None and not v.manifest.segments:
            return
        if v.size == 0:
            return
        with contextlib.suppress(NotFound):  # deleted meanwhile: nothing left to drain
            await self.meta.drain_version(bucket_name, key, v.version_id)
