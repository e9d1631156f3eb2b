"""Listings: ListObjects (v1, v2), ListObjectVersions, ListMultipartUploads, ListParts.

Object and version listings render their entries by string building
(:mod:`tessera.protocol.s3.listing_xml`), byte for byte the document the
generic renderer makes of the same content; uploads and parts (short pages)
use the generic renderer.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiohttp import web

from tessera.core.requests import ListRequest, UploadListRequest, VersionListRequest
from tessera.gateway.context import XML_TYPE, Ctx, xml_response
from tessera.gateway.handlers.bucket import owner
from tessera.model.errors import TesseraError
from tessera.model.records import ObjectVersion
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import format_iso8601, quote_etag, uri_encode
from tessera.protocol.s3.listing_xml import (
    Timestamps,
    escape,
    needs_escape,
    owner_element,
    prefix_entries,
    render_listing,
)

MAX_KEYS = 1000


Encoder = Callable[[str], str]


def _as_is(text: str) -> str:
    return text


def _encoder(ctx: Ctx) -> Encoder:
    """``encoding-type=url`` encoding of keys and prefixes, or :func:`_as_is`."""
    enc = ctx.query.get("encoding-type")
    if enc is None:
        return _as_is
    if enc != "url":
        raise S3Error(
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
            extra={"ArgumentName": "encoding-type", "ArgumentValue": enc},
        )
    return _url_encode


_URL_SAFE = re.compile(r"[A-Za-z0-9\-_.~/]*")


def _url_encode(text: str) -> str:
    """:func:`uri_encode` keeping ``/``; text of only unreserved characters and
    ``/`` (most keys) is returned as is after one regular-expression match."""
    return text if _URL_SAFE.fullmatch(text) else uri_encode(text, keep_slash=True)


class _Owners:
    """Owner elements with display names, each account looked up once a request."""

    def __init__(self, ctx: Ctx) -> None:
        self._ctx = ctx
        self._names: dict[str, str] = {}

    async def load(self, ids: Iterable[str]) -> _Owners:
        for account_id in set(ids) - self._names.keys():
            try:
                account = await self._ctx.service.get_account(account_id)
                self._names[account_id] = account.display_name or account_id
            except TesseraError:  # anonymous writer or a deleted account
                self._names[account_id] = account_id
        return self

    def __call__(self, account_id: str) -> dict[str, Any]:
        return owner(account_id, self._names.get(account_id))

    def element(self, account_id: str) -> str:
        """The rendered ``<Owner>`` element of ``account_id`` (after :meth:`load`)."""
        return owner_element(account_id, self._names.get(account_id) or account_id)


def _keys(objects: Sequence[ObjectVersion], enc: Encoder) -> list[str]:
    return [v.key for v in objects] if enc is _as_is else [enc(v.key) for v in objects]


def _escaper(objects: Sequence[ObjectVersion], keys: list[str]) -> Encoder:
    """:func:`escape`, or :func:`_as_is` when no key, ETag or storage class of
    the page needs escaping (nearly always): one scan of each joined together
    instead of three :func:`escape` calls per entry."""
    if needs_escape(
        "".join(keys),
        "".join([v.etag for v in objects]),
        "".join([v.storage_class for v in objects]),
    ):
        return escape
    return _as_is


def object_entries(
    objects: Iterable[ObjectVersion], enc: Encoder, owner_of: Callable[[str], str] | None = None
) -> str:
    """The ``<Contents>`` elements of a ListObjects (v1 or v2) page: Key,
    LastModified, ETag, Size, StorageClass, a ChecksumAlgorithm per stored
    checksum, and Owner (``owner_of(account_id)``, an ``<Owner>`` element) when
    ``owner_of`` is given."""
    objects = objects if isinstance(objects, list) else list(objects)
    keys = _keys(objects, enc)
    esc = _escaper(objects, keys)
    stamp = Timestamps().format
    algos_of: dict[tuple[str, ...], str] = {(): ""}  # rendered once per distinct set
    out: list[str] = []
    for v, key in zip(objects, keys, strict=True):
        names = tuple(v.checksums)
        algos = algos_of.get(names)
        if algos is None:
            algos = "".join(f"<ChecksumAlgorithm>{escape(a)}</ChecksumAlgorithm>" for a in names)
            algos_of[names] = algos
        who = "" if owner_of is None else owner_of(v.owner)
        out.append(
            f"<Contents><Key>{esc(key)}</Key><LastModified>{stamp(v.last_modified)}"
            f"</LastModified><ETag>&quot;{esc(v.etag)}&quot;</ETag><Size>{v.size}</Size>"
            f"<StorageClass>{esc(v.storage_class)}</StorageClass>{algos}{who}</Contents>"
        )
    return "".join(out)


def version_entries(
    versions: Iterable[ObjectVersion], enc: Encoder, owner_of: Callable[[str], str]
) -> str:
    """The ``<Version>`` elements, then the ``<DeleteMarker>`` elements, of a
    ListObjectVersions page, each group in listing order, with ``<Owner>``
    elements from ``owner_of(account_id)``."""
    versions = versions if isinstance(versions, list) else list(versions)
    keys = _keys(versions, enc)
    esc = (
        escape
        if needs_escape("".join([v.version_id for v in versions]))
        else _escaper(versions, keys)
    )
    stamp = Timestamps().format
    found: list[str] = []
    markers: list[str] = []
    for v, key in zip(versions, keys, strict=True):
        common = (
            f"<Key>{esc(key)}</Key><VersionId>{esc(v.version_id)}</VersionId>"
            f"<IsLatest>{'true' if v.is_latest else 'false'}</IsLatest>"
            f"<LastModified>{stamp(v.last_modified)}</LastModified>"
        )
        if v.delete_marker:
            markers.append(f"<DeleteMarker>{common}{owner_of(v.owner)}</DeleteMarker>")
        else:
            found.append(
                f"<Version>{common}<ETag>&quot;{esc(v.etag)}&quot;</ETag>"
                f"<Size>{v.size}</Size><StorageClass>{esc(v.storage_class)}</StorageClass>"
                f"{owner_of(v.owner)}</Version>"
            )
    return "".join(found) + "".join(markers)


def _listing_response(root: str, head: tuple[tuple[str, Any], ...], *body: str) -> web.Response:
    return web.Response(body=render_listing(root, head, *body), content_type=XML_TYPE)


def _token_encode(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode("utf-8", "surrogatepass")).decode()


def _token_decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode("utf-8", "surrogatepass")
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        raise S3Error(
            "InvalidArgument",
            "The continuation token provided is incorrect",
            extra={"ArgumentName": "continuation-token"},
        ) from e


def _check_unordered(ctx: Ctx, delimiter: str) -> None:
    """``allow-unordered=true`` (an RGW extension some tools send) is honoured by
    the ordered listing, which is one valid unordered order; with a delimiter it
    is refused, as RGW does."""
    if ctx.query.get("allow-unordered", "").lower() == "true" and delimiter:
        raise S3Error("InvalidArgument", "allow-unordered cannot be combined with a delimiter")


async def list_objects(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query
    enc = _encoder(ctx)
    max_keys = ctx.int_arg("max-keys", MAX_KEYS, high=MAX_KEYS)
    prefix, delimiter, marker = q.get("prefix", ""), q.get("delimiter", ""), q.get("marker", "")
    _check_unordered(ctx, delimiter)
    res = await ctx.service.list_objects(
        ctx.principal, ListRequest(ctx.bucket, prefix, delimiter, marker, max_keys)
    )
    owners = await _Owners(ctx).load(v.owner for v in res.objects)
    head = (
        ("Name", ctx.bucket),
        # v1 leaves Prefix as sent even with encoding-type=url: botocore decodes
        # Marker, NextMarker, Delimiter and keys in v1 responses, but not Prefix.
        ("Prefix", prefix),
        ("Marker", enc(marker)),
        ("MaxKeys", max_keys),
        ("Delimiter", enc(delimiter) if delimiter else None),
        ("IsTruncated", res.truncated),
        ("NextMarker", enc(res.next_after) if res.truncated and delimiter else None),
        ("EncodingType", q.get("encoding-type")),
    )
    return _listing_response(
        "ListBucketResult",
        head,
        object_entries(res.objects, enc, owners.element),
        prefix_entries(map(enc, res.common_prefixes)),
    )


async def list_objects_v2(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query
    enc = _encoder(ctx)
    max_keys = ctx.int_arg("max-keys", MAX_KEYS, high=MAX_KEYS)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    token = q.get("continuation-token")
    start_after = q.get("start-after", "")
    # An empty token is no token (echoed back as sent), like RGW and MinIO.
    after = _token_decode(token) if token else start_after
    _check_unordered(ctx, delimiter)
    res = await ctx.service.list_objects(
        ctx.principal, ListRequest(ctx.bucket, prefix, delimiter, after, max_keys)
    )
    fetch_owner = q.get("fetch-owner", "false").lower() == "true"
    owners = await _Owners(ctx).load(v.owner for v in res.objects) if fetch_owner else None
    head = (
        ("Name", ctx.bucket),
        ("Prefix", enc(prefix)),
        ("MaxKeys", max_keys),
        ("Delimiter", enc(delimiter) if delimiter else None),
        ("IsTruncated", res.truncated),
        ("EncodingType", q.get("encoding-type")),
        ("KeyCount", len(res.objects) + len(res.common_prefixes)),
        ("ContinuationToken", token),
        ("NextContinuationToken", _token_encode(res.next_after) if res.truncated else None),
        ("StartAfter", enc(start_after) if "start-after" in q else None),
    )
    return _listing_response(
        "ListBucketResult",
        head,
        object_entries(res.objects, enc, None if owners is None else owners.element),
        prefix_entries(map(enc, res.common_prefixes)),
    )


async def list_versions(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query
    enc = _encoder(ctx)
    max_keys = ctx.int_arg("max-keys", MAX_KEYS, high=MAX_KEYS)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    key_marker, vid_marker = q.get("key-marker", ""), q.get("version-id-marker", "")
    if vid_marker and not key_marker:
        raise S3Error(
            "InvalidArgument",
            "A version-id marker cannot be specified without a key marker.",
            extra={"ArgumentName": "version-id-marker"},
        )
    res = await ctx.service.list_versions(
        ctx.principal,
        VersionListRequest(ctx.bucket, prefix, delimiter, key_marker, vid_marker, max_keys),
    )
    owners = await _Owners(ctx).load(v.owner for v in res.versions)
    head = (
        ("Name", ctx.bucket),
        ("Prefix", enc(prefix)),
        ("KeyMarker", enc(key_marker)),
        ("VersionIdMarker", vid_marker),
        ("MaxKeys", max_keys),
        ("Delimiter", enc(delimiter) if delimiter else None),
        ("IsTruncated", res.truncated),
        ("EncodingType", q.get("encoding-type")),
        ("NextKeyMarker", enc(res.next_key_marker) if res.truncated else None),
        ("NextVersionIdMarker", (res.next_version_id_marker or None) if res.truncated else None),
    )
    return _listing_response(
        "ListVersionsResult",
        head,
        version_entries(res.versions, enc, owners.element),
        prefix_entries(map(enc, res.common_prefixes)),
    )


async def list_uploads(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query
    enc = _encoder(ctx)
    max_uploads = ctx.int_arg("max-uploads", MAX_KEYS, high=MAX_KEYS)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    key_marker, id_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
    res = await ctx.service.list_uploads(
        ctx.principal,
        UploadListRequest(ctx.bucket, prefix, delimiter, key_marker, id_marker, max_uploads),
    )
    owners = await _Owners(ctx).load(u.owner for u in res.uploads)
    content: dict[str, Any] = {
        "Bucket": ctx.bucket,
        "KeyMarker": enc(key_marker),
        "UploadIdMarker": id_marker,
        "NextKeyMarker": enc(res.next_key_marker) if res.truncated else None,
        "NextUploadIdMarker": res.next_upload_id_marker if res.truncated else None,
        "Prefix": enc(prefix),
        "Delimiter": enc(delimiter) if delimiter else None,
        "MaxUploads": max_uploads,
        "IsTruncated": res.truncated,
        "EncodingType": q.get("encoding-type"),
        "Upload": [
            {
                "Key": enc(u.key),
                "UploadId": u.upload_id,
                "Initiator": owners(u.owner),
                "Owner": owners(u.owner),
                "StorageClass": u.storage_class,
                "Initiated": format_iso8601(u.initiated),
                "ChecksumAlgorithm": u.checksum_algorithm or None,
            }
            for u in res.uploads
        ],
        "CommonPrefixes": [{"Prefix": enc(p)} for p in res.common_prefixes],
    }
    return xml_response("ListMultipartUploadsResult", content)


async def list_parts(ctx: Ctx) -> web.StreamResponse:
    max_parts = ctx.int_arg("max-parts", MAX_KEYS, high=MAX_KEYS)
    after = ctx.int_arg("part-number-marker", 0)
    upload_id = ctx.query["uploadId"]
    upload, parts, truncated = await ctx.service.list_parts(
        ctx.principal, ctx.bucket, ctx.key, upload_id, after=after, max_parts=max_parts
    )
    part_entries = []
    for p in parts:
        entry: dict[str, Any] = {
            "PartNumber": p.number,
            "LastModified": format_iso8601(p.last_modified),
            "ETag": quote_etag(p.etag),
            "Size": p.size,
        }
        for algo, value in p.checksums.items():
            entry["Checksum" + algo] = value
        part_entries.append(entry)
    owners = await _Owners(ctx).load([upload.owner])
    content: dict[str, Any] = {
        "Bucket": ctx.bucket,
        "Key": ctx.key,
        "UploadId": upload_id,
        "Initiator": owners(upload.owner),
        "Owner": owners(upload.owner),
        "StorageClass": upload.storage_class,
        "PartNumberMarker": after,
        "NextPartNumberMarker": parts[-1].number if parts else 0,
        "MaxParts": max_parts,
        "IsTruncated": truncated,
        "ChecksumAlgorithm": upload.checksum_algorithm or None,
        "ChecksumType": upload.checksum_type or None,
        "Part": part_entries,
    }
    return xml_response("ListPartsResult", content)


HANDLERS = {
    "ListObjects": list_objects,
    "ListObjectsV2": list_objects_v2,
    "ListObjectVersions": list_versions,
    "ListMultipartUploads": list_uploads,
    "ListParts": list_parts,
}
