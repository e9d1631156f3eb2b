"""Object operations: Put, Get, Head, Delete, Copy, tagging, ACL."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tessera.common.ids import NULL_VERSION
from tessera.common.streams import ByteSource
from tessera.core.requests import CopyRequest, GetRequest, Integrity, ObjectRead, PutRequest
from tessera.gateway.context import Ctx, empty_response, xml_response
from tessera.gateway.metadata import (
    apply_overrides,
    attributes_from,
    checksum_headers,
    checksum_request,
    checksum_type,
    conditions_from,
    content_md5,
    delete_conditions_from,
    object_headers,
)
from tessera.model.errors import TesseraError
from tessera.model.records import ObjectVersion
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import format_iso8601, parse_range, quote_etag
from tessera.protocol.s3.xml import parse_tagging

log = logging.getLogger(__name__)


def _version_headers(v: ObjectVersion) -> dict[str, str]:
    return {"x-amz-version-id": v.version_id} if v.version_id != NULL_VERSION else {}


def integrity_from(ctx: Ctx) -> Integrity:
    algos, values = checksum_request(ctx.headers)
    return Integrity(
        content_md5(ctx.headers), algos, ctx.body.expected_checksums(values), ctx.body.declared_size
    )


async def put_object(ctx: Ctx) -> web.StreamResponse:
    req = PutRequest(
        ctx.bucket,
        ctx.key,
        ctx.body.source(),
        attributes_from(ctx.headers, owner=ctx.principal.account_id),
        integrity_from(ctx),
        conditions_from(ctx.headers),
    )
    v = await ctx.service.put_object(ctx.principal, req)
    return empty_response(
        headers={
            "ETag": quote_etag(v.etag),
            **_version_headers(v),
            **checksum_headers(v.checksums),
        }
    )


def _get_request(ctx: Ctx) -> GetRequest:
    q, h = ctx.query, ctx.headers
    part_number = None
    if "partNumber" in q:
        part_number = ctx.int_arg("partNumber", 1, low=1)
    range_spec = parse_range(h["range"]) if "range" in h and part_number is None else None
    return GetRequest(
        ctx.bucket, ctx.key, q.get("versionId"), range_spec, part_number, conditions_from(h)
    )


def _read_headers(ctx: Ctx, r: ObjectRead) -> tuple[int, dict[str, str], int]:
    v = r.version
    headers = object_headers(v, versioned=r.versioned)
    if ctx.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
        headers.update(checksum_headers(r.checksums, r.checksum_type))
    apply_overrides(headers, ctx.query)
    if r.parts_count is not None and "partNumber" in ctx.query:
        headers["x-amz-mp-parts-count"] = str(r.parts_count)
    if r.range is not None:
        headers["Content-Range"] = r.range.content_range(v.size)
        return 206, dict(headers), r.range.length
    return 200, dict(headers), v.size


async def get_object(ctx: Ctx) -> web.StreamResponse:
    """Stream an object. The first piece is read before the status line is sent,
    so a read that fails at once (no good copy, servers down) answers a proper S3
    error. A failure later, mid-body, aborts the connection: the client sees a
    body shorter than Content-Length (an error), never a complete wrong one, and
    never waits for bytes that will not come. A body that arrives as one piece
    goes out with the headers in one write."""
    r = await ctx.service.get_object(ctx.principal, _get_request(ctx))
    status, headers, length = _read_headers(ctx, r)
    headers["x-amz-request-id"] = ctx.request_id
    assert r.body is not None
    body = aiter(r.body)
    try:
        first = await anext(body, None)
        if first is not None and len(first) == length:
            # The whole body in one piece (every small object): one response,
            # one write of status line, headers and body together.
            return web.Response(status=status, headers=headers, body=first)
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = length
        await resp.prepare(ctx.request)
        await _send_body(ctx, resp, first, body, length)
    finally:
        close = getattr(body, "aclose", None)
        if close is not None:
            await close()
    await resp.write_eof()
    return resp


async def _send_body(
    ctx: Ctx,
    resp: web.StreamResponse,
    first: bytes | None,
    rest: ByteSource,
    length: int,
) -> None:
    """Write ``first`` and the rest of the body. A read failure aborts the
    connection (the client sees a short body) and raises ConnectionResetError."""
    sent = 0
    try:
        if first is not None:
            await resp.write(first)
            sent += len(first)
        async for chunk in rest:
            await resp.write(chunk)
            sent += len(chunk)
    except (TesseraError, OSError) as e:
        log.error(
            "GET %s/%s failed after %d of %d bytes (request %s): %s",
            ctx.bucket,
            ctx.key,
            sent,
            length,
            ctx.request_id,
            e,
        )
        if ctx.request.transport is not None:
            ctx.request.transport.abort()
        raise ConnectionResetError("object read failed mid-body") from e


async def head_object(ctx: Ctx) -> web.StreamResponse:
    r = await ctx.service.get_object(ctx.principal, _get_request(ctx), head=True)
    status, headers, length = _read_headers(ctx, r)
    headers["x-amz-request-id"] = ctx.request_id
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = length
    await resp.prepare(ctx.request)
    await resp.write_eof()
    return resp


async def delete_object(ctx: Ctx) -> web.StreamResponse:
    r = await ctx.service.delete_object(
        ctx.principal,
        ctx.bucket,
        ctx.key,
        ctx.query.get("versionId"),
        delete_conditions_from(ctx.headers),
    )
    headers: dict[str, str] = {}
    if r.delete_marker:
        headers["x-amz-delete-marker"] = "true"
    if r.version_id:
        headers["x-amz-version-id"] = r.version_id
    return empty_response(204, headers)


def parse_copy_source(value: str) -> tuple[str, str, str | None]:
    """``[/]bucket/key[?versionId=V]`` (URL-encoded) -> (bucket, key, version)."""
    raw, _, qs = value.partition("?")
    version = None
    if qs:
        name, _, v = qs.partition("=")
        if name != "versionId":
            raise S3Error(
                "InvalidArgument",
                "Invalid copy source",
                extra={"ArgumentName": "x-amz-copy-source"},
            )
        version = unquote(v)
    path = unquote(raw)
    if path.startswith("/"):
        path = path[1:]
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise S3Error(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            extra={"ArgumentName": "x-amz-copy-source"},
        )
    return bucket, key, version


async def copy_object(ctx: Ctx) -> web.StreamResponse:
    h = ctx.headers
    src_bucket, src_key, src_version = parse_copy_source(h["x-amz-copy-source"])
    directive = h.get("x-amz-metadata-directive", "COPY").upper()
    tagging = h.get("x-amz-tagging-directive", "COPY").upper()
    algo = h.get("x-amz-checksum-algorithm")
    req = CopyRequest(
        src_bucket,
        src_key,
        src_version,
        ctx.bucket,
        ctx.key,
        metadata_directive=directive,
        tagging_directive=tagging,
        attributes=attributes_from(
            h, with_tags=tagging == "REPLACE", owner=ctx.principal.account_id
        ),
        source_conditions=conditions_from(h, "x-amz-copy-source-"),
        checksum_algorithm=algo.upper() if algo else None,
    )
    res = await ctx.service.copy_object(ctx.principal, req)
    v = res.version
    content: dict[str, Any] = {
        "LastModified": format_iso8601(v.last_modified),
        "ETag": quote_etag(v.etag),
    }
    for a, value in v.checksums.items():
        content["Checksum" + a] = value
    if v.checksums:
        content["ChecksumType"] = checksum_type(v.checksums)
    headers = _version_headers(v)
    if res.source_version_id != NULL_VERSION:
        headers["x-amz-copy-source-version-id"] = res.source_version_id
    return xml_response("CopyObjectResult", content, headers=headers)


async def get_tagging(ctx: Ctx) -> web.StreamResponse:
    v = await ctx.service.get_object_tags(
        ctx.principal, ctx.bucket, ctx.key, ctx.query.get("versionId")
    )
    return xml_response(
        "Tagging",
        {"TagSet": {"Tag": [{"Key": k, "Value": val} for k, val in v.tags.items()]}},
        headers=_version_headers(v),
    )


async def put_tagging(ctx: Ctx) -> web.StreamResponse:
    tags = parse_tagging(await ctx.body.read_document())
    v = await ctx.service.put_object_tags(
        ctx.principal, ctx.bucket, ctx.key, tags, ctx.query.get("versionId")
    )
    return empty_response(headers=_version_headers(v))


async def delete_tagging(ctx: Ctx) -> web.StreamResponse:
    v = await ctx.service.delete_object_tags(
        ctx.principal, ctx.bucket, ctx.key, ctx.query.get("versionId")
    )
    return empty_response(204, headers=_version_headers(v))


HANDLERS = {
    "PutObject": put_object,
    "GetObject": get_object,
    "HeadObject": head_object,
    "DeleteObject": delete_object,
    "CopyObject": copy_object,
    "GetObjectTagging": get_tagging,
    "PutObjectTagging": put_tagging,
    "DeleteObjectTagging": delete_tagging,
}
