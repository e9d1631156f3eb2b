"""RemoteVolume: the :class:`~tessera.data.volume.Volume` contract over HTTP.

A :class:`RemoteVolume` is one disk of a chunk server (``id`` = the disk id),
spoken to with the wire contract of :mod:`tessera.protocol.chunk`. It raises the
same domain errors as :class:`~tessera.data.volume.LocalVolume`:

* BlockNotFound (a missing block), DataCorruption, StorageFull, InvalidArgument
  (bad name, checked locally before any request), ValueError (range start past
  the end), NotSupported (the server's volume lacks the operation);
* :class:`~tessera.model.errors.Unavailable` for everything that says nothing
  about the block itself: connection failures, timeouts, 5xx, an unknown disk,
  a rejected cluster key, a body damaged in transit (both directions carry a
  CRC32C of the body), or an answer that is not from a chunk server. Its message
  names the server and the cause; ``causes`` maps the disk id to the cause.

No call hangs: connecting is bounded by ``connect_timeout``, every wait for the
server by ``read_timeout``, and an upload by ``connect_timeout + read_timeout +
size / MIN_TRANSFER_RATE`` in total. ``put`` is atomic on the server (all or
nothing), and sends the caller's buffer in slices without copying it.

Connections are pooled by a :class:`ClientPool`: one keep-alive aiohttp session
per event loop, shared by every RemoteVolume given the same pool (one per
process, or one per server). A RemoteVolume created without a pool owns a private
one and closes it in :meth:`RemoteVolume.close`; a shared pool or session is
closed by whoever created it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, NoReturn

import aiohttp
import yarl
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

from tessera.common.checksums import Buffer, crc32c_value
from tessera.data.volume import BlockNotFound, Stored, Volume, check_name
from tessera.model import errors as E
from tessera.protocol import chunk as P

SLICE = 256 * 1024
"""Bytes per write when sending a block (bounds transport buffer copies)."""
CRC_INLINE = 1 << 20
"""Buffers larger than this are checksummed in a thread (the CRC releases the GIL)."""
MIN_TRANSFER_RATE = 1 << 20
"""Bytes/second below which an upload is abandoned as stalled (sets its total timeout)."""


async def _crc(data: Buffer) -> int:
    if len(memoryview(data)) > CRC_INLINE:
        return await asyncio.to_thread(crc32c_value, data)
    return crc32c_value(data)


class ClientPool:
    """Lazily one aiohttp session per event loop, with a keep-alive connection pool
    of at most ``limit_per_host`` connections per server. Close it explicitly (from
    the loop that used it) with :meth:`close`."""

    def __init__(self, *, limit_per_host: int = 64) -> None:
        self.limit_per_host = limit_per_host
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def session(self) -> aiohttp.ClientSession:
        """The running loop's session (created on first use)."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            for old in [lp for lp in self._sessions if lp.is_closed()]:
                del self._sessions[old]
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.limit_per_host)
            session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
            self._sessions[loop] = session
        return session

    async def close(self) -> None:
        """Close the running loop's session; forget those of closed loops."""
        loop = asyncio.get_running_loop()
        session = self._sessions.pop(loop, None)
        for old in [lp for lp in self._sessions if lp.is_closed()]:
            del self._sessions[old]
        if session is not None:
            await session.close()


class _BufferPayload(Payload):
    """A request body sent from the caller's buffer in slices, never copied whole."""

    _autoclose = True

    def __init__(self, view: memoryview) -> None:
        super().__init__(view, content_type="application/octet-stream")
        self._size = view.nbytes

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value).decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        view: memoryview = self._value
        if content_length is not None:
            view = view[:content_length]
        for pos in range(0, len(view), SLICE):
            await writer.write(view[pos : pos + SLICE])


class RemoteVolume:
    """One disk of a chunk server at ``base_url`` (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        disk_id: str,
        *,
        session: ClientPool | aiohttp.ClientSession | None = None,
        secret: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 30.0,
    ) -> None:
        url = yarl.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host or url.query_string:
            raise ValueError(f"chunk server URL must be http(s)://host[:port][/path]: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._id = disk_id
        self._owned = session is None
        self._session = ClientPool() if session is None else session
        self._headers = {P.HEADER_CLUSTER_KEY: secret} if secret else {}
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    def __repr__(self) -> str:
        return f"RemoteVolume({self.base_url!r}, {self._id!r})"

    @property
    def id(self) -> str:
        return self._id

    # -- plumbing --------------------------------------------------------------------
    def _timeout(self, upload: int | None) -> aiohttp.ClientTimeout:
        total = None
        if upload is not None:
            total = self.connect_timeout + self.read_timeout + upload / MIN_TRANSFER_RATE
        return aiohttp.ClientTimeout(
            total=total, sock_connect=self.connect_timeout, sock_read=self.read_timeout
        )

    def _unavailable(self, cause: str) -> E.Unavailable:
        return E.Unavailable(
            f"chunk server {self.base_url} (disk {self._id}): {cause}", {self._id: cause}
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: memoryview | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send one request; returns ``(status, headers, body)``; raises Unavailable
        for transport failures and timeouts."""
        session = (
            self._session.session() if isinstance(self._session, ClientPool) else self._session
        )
        upload = None if data is None else data.nbytes
        try:
            async with session.request(
                method,
                self.base_url + path,
                params=params,
                data=None if data is None else _BufferPayload(data),
                headers={**self._headers, **(headers or {})},
                timeout=self._timeout(upload),
                allow_redirects=False,
            ) as resp:
                return resp.status, resp.headers, await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            kind = "timed out" if isinstance(e, TimeoutError) else "failed"
            raise self._unavailable(f"{method} {kind}: {type(e).__name__}: {e}") from e

    def _fail(
        self, status: int, headers: Mapping[str, str], body: bytes, name: str = ""
    ) -> NoReturn:
        """Raise the domain error for an error answer."""
        err = P.parse_error(status, headers.get(P.HEADER_ERROR), body)
        where: dict[str, object] = {"volume": self._id}
        if name:
            where["block"] = name
        code, msg = err.code, err.message
        if code == P.NOT_FOUND and name:
            raise BlockNotFound(msg, **where)
        if code == P.DATA_CORRUPTION:
            raise E.DataCorruption(msg, **where)
        if code == P.STORAGE_FULL:
            raise E.StorageFull(msg, **where)
        if code == P.INVALID_ARGUMENT:
            raise E.InvalidArgument(msg, **where)
        if code == P.INVALID_RANGE:
            raise ValueError(msg)
        if code == P.ENTITY_TOO_LARGE:
            raise E.EntityTooLarge(msg, **where)
        if code == P.NOT_SUPPORTED:
            raise E.NotSupported(msg, **where)
        shown = code or f"unexpected HTTP {status}"
        raise self._unavailable(f"{shown}: {msg}")

    def _doc(self, body: bytes) -> dict[str, Any]:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise self._unavailable(f"malformed answer {body[:100]!r}")
        return doc

    async def _json(self, method: str, path: str, name: str = "", **kw: Any) -> dict[str, Any]:
        status, headers, body = await self._call(method, path, **kw)
        if status != 200:
            self._fail(status, headers, body, name)
        return self._doc(body)

    # -- the Volume protocol ---------------------------------------------------------------
    async def put(self, name: str, data: Buffer) -> Stored:
        check_name(name)
        view = memoryview(data).cast("B")
        crc = await _crc(view)
        doc = await self._json(
            "PUT",
            P.block_path(self._id, name),
            name,
            data=view,
            headers={P.HEADER_CRC32C: str(crc)},
        )
        try:
            stored = Stored(int(doc["crc32c"]), bool(doc["created"]), float(doc["mtime"]))
        except (KeyError, TypeError, ValueError):
            raise self._unavailable(f"malformed PUT answer {doc!r:.100}") from None
        if stored.crc32c != crc:
            raise self._unavailable(f"PUT {name}: server stored CRC32C {stored.crc32c}, not {crc}")
        return stored

    async def get(
        self, name: str, start: int = 0, end: int | None = None, *, crc32c: int | None = None
    ) -> bytes:
        check_name(name)
        if start < 0:
            raise ValueError(f"range start {start} is negative")
        params = {"start": str(start)}
        if end is not None:
            params["end"] = str(max(end, 0))
        if crc32c is not None:
            params["crc32c"] = str(crc32c)
        status, headers, body = await self._call("GET", P.block_path(self._id, name), params=params)
        if status != 200:
            self._fail(status, headers, body, name)
        sent = headers.get(P.HEADER_CRC32C)
        if sent is None or not sent.isdigit() or int(sent) != await _crc(body):
            raise self._unavailable(f"GET {name}: body damaged in transit")
        return body

    async def delete(self, name: str, older_than: float | None = None) -> bool:
        check_name(name)
        params = {} if older_than is None else {"older_than": repr(float(older_than))}
        doc = await self._json("DELETE", P.block_path(self._id, name), name, params=params)
        return bool(doc.get("deleted"))

    async def stat(self, name: str) -> tuple[int, float] | None:
        check_name(name)
        status, headers, body = await self._call("HEAD", P.block_path(self._id, name))
        if status == 404 and headers.get(P.HEADER_ERROR) == P.NOT_FOUND:
            return None
        if status != 200:
            self._fail(status, headers, body, name)
        try:
            return int(headers[P.HEADER_LENGTH]), float(headers[P.HEADER_MTIME])
        except (KeyError, ValueError):
            raise self._unavailable(f"HEAD {name}: malformed answer") from None

    async def stat_many(self, names: Sequence[str]) -> dict[str, tuple[int, float] | None]:
        """:meth:`stat` of each name, in requests of at most ``MAX_STAT_NAMES``."""
        for n in names:
            check_name(n)
        out: dict[str, tuple[int, float] | None] = {}
        for i in range(0, len(names), P.MAX_STAT_NAMES):
            chunk = list(names[i : i + P.MAX_STAT_NAMES])
            body = json.dumps({"names": chunk}).encode()
            doc = await self._json("POST", P.stat_path(self._id), data=memoryview(body))
            blocks = doc.get("blocks")
            if not isinstance(blocks, dict):
                raise self._unavailable("malformed stat answer")
            for n in chunk:
                st = blocks.get(n)
                try:
                    out[n] = None if st is None else (int(st[0]), float(st[1]))
                except (TypeError, ValueError, IndexError):
                    raise self._unavailable(f"malformed stat of {n}") from None
        return out

    async def verify(self, name: str) -> bool | None:
        """Re-read and check the whole block: True good, False corrupt (quarantined
        by the server), None missing."""
        check_name(name)
        doc = await self._json("POST", P.verify_path(self._id, name), name)
        word = doc.get("result")
        if word not in P.VERIFY_RESULTS:
            raise self._unavailable(f"verify {name}: unknown result {word!r:.40}")
        return P.VERIFY_RESULTS[word]

    async def undelete(self, name: str) -> bool:
        """Bring the block back from trash; True if it was there."""
        check_name(name)
        doc = await self._json("POST", P.undelete_path(self._id, name), name)
        return bool(doc.get("restored"))

    async def empty_trash(self, now: float | None = None) -> int:
        """Remove trashed blocks whose deadline is at or before ``now`` (default: the
        server's clock); returns how many."""
        params = {} if now is None else {"now": repr(float(now))}
        doc = await self._json("POST", P.trash_empty_path(self._id), params=params)
        return int(doc.get("removed", 0))

    async def trash_stats(self) -> tuple[int, int]:
        """``(count, bytes on disk)`` of the blocks in the trash."""
        doc = await self._json("GET", P.trash_path(self._id))
        return int(doc.get("count", 0)), int(doc.get("bytes", 0))

    async def quarantined(self) -> list[str]:
        """Names of the quarantined blocks, sorted."""
        doc = await self._json("GET", P.quarantine_path(self._id))
        names = doc.get("blocks")
        if not isinstance(names, list):
            raise self._unavailable("malformed quarantine listing")
        return [str(n) for n in names]

    async def blocks(
        self, prefix: str = "", *, page: int = P.DEFAULT_LIST_LIMIT
    ) -> AsyncIterator[str]:
        after: str | None = None
        while True:
            doc = await self._json(
                "GET", P.blocks_path(self._id), params=P.list_query(prefix, after, page)
            )
            names, after = doc.get("blocks"), doc.get("next")
            if not isinstance(names, list) or not (after is None or isinstance(after, str)):
                raise self._unavailable("malformed listing page")
            for name in names:
                yield str(name)
            if after is None:
                return

    async def server_status(self) -> dict[str, Any]:
        """The server's ``/v1/status`` document."""
        return await self._json("GET", P.STATUS_PATH)

    async def capacity(self) -> tuple[int, int]:
        doc = await self.server_status()
        for disk in doc.get("disks") or ():
            if isinstance(disk, dict) and disk.get("id") == self._id:
                if not disk.get("ok"):
                    raise self._unavailable(f"disk is not ok: {disk.get('error')}")
                return int(disk["total"]), int(disk["free"])
        raise self._unavailable("the server does not list this disk")

    async def close(self) -> None:
        """Close the private connection pool (a shared pool or session is left open)."""
        if self._owned and isinstance(self._session, ClientPool):
            await self._session.close()


def _conforms(volume: RemoteVolume) -> Volume:
    return volume  # mypy checks that RemoteVolume implements the Volume protocol
