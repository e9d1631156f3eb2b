"""The content-addressed block API (Keep style) under ``/_tessera/v1/blocks/``.

* ``GET blocks/services`` -> ``{"services": [{"id", "server", "zone", "read_only"}]}``:
  every volume of the store, for the client's rendezvous probe order.
* ``PUT blocks/{service}/{hash}`` (binary body, at most 64 MiB) -> ``{"locator":
  "<md5>+<size>+A<sig>@<expiry>"}``: the server recomputes the MD5 (400 BadDigest
  on a mismatch) and stores the block atomically on that one volume.
* ``GET blocks/{service}/{locator}`` -> the raw bytes; ``HEAD`` -> 200 with
  ``Content-Length`` and ``X-Tessera-Locator`` (a freshly signed locator). Both
  need a locator signed for the caller: unsigned or expired 401, bad 400, missing 404.
* ``DELETE blocks/{service}/{hash}`` -> ``{"deleted": bool}``; root only.

The operations live in :class:`tessera.core.blocks.BlockStore`, which the server
puts in the application under :data:`BLOCKS_KEY`; without it every route answers
501 NotImplemented.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from tessera.core.blocks import BlockStore
from tessera.gateway.extension import ExtRequest, Route
from tessera.model.errors import EntityTooLarge
from tessera.protocol.blocks import MAX_BLOCK_SIZE
from tessera.protocol.s3.errors import S3Error

BLOCKS_KEY: web.AppKey[BlockStore] = web.AppKey("blocks", BlockStore)
LOCATOR_HEADER = "X-Tessera-Locator"
TAG = "blocks"


def _store(req: ExtRequest) -> BlockStore:
    store = req.app.get(BLOCKS_KEY)
    if store is None:
        raise S3Error("NotImplemented", "the block API is not available here", status=501)
    return store


async def _services(req: ExtRequest) -> Any:
    services = _store(req).services_for(req.principal.account_id)
    return {"services": [asdict(s) for s in services]}


async def _put(req: ExtRequest) -> Any:
    store = _store(req)
    declared = req.body.declared_size
    if declared is not None and declared > MAX_BLOCK_SIZE:
        raise EntityTooLarge(f"blocks are at most {MAX_BLOCK_SIZE} bytes")
    try:
        data = await req.body.read_document(MAX_BLOCK_SIZE)
    except S3Error as e:
        if e.code != "MaxMessageLengthExceeded":
            raise
        raise EntityTooLarge(f"blocks are at most {MAX_BLOCK_SIZE} bytes") from None
    locator = await store.put(
        req.principal.account_id, req.params["service"], req.params["hash"], data
    )
    return {"locator": locator}


async def _get(req: ExtRequest) -> web.StreamResponse:
    p = req.params
    data = await _store(req).get(req.principal.account_id, p["service"], p["hash"])
    return web.Response(body=data, content_type="application/octet-stream")


async def _head(req: ExtRequest) -> web.StreamResponse:
    p = req.params
    size, fresh = await _store(req).head(req.principal.account_id, p["service"], p["hash"])
    resp = web.StreamResponse(status=200, headers={LOCATOR_HEADER: fresh})
    resp.content_type = "application/octet-stream"
    resp.content_length = size
    await resp.prepare(req.request)
    await resp.write_eof()
    return resp


async def _delete(req: ExtRequest) -> Any:
    p = req.params
    deleted = await _store(req).delete(req.principal.account_id, p["service"], p["hash"])
    return {"deleted": deleted}


# ``{hash}`` is a bare MD5 for PUT and DELETE, a (signed) locator for GET and HEAD.
ROUTES: list[Route] = [
    Route("GET", "blocks/services", _services, "The block services (volumes)", TAG),
    Route("PUT", "blocks/{service}/{hash}", _put, "Store a block", TAG, body="binary"),
    Route(
        "GET",
        "blocks/{service}/{hash}",
        _get,
        "Read a block (signed locator)",
        TAG,
        responds="binary",
    ),
    Route("HEAD", "blocks/{service}/{hash}", _head, "Check a block, re-sign its locator", TAG),
    Route("DELETE", "blocks/{service}/{hash}", _delete, "Delete a block (root)", TAG),
]
