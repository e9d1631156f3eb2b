"""Multipart uploads: create, upload part (and part copy), complete, abort, list.

Completion concatenates the parts' segment lists into the object's manifest in
one metadata transaction: no byte is copied. Parts are never stored inline, so
every part is a list of segments that can be concatenated.
"""

from __future__ import annotations

import functools
import itertools

from tessera.common.checksums import composite_checksum, multipart_etag
from tessera.common.ids import new_upload_id
from tessera.common.ranges import RangeSpec
from tessera.core.access import check_acl
from tessera.core.conditions import check_copy_source, check_write
from tessera.core.listing import _MAX, common_prefix
from tessera.core.objects import ObjectOps
from tessera.core.requests import (
    Conditions,
    Integrity,
    ObjectAttributes,
    Principal,
    UploadListRequest,
    UploadListResult,
)
from tessera.core.validation import check_key, check_tags, check_user_metadata
from tessera.model.errors import (
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    PartTooSmall,
    UploadNotFound,
)
from tessera.model.records import ObjectVersion, Part, Upload


class CompletedPartSpec:
    """One ``<Part>`` of a completion request (number, unquoted ETag, checksums)."""

    __slots__ = ("checksums", "etag", "number")

    def __init__(self, number: int, etag: str, checksums: dict[str, str] | None = None) -> None:
        self.number = number
        self.etag = etag
        self.checksums = checksums or {}


class MultipartOps(ObjectOps):
    async def create_upload(
        self,
        who: Principal,
        bucket_name: str,
        key: str,
        attributes: ObjectAttributes,
        *,
        checksum_algorithm: str = "",
        checksum_type: str = "",
    ) -> Upload:
        bucket = await self._bucket(who, bucket_name, "write")
        check_key(key)
        check_user_metadata(attributes.user_metadata)
        check_tags(attributes.tags)
        algo = checksum_algorithm.upper()
        upload = Upload(
            bucket=bucket_name,
            key=key,
            upload_id=new_upload_id(),
            initiated=self.clock.now(),
            owner=who.account_id,
            content_type=attributes.content_type or "binary/octet-stream",
            headers=dict(attributes.headers),
            user_metadata=dict(attributes.user_metadata),
            tags=dict(attributes.tags),
            storage_class=attributes.storage_class,
            policy=bucket.policy,
            checksum_algorithm=algo,
            checksum_type=(checksum_type or "COMPOSITE").upper() if algo else "",
            acl=check_acl(attributes.acl, bucket=False),
        )
        await self.meta.create_upload(upload)
        return upload

    async def _upload(self, who: Principal, bucket: str, key: str, upload_id: str) -> Upload:
        await self._bucket(who, bucket, "write")
        upload = await self.meta.get_upload(bucket, upload_id)
        if upload.key != key:
            raise UploadNotFound("The specified upload does not exist.", upload_id=upload_id)
        return upload

    def _check_part_number(self, number: int) -> None:
        if not 1 <= number <= self.options.max_parts:
            raise InvalidArgument(
                f"Part number must be an integer between 1 and {self.options.max_parts}, inclusive",
                argument="partNumber",
                value=str(number),
            )

    async def upload_part(
        self,
        who: Principal,
        bucket_name: str,
        key: str,
        upload_id: str,
        number: int,
        body: object,
        integrity: Integrity,
    ) -> Part:
        """Store one part (replacing an earlier part of that number)."""
        self._check_part_number(number)
        upload = await self._upload(who, bucket_name, key, upload_id)
        bucket = await self.meta.get_bucket(bucket_name)
        algos = tuple(
            dict.fromkeys(
                (
                    *integrity.algorithms,
                    *([upload.checksum_algorithm] if upload.checksum_algorithm else []),
                )
            )
        )
        integrity = Integrity(
            integrity.content_md5, algos, integrity.expected, integrity.declared_size
        )
        result = await self._store(bucket, integrity, body, allow_inline=False)
        part = Part(
            upload_id=upload_id,
            number=number,
            size=result.size,
            etag=result.md5.hex(),
            last_modified=self.clock.now(),
            md5=result.md5,
            checksums=dict(result.checksums),
            manifest=result.manifest,
        )
        try:
            await self.meta.put_part(part)
        except UploadNotFound:
            await self.data.discard(result)
            raise
        return part

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
        """Copy (a range of) an object into a part; returns the part and the source version id."""
        self._check_part_number(number)
        await self._upload(who, bucket_name, key, upload_id)
        source_bucket = await self._bucket(who, src_bucket, "exists")
        src = await self._version_for(who, source_bucket, src_key, src_version_id)
        check_copy_source(source_conditions, src)
        byte_range = None
        if src_range is not None:
            if src_range.first is None or src_range.last is None or src_range.last >= src.size:
                raise InvalidRange(src.size)
            byte_range = src_range.resolve(src.size)
            if byte_range is None:
                raise InvalidRange(src.size)
        source = self.data.read(src.inline, src.manifest, byte_range)
        part = await self.upload_part(who, bucket_name, key, upload_id, number, source, Integrity())
        return part, src.version_id

    async def complete_upload(
        self,
        who: Principal,
        bucket_name: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPartSpec],
        conditions: Conditions | None = None,
    ) -> ObjectVersion:
        """Assemble the listed parts into the object.

        Raises UploadNotFound, InvalidPartOrder (numbers not ascending), InvalidPart
        (unknown part or ETag/checksum mismatch), PartTooSmall (a part but the last
        under the minimum), PreconditionFailed and ObjectNotFound (``conditions``,
        see :func:`~tessera.core.conditions.check_write`).
        """
        upload = await self._upload(who, bucket_name, key, upload_id)
        bucket = await self.meta.get_bucket(bucket_name)
        if not parts:
            raise InvalidRequest("You must specify at least one part")
        numbers = [p.number for p in parts]
        if any(b <= a for a, b in itertools.pairwise(numbers)):
            raise InvalidPartOrder(
                "The list of parts was not in ascending order. The parts list must be specified in order by part number."
            )
        stored = {p.number: p for p in await self.meta.list_parts(upload_id)}
        chosen: list[Part] = []
        for spec in parts:
            part = stored.get(spec.number)
            if part is None or part.etag != spec.etag.strip('"'):
                raise InvalidPart(
                    "One or more of the specified parts could not be found. The part may not have been uploaded, "
                    "or the specified entity tag may not match the part's entity tag.",
                    part_number=spec.number,
                )
            for algo, value in spec.checksums.items():
                if part.checksums.get(algo.upper(), value) != value:
                    raise InvalidPart(
                        f"The {algo} checksum of part {spec.number} does not match",
                        part_number=spec.number,
                    )
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < self.options.min_part_size:
                raise PartTooSmall(
                    "Your proposed upload is smaller than the minimum allowed object size.",
                    part_number=part.number,
                    size=part.size,
                    min_size=self.options.min_part_size,
                )
        manifest = chosen[0].manifest
        for part in chosen[1:]:
            manifest = manifest.concat(part.manifest)
        checksums: dict[str, str] = {}
        algo = upload.checksum_algorithm
        if algo and all(algo in p.checksums for p in chosen):
            checksums[algo] = composite_checksum(algo, [p.checksums[algo] for p in chosen])
        version = ObjectVersion(
            bucket=bucket_name,
            key=key,
            version_id=self._version_id_for_write(bucket),
            last_modified=self.clock.now(),
            size=sum(p.size for p in chosen),
            etag=multipart_etag(p.md5 for p in chosen),
            content_type=upload.content_type,
            headers=dict(upload.headers),
            user_metadata=dict(upload.user_metadata),
            tags=dict(upload.tags),
            checksums=checksums,
            storage_class=upload.storage_class,
            owner=who.account_id,
            manifest=manifest,
            part_sizes=tuple(p.size for p in chosen),
            acl=upload.acl,
        )
        # If-Match / If-None-Match are checked in the completing transaction;
        # when they fail, the upload is left as it was.
        guard = None
        if conditions is not None and not conditions.empty:
            guard = functools.partial(check_write, conditions)
        await self.meta.complete_upload(bucket_name, upload_id, version, guard)
        return version

    async def abort_upload(
        self, who: Principal, bucket_name: str, key: str, upload_id: str
    ) -> None:
        """Raises UploadNotFound."""
        await self._upload(who, bucket_name, key, upload_id)
        await self.meta.abort_upload(bucket_name, upload_id)

    async def list_parts(
        self,
        who: Principal,
        bucket_name: str,
        key: str,
        upload_id: str,
        *,
        after: int = 0,
        max_parts: int = 1000,
    ) -> tuple[Upload, list[Part], bool]:
        """(upload, parts after ``after``, truncated)."""
        upload = await self._upload(who, bucket_name, key, upload_id)
        parts = await self.meta.list_parts(upload_id, after, max_parts + 1)
        return upload, parts[:max_parts], len(parts) > max_parts

    async def list_uploads(self, who: Principal, req: UploadListRequest) -> UploadListResult:
        await self._bucket(who, req.bucket, "read")
        uploads: list[Upload] = []
        prefixes: list[str] = []
        key_marker: str | None = req.key_marker or None
        id_marker: str | None = (req.upload_id_marker or None) if req.key_marker else None
        if key_marker and common_prefix(key_marker, req.prefix, req.delimiter) == key_marker:
            key_marker, id_marker = key_marker + _MAX, None
        nk, nu = "", ""
        if req.max_uploads <= 0:
            return UploadListResult([], [], False)
        while True:
            want = req.max_uploads - len(uploads) - len(prefixes)
            limit = min(1000, want + 1)
            batch = await self.meta.list_uploads(
                req.bucket, req.prefix, key_marker, id_marker, limit
            )
            if not batch:
                return UploadListResult(uploads, prefixes, False)
            for u in batch:
                if len(uploads) + len(prefixes) == req.max_uploads:
                    return UploadListResult(uploads, prefixes, True, nk, nu)
                cp = common_prefix(u.key, req.prefix, req.delimiter)
                if cp is not None:
                    prefixes.append(cp)
                    nk, nu = cp, ""
                    key_marker, id_marker = max(cp + _MAX, u.key), None
                    break
                uploads.append(u)
                nk, nu = u.key, u.upload_id
                key_marker, id_marker = u.key, u.upload_id
            else:
                if len(batch) < limit:
                    return UploadListResult(uploads, prefixes, False)
