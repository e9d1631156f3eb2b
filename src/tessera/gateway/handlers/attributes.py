"""GetObjectAttributes (``GET /bucket/key?attributes``).

The client names what it wants in ``x-amz-object-attributes`` (a comma-separated
list of ``ETag``, ``Checksum``, ``ObjectParts``, ``StorageClass``,
``ObjectSize``); only those elements are answered. ``ObjectParts`` pages with
the ``x-amz-max-parts`` (at most 1000) and ``x-amz-part-number-marker``
headers and is present only for multipart objects. Unlike GetObject the ETag
element is unquoted. ``Last-Modified`` and ``x-amz-version-id`` come as
headers; delete markers answer as GetObject does (404 NoSuchKey for the current
version, 405 MethodNotAllowed when named, both with ``x-amz-delete-marker``).

Where AWS documents that part elements are left out for objects without an
additional checksum, Tessera lists them anyway (number and size), as RGW does
and the ceph s3-tests expect: a client can always learn the part boundaries.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tessera.common.ids import NULL_VERSION
from tessera.gateway.context import Ctx, xml_response
from tessera.gateway.metadata import checksum_type
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import format_http_date

ATTRIBUTES = {
    name.lower(): name for name in ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
}
MAX_PARTS = 1000


def requested_attributes(value: str) -> set[str]:
    """The attribute names of an ``x-amz-object-attributes`` header (any case).
    Raises InvalidArgument when it is empty or names an unknown attribute."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise S3Error(
            "InvalidArgument",
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
            extra={"ArgumentName": "x-amz-object-attributes"},
        )
    out: set[str] = set()
    for name in names:
        canonical = ATTRIBUTES.get(name.lower())
        if canonical is None:
            raise S3Error(
                "InvalidArgument",
                "Invalid attribute name specified.",
                extra={"ArgumentName": "x-amz-object-attributes", "ArgumentValue": name},
            )
        out.add(canonical)
    return out


def _header_int(ctx: Ctx, name: str, default: int) -> int:
    raw = ctx.headers.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise S3Error(
            "InvalidArgument",
            f"Invalid value for {name}: must be a non-negative integer",
            extra={"ArgumentName": name, "ArgumentValue": raw},
        )
    return int(raw)


async def get_object_attributes(ctx: Ctx) -> web.StreamResponse:
    wanted = requested_attributes(ctx.headers.get("x-amz-object-attributes", ""))
    max_parts = min(_header_int(ctx, "x-amz-max-parts", MAX_PARTS), MAX_PARTS)
    marker = _header_int(ctx, "x-amz-part-number-marker", 0)
    r = await ctx.service.get_object_attributes(
        ctx.principal,
        ctx.bucket,
        ctx.key,
        ctx.query.get("versionId"),
        max_parts=max_parts,
        part_number_marker=marker,
    )
    v = r.version
    content: dict[str, Any] = {}
    if "ETag" in wanted:
        content["ETag"] = v.etag
    if "Checksum" in wanted and v.checksums:
        checksum = {"Checksum" + algo: value for algo, value in v.checksums.items()}
        checksum["ChecksumType"] = checksum_type(v.checksums)
        content["Checksum"] = checksum
    if "ObjectParts" in wanted and v.parts:
        content["ObjectParts"] = {
            "PartsCount": len(v.parts),
            "PartNumberMarker": marker,
            "NextPartNumberMarker": r.parts[-1][0] if r.truncated and r.parts else None,
            "MaxParts": max_parts,
            "IsTruncated": r.truncated,
            "Part": [
                {"PartNumber": number, "Size": part.size}
                | {"Checksum" + algo: value for algo, value in part.checksums.items()}
                for number, part in r.parts
            ],
        }
    if "StorageClass" in wanted:
        content["StorageClass"] = v.storage_class
    if "ObjectSize" in wanted:
        content["ObjectSize"] = v.size
    headers = {"Last-Modified": format_http_date(v.last_modified)}
    if r.versioned or v.version_id != NULL_VERSION:
        headers["x-amz-version-id"] = v.version_id
    return xml_response("GetObjectAttributesResponse", content, headers=headers)


HANDLERS = {"GetObjectAttributes": get_object_attributes}
