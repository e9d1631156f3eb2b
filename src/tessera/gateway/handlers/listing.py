"""Listings: ListObjects (v1, v2), ListObjectVersions, ListMultipartUploads, ListParts."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from tessera.core.requests import ListRequest, UploadListRequest, VersionListRequest
from tessera.gateway.context import Ctx, xml_response
from tessera.gateway.handlers.bucket import owner
from tessera.model.errors import TesseraError
from tessera.model.records import ObjectVersion
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import format_iso8601, quote_etag, uri_encode

MAX_KEYS = 1000


def _encoder(ctx: Ctx) -> Any:
    enc = ctx.query.get("encoding-type")
    if enc is None:
        return lambda s: s
    if enc != "url":
        raise S3Error(
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
            extra={"ArgumentName": "encoding-type", "ArgumentValue": enc},
        )
    return lambda s: uri_encode(s, keep_slash=True)


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


def _object_entry(v: ObjectVersion, enc: Any, *, owners: _Owners | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Key": enc(v.key),
        "LastModified": format_iso8601(v.last_modified),
        "ETag": quote_etag(v.etag),
        "Size": v.size,
        "StorageClass": v.storage_class,
    }
    if v.checksums:
        entry["ChecksumAlgorithm"] = list(v.checksums)
    if owners is not None:
        entry["Owner"] = owners(v.owner)
    return entry


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
    content: dict[str, Any] = {
        "Name": ctx.bucket,
        # v1 leaves Prefix as sent even with encoding-type=url: botocore decodes
        # Marker, NextMarker, Delimiter and keys in v1 responses, but not Prefix.
        "Prefix": prefix,
        "Marker": enc(marker),
        "MaxKeys": max_keys,
        "Delimiter": enc(delimiter) if delimiter else None,
        "IsTruncated": res.truncated,
        "NextMarker": enc(res.next_after) if res.truncated and delimiter else None,
        "EncodingType": q.get("encoding-type"),
        "Contents": [_object_entry(v, enc, owners=owners) for v in res.objects],
        "CommonPrefixes": [{"Prefix": enc(p)} for p in res.common_prefixes],
    }
    return xml_response("ListBucketResult", content)


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
    content: dict[str, Any] = {
        "Name": ctx.bucket,
        "Prefix": enc(prefix),
        "MaxKeys": max_keys,
        "Delimiter": enc(delimiter) if delimiter else None,
        "IsTruncated": res.truncated,
        "EncodingType": q.get("encoding-type"),
        "KeyCount": len(res.objects) + len(res.common_prefixes),
        "ContinuationToken": token,
        "NextContinuationToken": _token_encode(res.next_after) if res.truncated else None,
        "StartAfter": enc(start_after) if "start-after" in q else None,
        "Contents": [_object_entry(v, enc, owners=owners) for v in res.objects],
        "CommonPrefixes": [{"Prefix": enc(p)} for p in res.common_prefixes],
    }
    return xml_response("ListBucketResult", content)


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
    versions: list[dict[str, Any]] = []
    markers: list[dict[str, Any]] = []
    for v in res.versions:
        common = {
            "Key": enc(v.key),
            "VersionId": v.version_id,
            "IsLatest": v.is_latest,
            "LastModified": format_iso8601(v.last_modified),
        }
        if v.delete_marker:
            markers.append({**common, "Owner": owners(v.owner)})
        else:
            versions.append(
                {
                    **common,
                    "ETag": quote_etag(v.etag),
                    "Size": v.size,
                    "StorageClass": v.storage_class,
                    "Owner": owners(v.owner),
                }
            )
    content: dict[str, Any] = {
        "Name": ctx.bucket,
        "Prefix": enc(prefix),
        "KeyMarker": enc(key_marker),
        "VersionIdMarker": vid_marker,
        "MaxKeys": max_keys,
        "Delimiter": enc(delimiter) if delimiter else None,
        "IsTruncated": res.truncated,
        "EncodingType": q.get("encoding-type"),
        "NextKeyMarker": enc(res.next_key_marker) if res.truncated else None,
        "NextVersionIdMarker": (res.next_version_id_marker or None) if res.truncated else None,
        "Version": versions,
        "DeleteMarker": markers,
        "CommonPrefixes": [{"Prefix": enc(p)} for p in res.common_prefixes],
    }
    return xml_response("ListVersionsResult", content)


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
