"""POST Object: browser-based uploads, an HTML form posted to the bucket URL as
``multipart/form-data``.

Order of work, so a refused form never has its file read:

1. the fields before the part named ``file`` are read (at most
   :data:`~tessera.protocol.s3.post_policy.FIELDS_LIMIT` bytes, field names
   case-insensitive), ``${filename}`` is expanded with the file part's name;
2. the form is authenticated by its policy signature (SigV2 or SigV4), or is
   anonymous when it has no signature fields; the policy is checked
   (:mod:`tessera.protocol.s3.post_policy`). A request-level signature
   (``Authorization`` header, presigned query) plays no part: a form is what
   S3 authenticates for this operation;
3. the file part streams into the same core write as PutObject (bucket access,
   key and metadata checks first, the body last), with the policy's
   ``content-length-range`` enforced while bytes arrive: past the maximum the
   write stops with ``EntityTooLarge``, under the minimum it fails with
   ``EntityTooSmall`` at the end; either way nothing is stored.

Fields after the file are ignored, as S3 does. The answer is a ``303`` to
``success_action_redirect`` when one is given, else ``success_action_status``
(204 by default; 201 carries the ``PostResponse`` document).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from urllib.parse import quote

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from tessera.common.ids import NULL_VERSION
from tessera.common.streams import ByteSource
from tessera.core.access import ANONYMOUS
from tessera.core.requests import Integrity, ObjectAttributes, Principal, PutRequest
from tessera.gateway.body import READ_SIZE
from tessera.gateway.context import XML_TYPE, Ctx, empty_response
from tessera.gateway.metadata import STORED_HEADERS, attributes_from, checksum_request, content_md5
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import quote_etag
from tessera.protocol.s3.post_policy import (
    FIELDS_LIMIT,
    SIGNATURE_FIELDS,
    SizeRange,
    expand_filename,
    form_credentials,
    missing_field,
    parse_policy,
    post_response,
    redirect_location,
    success_status,
)
from tessera.protocol.s3.xml import parse_tagging

_FIELD_READ = 8192
_DRAIN_LIMIT = 64 * 1024
"""Bytes of ignored fields after the file read so the connection can be reused;
a longer tail closes the connection instead."""
_PARSE_ERRORS = (ValueError, RuntimeError, BadHttpMessage)
_ENCLOSURE = "Bucket POST must be of the enclosure-type multipart/form-data"


def _malformed() -> S3Error:
    return S3Error("MalformedPOSTRequest")


async def _next_part(reader: MultipartReader) -> BodyPartReader | None:
    try:
        part = await reader.next()
    except _PARSE_ERRORS as e:
        raise _malformed() from e
    if part is not None and not isinstance(part, BodyPartReader):
        raise _malformed()  # a nested multipart body is no form field
    return part


async def _field_value(part: BodyPartReader, budget: int) -> bytes:
    out = bytearray()
    try:
        while not part.at_eof():
            out += await part.read_chunk(_FIELD_READ)
            if len(out) > budget:
                raise S3Error("MaxPostPreDataLengthExceededError")
    except _PARSE_ERRORS as e:
        raise _malformed() from e
    return bytes(out)


async def read_fields(reader: MultipartReader) -> tuple[dict[str, str], BodyPartReader]:
    """The form fields before the file (lower-case names) and the file part, not
    yet read. InvalidArgument without a file part or with a repeated field."""
    fields: dict[str, str] = {}
    budget = FIELDS_LIMIT
    while True:
        part = await _next_part(reader)
        if part is None:
            raise missing_field("file")
        if not part.name:
            raise _malformed()
        name = part.name.lower()
        if name == "file":
            return fields, part
        budget -= len(name)
        value = await _field_value(part, budget)
        budget -= len(value)
        if budget < 0:
            raise S3Error("MaxPostPreDataLengthExceededError")
        if name in fields:
            raise S3Error(
                "InvalidArgument",
                f"The form field {part.name!r} appears more than once.",
                extra={"ArgumentName": part.name},
            )
        try:
            fields[name] = value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _malformed() from e


async def _authorize(ctx: Ctx, fields: dict[str, str]) -> tuple[Principal, SizeRange]:
    """The form's principal and allowed file sizes; anonymous without a policy."""
    creds = form_credentials(fields)
    if creds is None:
        return ANONYMOUS, SizeRange()
    key = await ctx.service.lookup_key(creds.access_key)  # AccessKeyNotFound: 403
    creds.verify(key.secret, fields["policy"])
    policy = parse_policy(fields["policy"])
    policy.check(fields, ctx.bucket, now=time.time())
    return Principal(key.account_id), policy.size


def _attributes(fields: dict[str, str], owner: str) -> ObjectAttributes:
    """What the form says about the object, through the same rules as PutObject's
    headers: ``Content-Type`` and the other stored headers, ``x-amz-meta-*``,
    ``x-amz-storage-class``, ``acl``; ``tagging`` is a Tagging XML document."""
    headers = {
        name: value
        for name, value in fields.items()
        if name == "content-type"
        or name in STORED_HEADERS
        or (name.startswith("x-amz-") and name not in SIGNATURE_FIELDS)
    }
    headers.pop("x-amz-tagging", None)
    if "acl" in fields:
        headers["x-amz-acl"] = fields["acl"]
    attrs = attributes_from(headers, with_tags=False, owner=owner)
    if "tagging" in fields:
        attrs = dataclasses.replace(attrs, tags=parse_tagging(fields["tagging"].encode()))
    return attrs


async def _file_source(part: BodyPartReader, sizes: SizeRange) -> ByteSource:
    """The file part's bytes, refusing them as soon as they exceed ``sizes``."""
    size = 0
    try:
        while not part.at_eof():
            chunk = await part.read_chunk(READ_SIZE)
            if chunk:
                size += len(chunk)
                sizes.check_partial(size)
                yield chunk
    except _PARSE_ERRORS as e:
        raise _malformed() from e
    sizes.check_final(size)


async def _drain(reader: MultipartReader) -> bool:
    """Read and drop the fields after the file; False when they exceed
    :data:`_DRAIN_LIMIT` or are malformed (the connection is then closed)."""
    seen = 0
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                return False
            while not part.at_eof():
                seen += len(await part.read_chunk(_FIELD_READ))
                if seen > _DRAIN_LIMIT:
                    return False
    except _PARSE_ERRORS:
        return False
    return True


def _object_url(ctx: Ctx, key: str) -> str:
    """The new object's URL, in the addressing style the form was posted with."""
    req = ctx.request
    path_style = req.raw_path.split("?", 1)[0].strip("/") != ""
    base = f"{req.scheme}://{req.host}" + (f"/{quote(ctx.bucket)}" if path_style else "")
    return f"{base}/{quote(key, safe='/~')}"


async def post_object(ctx: Ctx) -> web.StreamResponse:
    if ctx.request.content_type != "multipart/form-data":
        raise S3Error("PreconditionFailed", _ENCLOSURE, extra={"Condition": _ENCLOSURE})
    try:
        reader = MultipartReader(ctx.request.headers, ctx.request.content)
    except (ValueError, AssertionError) as e:
        raise _malformed() from e
    await ctx.body.accept()
    fields, file_part = await read_fields(reader)
    fields = expand_filename(fields, file_part.filename)
    key = fields.get("key", "")
    if not key:
        raise missing_field("key")
    principal, sizes = await _authorize(ctx, fields)
    algorithms, expected = checksum_request(fields)
    req = PutRequest(
        ctx.bucket,
        key,
        _file_source(file_part, sizes),
        _attributes(fields, principal.account_id),
        Integrity(content_md5(fields), algorithms, functools.partial(dict, expected)),
    )
    v = await ctx.service.put_object(principal, req)
    headers = {"ETag": quote_etag(v.etag), "Location": _object_url(ctx, key)}
    if v.version_id != NULL_VERSION:
        headers["x-amz-version-id"] = v.version_id
    for algo, value in v.checksums.items():
        headers["x-amz-checksum-" + algo.lower()] = value
    redirect = redirect_location(fields, ctx.bucket, key, v.etag)
    status = success_status(fields)
    if redirect is not None:
        resp = empty_response(303, {**headers, "Location": redirect})
    elif status == 201:
        body = post_response(headers["Location"], ctx.bucket, key, v.etag)
        resp = web.Response(status=201, body=body, content_type=XML_TYPE, headers=headers)
    else:
        resp = empty_response(status, headers)
    if not await _drain(reader):
        resp.force_close()
    return resp


HANDLERS = {"PostObject": post_object}
