"""Multipart uploads: create, upload part (and part copy), complete, abort, list.

Completion concatenates the parts' segment lists into the object's manifest in
one metadata transaction: no byte is copied. Parts are never stored inline, so
every part is a list of segments that can be concatenated.

Checksums. An upload may name one algorithm and a checksum type at creation.
Every part then computes that algorithm (a part request naming another one is
refused, as S3 does), and completion derives the object's checksum from the
parts' without reading data: ``COMPOSITE``, the checksum of the parts' raw
checksums with a ``-N`` suffix, or ``FULL_OBJECT``, the CRC of the whole
object obtained by CRC combination. Part checksums listed in the completion
request must equal the stored ones (InvalidPart); a whole-object checksum sent
with it must equal the derived one (BadDigest).

Repeated completion. Clients retry CompleteMultipartUpload when an answer is
lost, and S3 answers a retry of a completed upload with the same result. The
completed version records the id of its upload
(:meth:`~tessera.meta.store.MetadataStore.get_completed_upload`), so a request
for an upload that no longer exists looks for the version that upload created
and, when the request names the same parts (its part ETags give the version's
ETag), answers it again without changing anything. The memory lasts exactly as
long as that version: once it is deleted or replaced, the upload id is
unknown (NoSuchUpload). No table of completed ids, no expiry job.
"""

from __future__ import annotations

import functools
import itertools

from tessera.common.checksums import (
    ALGORITHMS,
    COMPOSITE_ALGORITHMS,
    CRC_ALGORITHMS,
    combine_crcs,
    composite_checksum,
    multipart_etag,
    multipart_etag_of,
)
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
    BadDigest,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    PartTooSmall,
    UploadNotFound,
)
from tessera.model.records import ObjectPart, ObjectVersion, Part, Upload


class CompletedPartSpec:
    """One ``<Part>`` of a completion request (number, unquoted ETag, checksums)."""

    __slots__ = ("checksums", "etag", "number")

    def __init__(self, number: int, etag: str, checksums: dict[str, str] | None = None) -> None:
        self.number = number
        self.etag = etag
        self.checksums = checksums or {}


def _chosen_specs(parts: list[CompletedPartSpec]) -> list[CompletedPartSpec]:
    """The parts a completion names, in order: numbers must not decrease
    (InvalidPartOrder); a number listed twice in a row keeps its last entry (a
    client that re-sent a part lists both ETags, the later one current), as
    RGW and the s3-tests suite do. Raises InvalidRequest for an empty list."""
    if not parts:
        raise InvalidRequest("You must specify at least one part")
    if any(b.number < a.number for a, b in itertools.pairwise(parts)):
        raise InvalidPartOrder(
            "The list of parts was not in ascending order. The parts list must be specified in order by part number."
        )
    return [
        b
        for b, nxt in itertools.zip_longest(parts, parts[1:])
        if nxt is None or nxt.number != b.number
    ]


def _check_whole_checksums(expected: dict[str, str], actual: dict[str, str]) -> None:
    """BadDigest unless each whole-object checksum a completion sent equals the
    object's (a composite value may be sent without its ``-N``)."""
    for name, value in expected.items():
        got = actual.get(name, "")
        if value not in (got, got.split("-")[0]):
            raise BadDigest(
                f"The {name} you specified did not match the calculated checksum.",
                algorithm=name,
            )


def _checksum_setting(algorithm: str, checksum_type: str) -> tuple[str, str]:
    """The (algorithm, type) an upload is created with; S3's defaults and
    refusals (InvalidRequest) for combinations it does not support."""
    algo, ctype = algorithm.upper(), checksum_type.upper()
    if not algo:
        if ctype:
            raise InvalidRequest(
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
            )
        return "", ""
    if algo not in ALGORITHMS:
        raise InvalidRequest(f"Checksum algorithm {algo} is not supported.")
    if not ctype:
        ctype = "FULL_OBJECT" if algo == "CRC64NVME" else "COMPOSITE"
    if ctype not in ("COMPOSITE", "FULL_OBJECT"):
        raise InvalidRequest(f"Value for x-amz-checksum-type header is invalid: {ctype}")
    supported = CRC_ALGORITHMS if ctype == "FULL_OBJECT" else COMPOSITE_ALGORITHMS
    if algo not in supported:
        raise InvalidRequest(f"The {ctype} checksum type cannot be used with the {algo} algorithm.")
    return algo, ctype


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
        algo, ctype = _checksum_setting(checksum_algorithm, checksum_type)
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
            policy=self.policy_for(bucket, attributes.storage_class),
            checksum_algorithm=algo,
            checksum_type=ctype,
            acl=check_acl(attributes.acl, bucket=False),
        )
        await self.meta.create_upload(upload)
        return upload

    async def _upload(self, who: Principal, bucket: str, key: str, upload_id: str) -> Upload:
        await self._bucket(who, bucket, "write")
        return await self._upload_of(bucket, key, upload_id)

    async def _upload_of(self, bucket: str, key: str, upload_id: str) -> Upload:
        """The upload ``upload_id`` of ``key``; raises UploadNotFound."""
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
        """Store one part (replacing an earlier part of that number). The upload's
        checksum algorithm, if any, is always computed; a request naming another
        algorithm is InvalidRequest."""
        self._check_part_number(number)
        await self._bucket(who, bucket_name, "write")
        upload = await self._upload_of(bucket_name, key, upload_id)
        want = upload.checksum_algorithm
        for algo in integrity.algorithms:
            if want and algo.upper() != want:
                raise InvalidRequest(
                    f"Checksum Type mismatch occurred, expected checksum Type: {want.lower()}, "
                    f"actual checksum Type: {algo.lower()}"
                )
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
        result = await self._store(upload.policy, integrity, body, allow_inline=False)
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
        *,
        checksum_type: str = "",
        checksums: dict[str, str] | None = None,
    ) -> ObjectVersion:
        """Assemble the listed parts into the object.

        ``checksum_type`` (if given) must be the upload's; ``checksums`` are
        whole-object checksums the client expects, in the upload's algorithm
        (a composite value with or without its ``-N``). A request for an upload
        already completed answers the version it created when it names the same
        parts (see the module docstring), and changes nothing.

        Raises UploadNotFound, InvalidPartOrder (numbers decreasing), InvalidPart
        (unknown part or ETag/checksum mismatch), PartTooSmall (a part but the last
        under the minimum), InvalidRequest (checksum type or algorithm not the
        upload's), BadDigest (whole-object checksum mismatch), PreconditionFailed
        and ObjectNotFound (``conditions``, see :func:`~tessera.core.conditions.check_write`).
        """
        bucket = await self._bucket(who, bucket_name, "write")
        specs = _chosen_specs(parts)
        expected = {a.upper(): v for a, v in (checksums or {}).items()}
        try:
            upload = await self._upload_of(bucket_name, key, upload_id)
        except UploadNotFound:
            return await self._completed_before(bucket_name, key, upload_id, specs, expected)
        algo = upload.checksum_algorithm
        if checksum_type and checksum_type.upper() != upload.checksum_type:
            raise InvalidRequest(
                f"The upload was created using the {upload.checksum_type or 'no'} checksum type; "
                f"the complete request asked for {checksum_type.upper()}."
            )
        for name in expected:
            if name != algo:
                raise InvalidRequest(
                    f"The upload was created using the {algo or 'no'} checksum algorithm; "
                    f"the complete request sent a {name} checksum."
                )
        chosen = self._check_parts(
            specs, {p.number: p for p in await self.meta.list_parts(upload_id)}
        )
        manifest = chosen[0].manifest
        for part in chosen[1:]:
            manifest = manifest.concat(part.manifest)
        object_checksums: dict[str, str] = {}
        if algo and all(algo in p.checksums for p in chosen):
            if upload.checksum_type == "FULL_OBJECT":
                value = combine_crcs(algo, [(p.checksums[algo], p.size) for p in chosen])
            else:
                value = composite_checksum(algo, [p.checksums[algo] for p in chosen])
            object_checksums[algo] = value
        _check_whole_checksums(expected, object_checksums)
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
            checksums=object_checksums,
            storage_class=upload.storage_class,
            owner=who.account_id,
            manifest=manifest,
            parts=tuple(
                ObjectPart(p.number, p.size, {algo: p.checksums[algo]} if object_checksums else {})
                for p in chosen
            ),
            acl=upload.acl,
            upload_id=upload_id,
        )
        # If-Match / If-None-Match are checked in the completing transaction;
        # when they fail, the upload is left as it was.
        guard = None
        if conditions is not None and not conditions.empty:
            guard = functools.partial(check_write, conditions)
        try:
            await self.meta.complete_upload(bucket_name, upload_id, version, guard)
        except UploadNotFound:  # a concurrent completion won
            return await self._completed_before(bucket_name, key, upload_id, specs, expected)
        return version

    def _check_parts(self, specs: list[CompletedPartSpec], stored: dict[int, Part]) -> list[Part]:
        """The stored parts ``specs`` name, checked: ETags and listed checksums
        must match (InvalidPart), every part but the last must be large enough
        (PartTooSmall)."""
        chosen: list[Part] = []
        for spec in specs:
            part = stored.get(spec.number)
            if part is None or part.etag != spec.etag.strip('"'):
                raise InvalidPart(
                    "One or more of the specified parts could not be found. The part may not have been uploaded, "
                    "or the specified entity tag may not match the part's entity tag.",
                    part_number=spec.number,
                )
            for algo, value in spec.checksums.items():
                if part.checksums.get(algo.upper()) != value:
                    raise InvalidPart(
                        f"The {algo.upper()} checksum of part {spec.number} does not match the uploaded part.",
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
        return chosen

    async def _completed_before(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        specs: list[CompletedPartSpec],
        expected: dict[str, str],
    ) -> ObjectVersion:
        """The version an earlier completion of ``upload_id`` created, if this
        request names the same parts (the multipart ETag of its part ETags is the
        version's). Raises UploadNotFound otherwise, BadDigest when a whole-object
        checksum sent differs from the stored one."""
        done = await self.meta.get_completed_upload(bucket, key, upload_id)
        if multipart_etag_of(s.etag for s in specs) != done.etag:
            raise UploadNotFound("The specified upload does not exist.", upload_id=upload_id)
        _check_whole_checksums(expected, done.checksums)
        return done

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
