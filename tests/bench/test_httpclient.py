"""The benchmark's lean HTTP client (bench/httpclient.py) against real loopback servers.

The load generator's figures are only worth something if its client reads every
framing correctly and verifies what it reads, so these tests drive it against
an aiohttp server (Content-Length, chunked, HEAD, large uploads) and a raw
asyncio server (body delimited by close, idle close between requests, garbage).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
pytest.importorskip("httptools")

from httpclient import ConnectionClosed, Pool

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


async def _fixed(request: web.Request) -> web.Response:
    return web.Response(body=PAYLOAD, headers={"ETag": '"e"'})


async def _chunked(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for off in range(0, len(PAYLOAD), 100_000):
        await resp.write(PAYLOAD[off : off + 100_000])
    await resp.write_eof()
    return resp


async def _upload(request: web.Request) -> web.Response:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        digest.update(chunk)
        size += len(chunk)
    return web.json_response({"size": size, "sha256": digest.hexdigest()})


async def _missing(request: web.Request) -> web.Response:
    return web.Response(status=404, text="<Error><Code>NoSuchKey</Code></Error>")


@pytest.fixture
async def server() -> AsyncIterator[int]:
    app = web.Application(client_max_size=64 << 20)
    app.router.add_route("*", "/fixed", _fixed)
    app.router.add_get("/chunked", _chunked)
    app.router.add_put("/upload", _upload)
    app.router.add_get("/missing", _missing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port
    finally:
        await runner.cleanup()


async def test_content_length_chunked_and_head(server: int) -> None:
    pool = Pool("127.0.0.1", server, limit=2, timeout=10)
    try:
        r = await pool.request("GET", "/fixed", {"host": "x"})
        assert r.status == 200 and r.body == PAYLOAD and r.headers["etag"] == '"e"'
        r = await pool.request("GET", "/chunked", {"host": "x"})
        assert r.status == 200 and r.body == PAYLOAD
        assert "chunked" in r.headers["transfer-encoding"]
        r = await pool.request("HEAD", "/fixed", {"host": "x"})
        assert r.status == 200 and r.body == b""
        assert r.headers["content-length"] == str(len(PAYLOAD))
        # the connection is reused after a HEAD: the next answer is not confused with it
        r = await pool.request("GET", "/fixed", {"host": "x"})
        assert r.body == PAYLOAD
        assert len(pool.idle) == 1
    finally:
        pool.close()


async def test_streamed_body_goes_to_consumer_and_errors_surface(server: int) -> None:
    pool = Pool("127.0.0.1", server, limit=1, timeout=10)
    got: list[bytes] = []
    try:
        r = await pool.request("GET", "/chunked", {"host": "x"}, on_body=got.append)
        assert r.body == b"" and b"".join(got) == PAYLOAD

        def reject(chunk: bytes) -> None:
            raise ValueError("wrong bytes")

        with pytest.raises(ValueError, match="wrong bytes"):
            await pool.request("GET", "/fixed", {"host": "x"}, on_body=reject)
        # the connection survived the consumer's error and is reused
        r = await pool.request("GET", "/fixed", {"host": "x"})
        assert r.body == PAYLOAD and len(pool.idle) == 1
        # an answer with another status is collected, not fed to the verifier
        r = await pool.request("GET", "/missing", {"host": "x"}, on_body=reject, body_status=200)
        assert r.status == 404 and b"NoSuchKey" in r.body
    finally:
        pool.close()


async def test_large_upload_in_slices(server: int) -> None:
    pool = Pool("127.0.0.1", server, limit=4, timeout=30)
    body = memoryview(PAYLOAD * 20)  # 20 MiB, sent in 1 MiB slices
    try:
        results = await asyncio.gather(
            *(pool.request("PUT", "/upload", {"host": "x"}, body=body) for _ in range(4))
        )
        want = hashlib.sha256(body).hexdigest()
        for r in results:
            assert r.status == 200
            assert r.body == f'{{"size": {len(body)}, "sha256": "{want}"}}'.encode()
    finally:
        pool.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _raw_pool(handler: Handler, timeout: float = 10) -> AsyncIterator[Pool]:
    """A one-connection pool to a raw asyncio server running ``handler``."""
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    pool = Pool("127.0.0.1", srv.sockets[0].getsockname()[1], limit=1, timeout=timeout)
    try:
        yield pool
    finally:
        pool.close()
        srv.close()
        await srv.wait_closed()


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def test_close_delimited_body_and_idle_close_retry() -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await _read_head(reader)
        served += 1
        if served == 1:  # keep-alive answer, then close while the client is idle
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        else:  # HTTP/1.0 style: the body ends when the connection does
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + PAYLOAD)
            await writer.drain()
        writer.close()

    async with _raw_pool(handler) as pool:
        r = await pool.request("GET", "/a", {"host": "x"})
        assert r.body == b"ok"
        await asyncio.sleep(0.05)  # the server has closed the idle connection
        r = await pool.request("GET", "/b", {"host": "x"})
        assert r.body == PAYLOAD and served == 2
        assert pool.idle == []  # a close-delimited connection is not reused


async def test_truncated_and_garbage_responses_fail() -> None:
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
        await writer.drain()
        writer.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    for handler in (truncated, garbage):
        async with _raw_pool(handler) as pool:
            with pytest.raises(ConnectionClosed):
                await pool.request("GET", "/", {"host": "x"})
            assert pool.idle == []


async def test_timeout_bounds_a_silent_server() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        await asyncio.sleep(5)
        writer.close()

    async with _raw_pool(silent, timeout=0.3) as pool:
        with pytest.raises(TimeoutError):
            await pool.request("GET", "/", {"host": "x"})
