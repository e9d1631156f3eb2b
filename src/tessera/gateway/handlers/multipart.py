"""Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tessera.common.ids import NULL_VERSION
from tessera.core.multipart import CompletedPartSpec
from tessera.gateway.context import Ctx, empty_response, xml_response
from tessera.gateway.handlers.objects import integrity_from, parse_copy_source
from tessera.gateway.metadata import (
    attributes_from,
    checksum_type,
    checksum_values,
    conditions_from,
)
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import format_iso8601, parse_range, quote_etag
from tessera.protocol.s3.xml import parse_complete_multipart


async def create_upload(ctx: Ctx) -> web.StreamResponse:
    h = ctx.headers
    upload = await ctx.service.create_upload(
        ctx.principal,
        ctx.bucket,
        ctx.key,
        attributes_from(h, owner=ctx.principal.account_id),
        checksum_algorithm=h.get("x-amz-checksum-algorithm", ""),
        checksum_type=h.get("x-amz-checksum-type", ""),
    )
    headers = {}
    if upload.checksum_algorithm:
        headers["x-amz-checksum-algorithm"] = upload.checksum_algorithm
        headers["x-amz-checksum-type"] = upload.checksum_type
    return xml_response(
        "InitiateMultipartUploadResult",
        {"Bucket": ctx.bucket, "Key": ctx.key, "UploadId": upload.upload_id},
        headers=headers,
    )


def _part_number(ctx: Ctx) -> int:
    raw = ctx.query.get("partNumber", "")
    try:
        return int(raw)
    except ValueError as e:
        raise S3Error(
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive",
            extra={"ArgumentName": "partNumber", "ArgumentValue": raw},
        ) from e


async def upload_part(ctx: Ctx) -> web.StreamResponse:
    part = await ctx.service.upload_part(
        ctx.principal,
        ctx.bucket,
        ctx.key,
        ctx.query["uploadId"],
        _part_number(ctx),
        ctx.body.source(),
        integrity_from(ctx),
    )
    headers = {"ETag": quote_etag(part.etag)}
    for algo, value in part.checksums.items():
        headers["x-amz-checksum-" + algo.lower()] = value
    return empty_response(headers=headers)


async def upload_part_copy(ctx: Ctx) -> web.StreamResponse:
    h = ctx.headers
    src_bucket, src_key, src_version = parse_copy_source(h["x-amz-copy-source"])
    src_range = None
    if "x-amz-copy-source-range" in h:
        src_range = parse_range(h["x-amz-copy-source-range"])
        if src_range is None:
            raise S3Error(
                "InvalidArgument",
                "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
                extra={"ArgumentName": "x-amz-copy-source-range"},
            )
    part, src_version_id = await ctx.service.upload_part_copy(
        ctx.principal,
        ctx.bucket,
        ctx.key,
        ctx.query["uploadId"],
        _part_number(ctx),
        src_bucket=src_bucket,
        src_key=src_key,
        src_version_id=src_version,
        src_range=src_range,
        source_conditions=conditions_from(h, "x-amz-copy-source-"),
    )
    headers = (
        {"x-amz-copy-source-version-id": src_version_id} if src_version_id != NULL_VERSION else {}
    )
    content: dict[str, Any] = {
        "LastModified": format_iso8601(part.last_modified),
        "ETag": quote_etag(part.etag),
    }
    for algo, value in part.checksums.items():
        content["Checksum" + algo] = value
    return xml_response("CopyPartResult", content, headers=headers)


async def complete_upload(ctx: Ctx) -> web.StreamResponse:
    doc = await ctx.body.read_document(limit=4 << 20)
    specs = [
        CompletedPartSpec(p.number, p.etag, p.checksums) for p in parse_complete_multipart(doc)
    ]
    v = await ctx.service.complete_upload(
        ctx.principal,
        ctx.bucket,
        ctx.key,
        ctx.query["uploadId"],
        specs,
        conditions_from(ctx.headers),
        checksum_type=ctx.headers.get("x-amz-checksum-type", ""),
        checksums=checksum_values(ctx.headers),
    )
    content: dict[str, Any] = {
        "Location": f"/{ctx.bucket}/{ctx.key}",
        "Bucket": ctx.bucket,
        "Key": ctx.key,
        "ETag": quote_etag(v.etag),
    }
    for algo, value in v.checksums.items():
        content["Checksum" + algo] = value
    if v.checksums:
        content["ChecksumType"] = checksum_type(v.checksums)
    headers = {"x-amz-version-id": v.version_id} if v.version_id != NULL_VERSION else {}
    return xml_response("CompleteMultipartUploadResult", content, headers=headers)


async def abort_upload(ctx: Ctx) -> web.StreamResponse:
    await ctx.service.abort_upload(ctx.principal, ctx.bucket, ctx.key, ctx.query["uploadId"])
    return empty_response(204)


HANDLERS = {
    "CreateMultipartUpload": create_upload,
    "UploadPart": upload_part,
    "UploadPartCopy": upload_part_copy,
    "CompleteMultipartUpload": complete_upload,
    "AbortMultipartUpload": abort_upload,
}

__all__ = ["HANDLERS", "format_iso8601"]
