"""Get/Put Bucket and Object ACL: canned ACLs (see ``core.access``)."""

from __future__ import annotations

from aiohttp import web

from tessera.gateway.context import Ctx, empty_response, xml_response
from tessera.model.errors import TesseraError
from tessera.protocol.s3.acl import canned_from_request, policy_document


async def _owner_name(ctx: Ctx, account_id: str) -> str:
    if not account_id:
        return "anonymous"
    try:
        return (await ctx.service.get_account(account_id)).display_name or account_id
    except TesseraError:  # an account deleted since: show its id
        return account_id


async def get_bucket_acl(ctx: Ctx) -> web.StreamResponse:
    acl = await ctx.service.get_bucket_acl(ctx.principal, ctx.bucket)
    b = await ctx.service.head_bucket(ctx.principal, ctx.bucket)
    name = await _owner_name(ctx, b.owner)
    return xml_response("AccessControlPolicy", policy_document(b.owner, name, acl))


async def put_bucket_acl(ctx: Ctx) -> web.StreamResponse:
    doc = await ctx.body.read_document()
    b = await ctx.service.head_bucket(ctx.principal, ctx.bucket)
    acl = canned_from_request(ctx.headers, doc, b.owner)
    await ctx.service.put_bucket_acl(ctx.principal, ctx.bucket, acl)
    return empty_response()


async def get_object_acl(ctx: Ctx) -> web.StreamResponse:
    vid = ctx.query.get("versionId")
    v = await ctx.service.get_object_acl(ctx.principal, ctx.bucket, ctx.key, vid)
    owner = v.owner or ctx.principal.account_id
    name = await _owner_name(ctx, owner)
    headers = {"x-amz-version-id": v.version_id} if vid else None
    return xml_response("AccessControlPolicy", policy_document(owner, name, v.acl), headers=headers)


async def put_object_acl(ctx: Ctx) -> web.StreamResponse:
    doc = await ctx.body.read_document()
    vid = ctx.query.get("versionId")
    v = await ctx.service.get_object_acl(ctx.principal, ctx.bucket, ctx.key, vid)
    acl = canned_from_request(ctx.headers, doc, v.owner or ctx.principal.account_id)
    await ctx.service.put_object_acl(ctx.principal, ctx.bucket, ctx.key, acl, vid)
    return empty_response()


HANDLERS = {
    "GetBucketAcl": get_bucket_acl,
    "PutBucketAcl": put_bucket_acl,
    "GetObjectAcl": get_object_acl,
    "PutObjectAcl": put_object_acl,
}
