"""Bucket operations: ListBuckets, Create/Delete/HeadBucket, location,
versioning, tagging, stored configuration documents, ACL, DeleteObjects."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from tessera.core.requests import DeleteConditions, DeleteError, DeleteTarget
from tessera.gateway.context import Ctx, empty_response, xml_response
from tessera.gateway.errors import to_s3_error
from tessera.model.errors import TesseraError
from tessera.protocol.s3.acl import canned_from_headers
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import format_iso8601
from tessera.protocol.s3.xml import (
    parse_create_bucket,
    parse_delete,
    parse_tagging,
    parse_versioning,
)

MAX_BUCKETS_PAGE = 10000
"""ListBuckets answers at most this many buckets a page (S3's max-buckets bound)."""


def owner(account_id: str, display_name: str | None = None) -> dict[str, Any]:
    return {"ID": account_id, "DisplayName": display_name or account_id}


async def list_buckets(ctx: Ctx) -> web.StreamResponse:
    """ListBuckets, with the optional ``prefix``, ``bucket-region``, ``max-buckets``
    and ``continuation-token`` (the last name of the previous page, opaque)."""
    q = ctx.query
    buckets = sorted(await ctx.service.list_buckets(ctx.principal), key=lambda b: b.name)
    prefix, region = q.get("prefix", ""), q.get("bucket-region", "")
    token = q.get("continuation-token", "")
    after = ""
    if token:
        try:
            after = base64.urlsafe_b64decode(token.encode()).decode()
        except (binascii.Error, ValueError) as e:
            raise S3Error("InvalidArgument", "The continuation token is not valid") from e
    chosen = [
        b
        for b in buckets
        if b.name.startswith(prefix) and b.name > after and (not region or b.region == region)
    ]
    limit = ctx.int_arg("max-buckets", MAX_BUCKETS_PAGE, low=1, high=MAX_BUCKETS_PAGE)
    page, more = chosen[:limit], len(chosen) > limit
    account = await ctx.service.get_account(ctx.principal.account_id)
    return xml_response(
        "ListAllMyBucketsResult",
        {
            "Owner": owner(account.id, account.display_name),
            "Buckets": {
                "Bucket": [
                    {
                        "Name": b.name,
                        "CreationDate": format_iso8601(b.created),
                        "BucketRegion": b.region,
                    }
                    for b in page
                ]
            },
            "ContinuationToken": (
                base64.urlsafe_b64encode(page[-1].name.encode()).decode() if more else None
            ),
            "Prefix": prefix if "prefix" in q else None,
        },
    )


async def create_bucket(ctx: Ctx) -> web.StreamResponse:
    doc = await ctx.body.read_document()
    region = parse_create_bucket(doc) if doc.strip() else None
    acl = canned_from_headers(ctx.headers, ctx.principal.account_id)
    lock = ctx.headers.get("x-amz-bucket-object-lock-enabled", "").lower() == "true"
    if lock:
        raise S3Error("NotImplemented", "Object lock is not supported.")
    await ctx.service.create_bucket(
        ctx.principal, ctx.bucket, region=region, object_lock=lock, acl=acl
    )
    return empty_response(headers={"Location": "/" + ctx.bucket})


async def delete_bucket(ctx: Ctx) -> web.StreamResponse:
    await ctx.service.delete_bucket(ctx.principal, ctx.bucket)
    return empty_response(204)


async def head_bucket(ctx: Ctx) -> web.StreamResponse:
    b = await ctx.service.head_bucket(ctx.principal, ctx.bucket)
    return empty_response(headers={"x-amz-bucket-region": b.region})


async def get_location(ctx: Ctx) -> web.StreamResponse:
    b = await ctx.service.head_bucket(ctx.principal, ctx.bucket)
    region = "" if b.region == "us-east-1" else b.region
    return xml_response("LocationConstraint", {"#text": region} if region else {})


async def get_versioning(ctx: Ctx) -> web.StreamResponse:
    b = await ctx.service.head_bucket(ctx.principal, ctx.bucket)
    content: dict[str, Any] = {}
    if b.versioning != "unversioned":
        content["Status"] = "Enabled" if b.versioning == "enabled" else "Suspended"
    return xml_response("VersioningConfiguration", content)


async def put_versioning(ctx: Ctx) -> web.StreamResponse:
    status, _mfa = parse_versioning(await ctx.body.read_document())
    if status is None:
        raise S3Error(
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    await ctx.service.put_bucket_versioning(ctx.principal, ctx.bucket, status)
    return empty_response()


async def get_tagging(ctx: Ctx) -> web.StreamResponse:
    tags = await ctx.service.get_bucket_tags(ctx.principal, ctx.bucket)
    return xml_response(
        "Tagging", {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}}
    )


async def put_tagging(ctx: Ctx) -> web.StreamResponse:
    tags = parse_tagging(await ctx.body.read_document())
    await ctx.service.put_bucket_tags(ctx.principal, ctx.bucket, tags)
    return empty_response(204)


async def delete_tagging(ctx: Ctx) -> web.StreamResponse:
    await ctx.service.delete_bucket_tags(ctx.principal, ctx.bucket)
    return empty_response(204)


async def get_config(ctx: Ctx) -> web.StreamResponse:
    doc = await ctx.service.get_bucket_config(ctx.principal, ctx.bucket, ctx.endpoint.config)
    ctype = "application/json" if ctx.endpoint.config == "policy" else "application/xml"
    return web.Response(body=doc.encode(), content_type=ctype)


async def delete_config(ctx: Ctx) -> web.StreamResponse:
    await ctx.service.delete_bucket_config(ctx.principal, ctx.bucket, ctx.endpoint.config)
    return empty_response(204)


async def delete_objects(ctx: Ctx) -> web.StreamResponse:
    doc = await ctx.body.read_document(limit=2 << 20)
    quiet, entries = parse_delete(doc)
    targets = [
        DeleteTarget(
            e.key,
            e.version_id,
            DeleteConditions(
                if_match=None if e.etag is None else (e.etag,),
                last_modified=e.last_modified,
                size=e.size,
            ),
        )
        for e in entries
    ]
    results = await ctx.service.delete_objects(ctx.principal, ctx.bucket, targets)
    deleted: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for r in results:
        if isinstance(r, DeleteError):
            err = (
                to_s3_error(r.error)
                if isinstance(r.error, TesseraError)
                else S3Error("InternalError")
            )
            e: dict[str, Any] = {"Key": r.key, "Code": err.code, "Message": err.message}
            if r.version_id:
                e["VersionId"] = r.version_id
            errors.append(e)
        elif not quiet:
            d: dict[str, Any] = {"Key": r.key}
            if r.delete_marker:
                d["DeleteMarker"] = True
                if r.version_id:
                    d["DeleteMarkerVersionId"] = r.version_id
            elif r.version_id:
                d["VersionId"] = r.version_id
            deleted.append(d)
    return xml_response("DeleteResult", {"Deleted": deleted, "Error": errors})


HANDLERS = {
    "ListBuckets": list_buckets,
    "CreateBucket": create_bucket,
    "DeleteBucket": delete_bucket,
    "HeadBucket": head_bucket,
    "GetBucketLocation": get_location,
    "GetBucketVersioning": get_versioning,
    "PutBucketVersioning": put_versioning,
    "GetBucketTagging": get_tagging,
    "PutBucketTagging": put_tagging,
    "DeleteBucketTagging": delete_tagging,
    "GetBucketConfig": get_config,
    "DeleteBucketConfig": delete_config,
    "DeleteObjects": delete_objects,
}
