"""The chunk server's aiohttp application: local volumes behind the block API.

:func:`make_chunk_app` serves a set of :class:`~tessera.data.volume.Volume` objects
(one per disk, addressed by ``Volume.id``) with the contract of
:mod:`tessera.protocol.chunk`. Contracts:

* PUT stores nothing unless the whole body arrived (exactly Content-Length bytes)
  and matches ``X-Tessera-Crc32c`` when sent; the volume's ``put`` then makes the
  block visible atomically and durably before the 200.
* Block names are checked with :func:`~tessera.data.volume.check_name` before any
  I/O (a bad name is a 400 ``InvalidArgument``; it never reaches a path).
* GET answers only bytes the volume verified, streamed in slices (no copy of the
  block beyond the one ``Volume.get`` returns), with their CRC32C in a header.
* Domain errors map to wire codes in :func:`_code_of`; anything unexpected is a
  500 ``InternalError`` (logged), which clients treat as "unavailable".
* With a ``secret``, every request must carry it in ``X-Tessera-Cluster-Key``.

Volumes are owned by the caller: the app never closes them.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from tessera._version import __version__
from tessera.common.checksums import Buffer, crc32c_value
from tessera.data.volume import Volume, check_name
from tessera.model import errors as E
from tessera.protocol import chunk as P

log = logging.getLogger(__name__)

SLICE = 256 * 1024
"""Bytes per write when streaming a block out (bounds transport buffer copies)."""
CRC_INLINE = 1 << 20
"""Buffers larger than this are checksummed in a thread (the CRC releases the GIL)."""
_PREFIX_RE = re.compile(r"[0-9a-z._-]{0,160}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Fail(Exception):
    """An error answer with an explicit wire code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _code_of(exc: BaseException) -> str | None:
    """Wire code of a domain error (None: not a domain error)."""
    table: list[tuple[type[BaseException], str]] = [
        (P.BadParameter, P.INVALID_ARGUMENT),
        (E.NotFound, P.NOT_FOUND),
        (E.DataCorruption, P.DATA_CORRUPTION),
        (E.StorageFull, P.STORAGE_FULL),
        (E.BadDigest, P.BAD_DIGEST),
        (E.IncompleteBody, P.INCOMPLETE_BODY),
        (E.EntityTooLarge, P.ENTITY_TOO_LARGE),
        (E.InvalidRequest, P.INVALID_ARGUMENT),
        (E.NotSupported, P.NOT_SUPPORTED),
    ]
    for cls, code in table:
        if isinstance(exc, cls):
            return code
    return None


async def crc_of(data: Buffer) -> int:
    """CRC32C of ``data``, off the event loop when it is large."""
    if len(memoryview(data)) > CRC_INLINE:
        return await asyncio.to_thread(crc32c_value, data)
    return crc32c_value(data)


def _error(request: web.Request, code: str, message: str) -> web.Response:
    body = None if request.method == "HEAD" else P.error_body(code, message)
    return web.Response(
        status=P.status_of(code),
        body=body,
        content_type="application/json",
        headers={P.HEADER_ERROR: code},
    )


def _json(doc: dict[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(doc).encode(), content_type="application/json")


class _Cursors:
    """Open listing iterators, keyed by where their next page starts.

    A paged listing resumes the iterator that produced the previous page instead of
    re-scanning the volume from the start, so listing a whole disk stays linear.
    Entries expire after ``ttl`` seconds; at most ``size`` are kept.
    """

    def __init__(self, size: int = 32, ttl: float = 120.0) -> None:
        self._open: OrderedDict[tuple[str, str, str], tuple[AsyncIterator[str], str, float]]
        self._open = OrderedDict()
        self._size = size
        self._ttl = ttl
        self._closing: set[asyncio.Future[None]] = set()

    def take(self, key: tuple[str, str, str]) -> tuple[AsyncIterator[str], str] | None:
        entry = self._open.pop(key, None)
        if entry is None:
            return None
        if entry[2] < time.monotonic():
            self._stale(entry[0])
            return None
        return entry[0], entry[1]

    def _stale(self, it: AsyncIterator[str]) -> None:
        task = asyncio.ensure_future(_aclose(it))
        self._closing.add(task)  # held until done (the loop keeps only weak references)
        task.add_done_callback(self._closed)

    def _closed(self, task: asyncio.Future[None]) -> None:
        self._closing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("closing a listing failed: %r", task.exception())

    def put(self, key: tuple[str, str, str], it: AsyncIterator[str], pending: str) -> None:
        replaced = self._open.pop(key, None)
        if replaced is not None:  # two listings at the same point: keep the newer
            self._stale(replaced[0])
        self._open[key] = (it, pending, time.monotonic() + self._ttl)
        while len(self._open) > self._size:
            _, (old, _, _) = self._open.popitem(last=False)
            self._stale(old)

    async def close(self) -> None:
        while self._open:
            _, (it, _, _) = self._open.popitem()
            await _aclose(it)
        await asyncio.gather(*self._closing, return_exceptions=True)


async def _aclose(it: AsyncIterator[str]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()


class ChunkServer:
    """The request handlers over a set of volumes (see the module docstring)."""

    def __init__(
        self,
        volumes: Sequence[Volume],
        *,
        server_id: str,
        zone: str,
        secret: str | None = None,
        max_block_size: int = P.MAX_BLOCK_SIZE,
    ) -> None:
        self.volumes: dict[str, Volume] = {}
        for vol in volumes:
            if vol.id in self.volumes:
                raise ValueError(f"two volumes with id {vol.id!r}")
            self.volumes[vol.id] = vol
        self.server_id = server_id
        self.zone = zone
        self._secret = secret.encode() if secret else None
        self.max_block_size = max_block_size
        self._cursors = _Cursors()

    # -- plumbing ------------------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if self._secret is not None:
                given = request.headers.get(P.HEADER_CLUSTER_KEY, "").encode()
                if not hmac.compare_digest(given, self._secret):
                    return _error(request, P.ACCESS_DENIED, "missing or wrong cluster key")
            return await handler(request)
        except _Fail as e:
            return _error(request, e.code, e.message)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return _error(request, P.code_for_status(e.status), e.reason)
        except (E.TesseraError, P.BadParameter) as e:
            code = _code_of(e)
            if code is None:
                log.exception("unmapped error on %s %s", request.method, request.path)
                code = P.INTERNAL_ERROR
            return _error(request, code, getattr(e, "message", None) or str(e))
        except Exception as e:
            log.exception("internal error on %s %s", request.method, request.path)
            return _error(request, P.INTERNAL_ERROR, f"{type(e).__name__}: {e}")

    def _volume(self, request: web.Request) -> Volume:
        disk = request.match_info["disk"]
        vol = self.volumes.get(disk)
        if vol is None:
            raise _Fail(P.UNKNOWN_DISK, f"server {self.server_id} has no disk {disk!r}")
        return vol

    def _block(self, request: web.Request) -> tuple[Volume, str]:
        vol = self._volume(request)
        return vol, check_name(request.match_info["name"])

    # -- blocks --------------------------------------------------------------------
    async def put_block(self, request: web.Request) -> web.StreamResponse:
        vol, name = self._block(request)
        length = request.content_length
        if length is None or "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            raise _Fail(P.LENGTH_REQUIRED, "PUT needs a Content-Length")
        if length > self.max_block_size:
            raise E.EntityTooLarge(f"block of {length} bytes exceeds {self.max_block_size}")
        expected = P.parse_int(request.headers.get(P.HEADER_CRC32C), P.HEADER_CRC32C)
        data = await self._read_body(request, length)
        if expected is not None and await crc_of(data) != expected:
            raise E.BadDigest(f"body does not match {P.HEADER_CRC32C} {expected}")
        stored = await vol.put(name, data)
        return _json({"crc32c": stored.crc32c, "created": stored.created, "mtime": stored.mtime})

    @staticmethod
    async def _read_body(request: web.Request, length: int) -> bytearray:
        """Exactly ``length`` body bytes, or IncompleteBody. The buffer grows as data
        arrives (a Content-Length alone reserves no memory)."""
        buf = bytearray()
        try:
            while len(buf) < length:
                part = await request.content.readany()
                if not part:
                    break
                buf += part
        except Exception as e:  # connection lost, malformed framing...
            raise E.IncompleteBody(f"body ended after {len(buf)} of {length} bytes: {e!r}") from e
        if len(buf) != length:
            raise E.IncompleteBody(f"body has {len(buf)} bytes, not {length}")
        return buf

    async def get_block(self, request: web.Request) -> web.StreamResponse:
        vol, name = self._block(request)
        q = request.query
        start = P.parse_int(q.get("start"), "start", default=0) or 0
        end = P.parse_int(q.get("end"), "end")
        expected = P.parse_int(q.get("crc32c"), "crc32c")
        try:
            data = await vol.get(name, start, end, crc32c=expected)
        except ValueError as e:
            raise _Fail(P.INVALID_RANGE, str(e)) from None
        resp = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                P.HEADER_CRC32C: str(await crc_of(data)),
            }
        )
        resp.content_length = len(data)
        await resp.prepare(request)
        view = memoryview(data)
        for pos in range(0, len(view), SLICE):
            await resp.write(view[pos : pos + SLICE])
        await resp.write_eof()
        return resp

    async def head_block(self, request: web.Request) -> web.StreamResponse:
        vol, name = self._block(request)
        st = await vol.stat(name)
        if st is None:
            raise _Fail(P.NOT_FOUND, f"block {name} not found on {vol.id}")
        length, mtime = st
        return web.Response(headers={P.HEADER_LENGTH: str(length), P.HEADER_MTIME: repr(mtime)})

    async def delete_block(self, request: web.Request) -> web.StreamResponse:
        vol, name = self._block(request)
        older_than = P.parse_float(request.query.get("older_than"), "older_than")
        return _json({"deleted": bool(await vol.delete(name, older_than))})

    async def verify_block(self, request: web.Request) -> web.StreamResponse:
        vol, name = self._block(request)
        return _json({"result": P.verify_word(await vol.verify(name))})

    async def undelete_block(self, request: web.Request) -> web.StreamResponse:
        vol, name = self._block(request)
        return _json({"restored": bool(await vol.undelete(name))})

    async def empty_trash(self, request: web.Request) -> web.StreamResponse:
        vol = self._volume(request)
        now = P.parse_float(request.query.get("now"), "now")
        return _json({"removed": int(await vol.empty_trash(now))})

    async def trash_stats(self, request: web.Request) -> web.StreamResponse:
        count, size = await self._volume(request).trash_stats()
        return _json({"count": count, "bytes": size})

    async def stat_blocks(self, request: web.Request) -> web.StreamResponse:
        vol = self._volume(request)
        try:
            doc = json.loads(await request.read())
        except ValueError:
            raise P.BadParameter("the body is not JSON") from None
        names = doc.get("names") if isinstance(doc, dict) else None
        if (
            not isinstance(names, list)
            or len(names) > P.MAX_STAT_NAMES
            or not all(isinstance(n, str) for n in names)
        ):
            raise P.BadParameter(f"expected {{'names': [at most {P.MAX_STAT_NAMES} names]}}")
        found = await vol.stat_many(names)
        return _json({"blocks": {n: (list(st) if st else None) for n, st in found.items()}})

    async def quarantined(self, request: web.Request) -> web.StreamResponse:
        return _json({"blocks": await self._volume(request).quarantined()})

    # -- listing and status ----------------------------------------------------------
    async def list_blocks(self, request: web.Request) -> web.StreamResponse:
        vol = self._volume(request)
        q = request.query
        prefix = q.get("prefix", "")
        after = q.get("after") or None
        if _PREFIX_RE.fullmatch(prefix) is None or (after and len(after) > 400):
            raise P.BadParameter("invalid prefix or after")
        limit = P.parse_int(q.get("limit"), "limit", default=P.DEFAULT_LIST_LIMIT, minimum=1)
        limit = min(limit or P.DEFAULT_LIST_LIMIT, P.MAX_LIST_LIMIT)
        resumed = self._cursors.take((vol.id, prefix, after)) if after else None
        it, names = (resumed[0], [resumed[1]]) if resumed else (vol.blocks(prefix), [])
        while len(names) <= limit:
            try:
                name = await anext(it)
            except StopAsyncIteration:
                break
            if after is None or name > after:
                names.append(name)
        if len(names) > limit:
            self._cursors.put((vol.id, prefix, names[limit - 1]), it, names[limit])
            return _json({"blocks": names[:limit], "next": names[limit - 1]})
        await _aclose(it)
        return _json({"blocks": names, "next": None})

    async def status(self, request: web.Request) -> web.StreamResponse:
        async def one(vol: Volume) -> dict[str, Any]:
            try:
                total, free = await vol.capacity()
            except Exception as e:
                return P.status_disk(vol.id, 0, 0, f"{type(e).__name__}: {e}")
            return P.status_disk(vol.id, total, free)

        disks = await asyncio.gather(*(one(v) for v in self.volumes.values()))
        return _json(
            {
                "server": self.server_id,
                "zone": self.zone,
                "version": __version__,
                "disks": list(disks),
            }
        )

    async def close(self, app: web.Application | None = None) -> None:
        await self._cursors.close()


def make_chunk_app(
    volumes: Sequence[Volume],
    *,
    server_id: str,
    zone: str,
    secret: str | None = None,
    max_block_size: int = P.MAX_BLOCK_SIZE,
) -> web.Application:
    """The chunk server application over ``volumes`` (ids must be distinct)."""
    server = ChunkServer(
        volumes, server_id=server_id, zone=zone, secret=secret, max_block_size=max_block_size
    )
    app = web.Application(middlewares=[server.middleware], client_max_size=max_block_size)
    app.router.add_put(P.ROUTE_BLOCK, server.put_block)
    app.router.add_get(P.ROUTE_BLOCK, server.get_block, allow_head=False)
    app.router.add_head(P.ROUTE_BLOCK, server.head_block)
    app.router.add_delete(P.ROUTE_BLOCK, server.delete_block)
    app.router.add_post(P.ROUTE_VERIFY, server.verify_block)
    app.router.add_post(P.ROUTE_UNDELETE, server.undelete_block)
    app.router.add_post(P.ROUTE_TRASH_EMPTY, server.empty_trash)
    app.router.add_get(P.ROUTE_TRASH, server.trash_stats)
    app.router.add_get(P.ROUTE_QUARANTINE, server.quarantined)
    app.router.add_post(P.ROUTE_STAT, server.stat_blocks)
    app.router.add_get(P.ROUTE_BLOCKS, server.list_blocks)
    app.router.add_get(P.STATUS_PATH, server.status)
    app.on_cleanup.append(server.close)
    return app
