"""GetObjectAttributes: what a version is, without its bytes.

The answer is the version's metadata (ETag, checksum, size, storage class) and,
for multipart objects, one page of its parts. Parts are numbered by position
(1..N) exactly as ``partNumber`` reads number them, so a client can list the
parts here and then fetch each with ``GET ?partNumber=N``. Which attributes to
show is the front end's business; the core hands out the whole record.
"""

from __future__ import annotations

from tessera.core.objects import ObjectOps
from tessera.core.requests import AttributesResult, Principal


class AttributesOps(ObjectOps):
    async def get_object_attributes(
        self,
        who: Principal,
        bucket_name: str,
        key: str,
        version_id: str | None = None,
        *,
        max_parts: int = 1000,
        part_number_marker: int = 0,
    ) -> AttributesResult:
        """The version (latest, or ``version_id``) and its parts numbered after
        ``part_number_marker``, at most ``max_parts`` of them.

        Needs the same rights as a read of the object. Raises BucketNotFound,
        AccessDenied, ObjectNotFound, VersionNotFound and DeleteMarkerHit (the
        current version, or the named one, is a delete marker) like GetObject.
        """
        bucket = await self._bucket(who, bucket_name, "exists")
        v = await self._version_for(who, bucket, key, version_id)
        start = max(part_number_marker, 0)
        numbered = list(enumerate(v.parts, 1))[start : start + max(max_parts, 0)]
        last = numbered[-1][0] if numbered else start
        return AttributesResult(
            version=v,
            versioned=bucket.versioning != "unversioned",
            parts=numbered,
            truncated=last < len(v.parts),
        )
