"""A lean HTTP/1.1 client for the load generator: asyncio protocols and httptools.

The benchmark's client shares two cores with the server it measures, so every
microsecond it spends per request is taken from the server. aiohttp's client
cost ~150 us of CPU per small request here; this one is a keep-alive connection
pool whose protocol hands response bytes to httptools (llhttp, C) and passes
body chunks straight to a callback, so a verifying reader compares bytes as
they arrive and nothing is buffered. Contracts:

- ``Pool.request`` returns a ``Response`` once the whole message has been read
  (its body is in ``body`` unless ``on_body`` consumed it; an answer with another
  status than ``body_status`` is always collected, so an error document is not
  fed to a verifier). An exception raised by ``on_body`` is re-raised from
  ``request`` after the message ends, and the connection stays usable.
- A response to HEAD ends at its headers; bodies with Content-Length, chunked
  bodies and bodies delimited by the server closing the connection are read.
- Request bodies (bytes or memoryview) are written in 1 MiB slices with write
  flow control, so the transport never copies a whole large body.
- A reused connection that the server closed while idle is retried once on a
  new connection (the request had not been answered); any other failure closes
  that connection and propagates. Every request is bounded by ``timeout``.

Only what the benchmark needs: no TLS, no redirects, no proxies, no cookies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import httptools

CHUNK = 1 << 20


class ConnectionClosed(ConnectionError):
    """The server closed the connection before the response was complete."""


@dataclass
class Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""


class _Exchange:
    """One request's response being parsed: httptools calls these methods."""

    __slots__ = (
        "body_status", "chunks", "consumer", "done", "error", "head", "keep_alive", "parser",
        "response", "started",
    )  # fmt: skip

    def __init__(
        self, head: bool, on_body: Callable[[bytes], None] | None, body_status: int | None
    ) -> None:
        self.head, self.consumer, self.body_status = head, on_body, body_status
        self.response = Response()
        self.chunks: list[bytes] = []
        self.error: BaseException | None = None
        self.done = asyncio.get_running_loop().create_future()
        self.started = False
        self.keep_alive = True
        self.parser = httptools.HttpResponseParser(self)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.started = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self.response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.response.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if self.body_status is not None and self.response.status != self.body_status:
            self.consumer = None  # an error document: collected, not checked
        if self.head:
            self.finish()

    def on_body(self, data: bytes) -> None:
        if self.error is not None:
            return
        if self.consumer is None:
            self.chunks.append(data)
            return
        try:
            self.consumer(data)
        except Exception as e:  # reported after the message ends
            self.error = e

    def on_message_complete(self) -> None:
        self.finish()

    def finish(self) -> None:
        if self.done.done():
            return
        if self.chunks:
            self.response.body = b"".join(self.chunks)
        self.done.set_result(self.response)

    def closed(self, exc: BaseException | None) -> None:
        if self.done.done():
            return
        h = self.response.headers
        if (
            self.started
            and self.response.status
            and "content-length" not in h
            and ("chunked" not in h.get("transfer-encoding", ""))
        ):
            self.keep_alive = False
            self.finish()  # body delimited by the end of the connection
            return
        self.done.set_exception(ConnectionClosed(f"connection closed mid-response: {exc}"))


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.closed = False
        self.used = False
        self.writable = asyncio.Event()
        self.writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.set_write_buffer_limits(high=4 * CHUNK)

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None or ex.done.done():
            return  # bytes after a HEAD answer or an unsolicited close notice
        try:
            ex.parser.feed_data(data)
        except httptools.HttpParserError as e:
            if not ex.done.done():
                ex.done.set_exception(ConnectionClosed(f"bad HTTP response: {e}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.writable.set()
        if self.exchange is not None:
            self.exchange.closed(exc)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def send(
        self, head: bytes, body: bytes | memoryview | None, exchange: _Exchange
    ) -> Response:
        assert self.transport is not None
        self.exchange, self.used = exchange, True
        self.transport.write(head)
        if body is not None:
            view = memoryview(body)
            for off in range(0, len(view), CHUNK):
                if self.closed:
                    break
                await self.writable.wait()
                self.transport.write(view[off : off + CHUNK])
        response = await exchange.done
        if not exchange.keep_alive:
            self.abort()
        return response


class Pool:
    """Keep-alive connections to one ``host:port``, at most ``limit`` of them."""

    def __init__(self, host: str, port: int, limit: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.netloc = f"{host}:{port}"
        self.idle: list[_Conn] = []
        self.slots = asyncio.Semaphore(limit)

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, self.host, self.port)
        return conn

    async def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | memoryview | None = None,
        on_body: Callable[[bytes], None] | None = None,
        body_status: int | None = None,
    ) -> Response:
        """Send one request (``target`` already percent-encoded) and read its response.
        ``on_body`` gets the body's chunks (only when the status is ``body_status``,
        if that is given; otherwise the body is collected in ``Response.body``)."""
        lines = [f"{method} {target} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None and not any(k.lower() == "content-length" for k in headers):
            lines.append(f"content-length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        async with self.slots:
            async with asyncio.timeout(self.timeout):
                for attempt in range(2):
                    while self.idle and self.idle[-1].closed:
                        self.idle.pop()
                    conn = self.idle.pop() if self.idle else await self._connect()
                    reused = conn.used
                    exchange = _Exchange(method == "HEAD", on_body, body_status)
                    try:
                        response = await conn.send(head, body, exchange)
                    except ConnectionClosed:
                        conn.abort()
                        if reused and not exchange.started and attempt == 0:
                            continue  # closed while idle: once more on a new connection
                        raise
                    except BaseException:
                        conn.abort()
                        raise
                    if not conn.closed:
                        self.idle.append(conn)
                    if exchange.error is not None:
                        raise exchange.error
                    return response
        raise AssertionError("unreachable")

    def close(self) -> None:
        for conn in self.idle:
            conn.abort()
        self.idle.clear()
