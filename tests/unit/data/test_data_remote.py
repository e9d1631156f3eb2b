"""RemoteVolume against a real chunk server app over loopback HTTP (LocalVolumes in tmp)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yarl
from aiohttp import web
from data_helpers import block_files

from tessera.chunkserver import make_chunk_app
from tessera.common.checksums import crc32c_value
from tessera.data.remote import ClientPool, RemoteVolume
from tessera.data.volume import MTIME_STEP, BlockNotFound, LocalVolume
from tessera.model.errors import (
    DataCorruption,
    EntityTooLarge,
    InvalidArgument,
    Unavailable,
)
from tessera.protocol import chunk as P

SECRET = "s3cr3t"
NAME = "abc123" + "0" * 58
HEADERS = {P.HEADER_CLUSTER_KEY: SECRET}


@dataclass
class Server:
    url: str
    vols: list[LocalVolume]
    pool: ClientPool
    runner: web.AppRunner

    def remote(self, disk: str = "d0", **kw: object) -> RemoteVolume:
        kw.setdefault("secret", SECRET)
        return RemoteVolume(self.url, disk, session=self.pool, **kw)  # type: ignore[arg-type]


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    vols = [LocalVolume(tmp_path / f"d{i}", f"d{i}") for i in range(2)]
    runner, url = await start(make_chunk_app(vols, server_id="cs1", zone="z1", secret=SECRET))
    pool = ClientPool()
    yield Server(url, vols, pool, runner)
    await pool.close()
    await runner.cleanup()
    for vol in vols:
        await vol.close()


async def raw(
    server: Server, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: object
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(
            method,
            yarl.URL(server.url + path, encoded=True),
            headers=HEADERS if headers is None else headers,
            **kw,  # type: ignore[arg-type]
        ) as r,
    ):
        return r.status, dict(r.headers), await r.read()


async def test_put_get_stat_delete(server: Server) -> None:
    vol = server.remote()
    data = os.urandom(700_000)
    stored = await vol.put(NAME, data)
    assert stored.crc32c == crc32c_value(data) and stored.created
    assert block_files(server.vols[0].root) == [NAME]
    assert await vol.get(NAME) == data
    assert await vol.get(NAME, 70_000, 140_001) == data[70_000:140_001]
    assert await vol.get(NAME, 5, crc32c=stored.crc32c) == data[5:]
    assert await vol.get(NAME, 10, 5) == b""
    with pytest.raises(DataCorruption):
        await vol.get(NAME, crc32c=stored.crc32c ^ 1)
    with pytest.raises(ValueError):
        await vol.get(NAME, len(data) + 1)
    size, mtime = await vol.stat(NAME) or (0, 0.0)
    assert size == len(data) and mtime == pytest.approx(stored.mtime, abs=1e-6)
    again = await vol.put(NAME, memoryview(data))
    assert not again.created and again.mtime > stored.mtime
    assert await vol.delete(NAME) is True
    assert await vol.delete(NAME) is False
    assert await vol.stat(NAME) is None
    with pytest.raises(BlockNotFound) as info:
        await vol.get(NAME)
    assert info.value.details["volume"] == "d0"


async def test_buffers_and_empty_block(server: Server) -> None:
    vol = server.remote("d1")
    buf = bytearray(os.urandom(3_000_000))
    await vol.put("aaa1", memoryview(buf)[100:2_900_000])
    assert await vol.get("aaa1") == bytes(buf[100:2_900_000])
    await vol.put("aaa2", buf)
    assert await vol.get("aaa2") == bytes(buf)
    await vol.put("aaa3", b"")
    assert await vol.get("aaa3") == b""
    assert (await vol.stat("aaa3") or (-1, 0.0))[0] == 0
    assert block_files(server.vols[0].root) == []  # the other disk


async def test_delete_older_than(server: Server) -> None:
    vol = server.remote()
    stored = await vol.put(NAME, b"x" * 100)
    assert await vol.delete(NAME, older_than=stored.mtime) is False
    assert await vol.delete(NAME, older_than=stored.mtime - 10) is False
    assert await vol.delete(NAME, older_than=stored.mtime + MTIME_STEP / 2e9) is True
    assert await vol.stat(NAME) is None


async def test_listing_pages(server: Server) -> None:
    vol = server.remote()
    names = sorted(f"{i:03x}{j:x}" for i in (0xAB0, 0xAB1, 0xFFF) for j in range(9))
    await asyncio.gather(*(vol.put(n, n.encode()) for n in names))
    assert [n async for n in vol.blocks(page=4)] == names

    async def interleaved(it: AsyncIterator[str]) -> list[str]:
        out = []
        async for n in it:
            out.append(n)
            await asyncio.sleep(0)
        return out

    twins = await asyncio.gather(*(interleaved(vol.blocks(page=1 + i % 4)) for i in range(40)))
    assert twins == [names] * 40
    assert [n async for n in vol.blocks("ab1", page=2)] == [n for n in names if n[:3] == "ab1"]
    assert [n async for n in vol.blocks("ab14")] == ["ab14"]
    assert [n async for n in vol.blocks("cc")] == []
    # a page asked for without a live cursor (e.g. after a restart) rescans and skips
    status, _, body = await raw(server, "GET", P.blocks_path("d0") + "?after=ab15&limit=3")
    assert status == 200
    page = json.loads(body)
    assert page == {"blocks": ["ab16", "ab17", "ab18"], "next": "ab18"}
    for query in ("limit=0", "limit=x", "prefix=../", "limit=-1"):
        status, headers, _ = await raw(server, "GET", P.blocks_path("d0") + "?" + query)
        assert (status, headers[P.HEADER_ERROR]) == (400, P.INVALID_ARGUMENT), query


async def test_capacity_and_status(server: Server) -> None:
    vol = server.remote("d1")
    total, free = await vol.capacity()
    local_total, _local_free = await server.vols[1].capacity()
    assert total == local_total and 0 < free <= total
    doc = await vol.server_status()
    assert (doc["server"], doc["zone"]) == ("cs1", "z1")
    assert [d["id"] for d in doc["disks"]] == ["d0", "d1"]
    assert all(d["ok"] and d["error"] is None for d in doc["disks"])


async def test_verify_detects_flipped_byte(server: Server) -> None:
    vol = server.remote()
    data = os.urandom(300_000)
    await vol.put(NAME, data)
    assert await vol.verify(NAME) is True
    assert await vol.verify("abc999") is None
    path = server.vols[0].root / "blocks" / "abc" / NAME
    raw_file = bytearray(path.read_bytes())
    raw_file[200_000] ^= 1
    path.write_bytes(raw_file)
    assert await vol.verify(NAME) is False
    assert await vol.stat(NAME) is None  # quarantined: gone from the volume
    assert [n async for n in vol.blocks()] == []
    assert await vol.quarantined() == [NAME]
    with pytest.raises(InvalidArgument):
        await vol.verify("../x")


async def test_trash_undelete_and_empty(server: Server) -> None:
    vol = server.remote()
    await vol.put(NAME, b"data")
    assert await vol.trash_stats() == (0, 0)
    assert await vol.delete(NAME)
    assert await vol.stat(NAME) is None
    count, size = await vol.trash_stats()
    assert count == 1 and size > 0
    assert await vol.undelete(NAME) is True
    assert await vol.get(NAME) == b"data"
    assert await vol.undelete(NAME) is False
    assert await vol.delete(NAME)
    assert await vol.empty_trash() == 0  # deadline not passed
    assert await vol.empty_trash(now=time.time() + 10 * 86400) == 1
    assert await vol.trash_stats() == (0, 0)
    assert await vol.undelete(NAME) is False


async def test_bad_names_never_touch_disk(server: Server) -> None:
    vol = server.remote()
    for bad in ("../x", "ABC", "ab", "abc/def", ""):
        with pytest.raises(InvalidArgument):
            await vol.put(bad, b"x")
    for path in ("%2E%2E%2Fx", "..%2F..%2Fx", "ABC", "abc%00", "%2E%2E", "..", "abc%2Fdef"):
        url = f"{P.PREFIX}/disks/d0/blocks/{path}"
        status, headers, _body = await raw(server, "PUT", url, data=b"evil")
        assert (status, headers[P.HEADER_ERROR]) == (400, P.INVALID_ARGUMENT), path
    for vol_ in server.vols:
        assert block_files(vol_.root) == [] and os.listdir(vol_.root / "tmp") == []
    assert sorted(os.listdir(server.vols[0].root.parent)) == ["d0", "d1"]


async def test_bad_digest_stores_nothing(server: Server) -> None:
    data = os.urandom(5000)
    headers = {**HEADERS, P.HEADER_CRC32C: str(crc32c_value(data) ^ 1)}
    status, h, body = await raw(server, "PUT", P.block_path("d0", NAME), data=data, headers=headers)
    assert (status, h[P.HEADER_ERROR]) == (400, P.BAD_DIGEST)
    assert P.parse_error(status, None, body).code == P.BAD_DIGEST
    assert block_files(server.vols[0].root) == []


async def test_truncated_body_stores_nothing(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"PUT {P.block_path('d0', NAME)} HTTP/1.1\r\nHost: x\r\n"
        f"{P.HEADER_CLUSTER_KEY}: {SECRET}\r\nContent-Length: 100000\r\n\r\n".encode()
        + b"y" * 1000
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.2)
    assert await server.remote().stat(NAME) is None
    assert block_files(server.vols[0].root) == [] and os.listdir(server.vols[0].root / "tmp") == []


async def test_length_required_and_too_large(server: Server, tmp_path: Path) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"abc"

    status, h, _ = await raw(server, "PUT", P.block_path("d0", NAME), data=body())
    assert (status, h[P.HEADER_ERROR]) == (411, P.LENGTH_REQUIRED)
    vol = LocalVolume(tmp_path / "small", "small")
    runner, url = await start(make_chunk_app([vol], server_id="s", zone="z", max_block_size=1000))
    try:
        remote = RemoteVolume(url, "small")
        await remote.put(NAME, b"x" * 1000)
        with pytest.raises(EntityTooLarge):
            await remote.put(NAME, b"x" * 1001)
        await remote.close()
    finally:
        await runner.cleanup()
        await vol.close()


async def test_unknown_disk_and_wrong_secret(server: Server) -> None:
    status, h, body = await raw(server, "GET", P.block_path("nope", NAME))
    assert (status, h[P.HEADER_ERROR]) == (404, P.UNKNOWN_DISK)
    assert P.parse_error(status, None, body).code == P.UNKNOWN_DISK
    with pytest.raises(Unavailable, match="UnknownDisk"):
        await server.remote("nope").stat(NAME)
    with pytest.raises(Unavailable, match="UnknownDisk"):
        await server.remote("nope").get(NAME)
    status, h, _ = await raw(server, "GET", P.STATUS_PATH, headers={})
    assert (status, h[P.HEADER_ERROR]) == (403, P.ACCESS_DENIED)
    with pytest.raises(Unavailable, match="AccessDenied") as info:
        await server.remote(secret="wrong").put(NAME, b"x")
    assert info.value.causes.keys() == {"d0"}
    with pytest.raises(Unavailable):
        await server.remote(secret=None).capacity()
    assert block_files(server.vols[0].root) == []


async def test_stopped_or_silent_server_is_unavailable_quickly(tmp_path: Path) -> None:
    vol = LocalVolume(tmp_path / "d", "d")
    runner, url = await start(make_chunk_app([vol], server_id="s", zone="z"))
    remote = RemoteVolume(url, "d", connect_timeout=0.5, read_timeout=0.5)
    await remote.put(NAME, b"x")
    await runner.cleanup()
    await vol.close()
    began = time.monotonic()
    for call in (remote.get(NAME), remote.stat(NAME), remote.put(NAME, b"y"), remote.capacity()):
        with pytest.raises(Unavailable, match=url):
            await call
    assert time.monotonic() - began < 3

    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    mute = RemoteVolume(f"http://127.0.0.1:{port}", "d", read_timeout=0.3)
    began = time.monotonic()
    with pytest.raises(Unavailable, match="timed out"):
        await mute.get(NAME)
    with pytest.raises(Unavailable, match="timed out"):
        await mute.put(NAME, b"z" * 100_000)
    assert time.monotonic() - began < 3
    listener.close()
    for writer in accepted:
        writer.close()
    await remote.close()
    await mute.close()


async def test_foreign_404_is_not_a_missing_block() -> None:
    app = web.Application()  # answers 404 to everything, without a wire code
    runner, url = await start(app)
    try:
        remote = RemoteVolume(url, "d")
        with pytest.raises(Unavailable, match="unexpected HTTP 404"):
            await remote.stat(NAME)
        with pytest.raises(Unavailable, match="unexpected HTTP 404"):
            await remote.get(NAME)
        await remote.close()
    finally:
        await runner.cleanup()


async def test_unknown_route_is_not_a_missing_block(server: Server) -> None:
    status, h, _ = await raw(server, "HEAD", "/v2/disks/d0/blocks/" + NAME)
    assert (status, h[P.HEADER_ERROR]) == (404, P.UNKNOWN_PATH)
    vol = RemoteVolume(server.url + "/old", "d0", session=server.pool, secret=SECRET)
    with pytest.raises(Unavailable, match="UnknownPath"):
        await vol.stat(NAME)
    with pytest.raises(Unavailable, match="UnknownPath"):
        await vol.delete(NAME)


async def test_concurrent_requests_share_the_pool(server: Server) -> None:
    vols = [server.remote("d0"), server.remote("d1")]
    blobs = {f"{i:04x}": os.urandom(1000 + i) for i in range(40)}
    await asyncio.gather(*(vols[i % 2].put(n, d) for i, (n, d) in enumerate(blobs.items())))
    got = await asyncio.gather(*(vols[i % 2].get(n) for i, n in enumerate(blobs)))
    assert got == list(blobs.values())
    assert len(server.pool._sessions) == 1


def test_bad_base_url() -> None:
    for url in ("localhost:8080", "ftp://h/", "http://", "http://h/?x=1"):
        with pytest.raises(ValueError):
            RemoteVolume(url, "d")


def test_protocol_helpers() -> None:
    assert P.block_path("d/1", "ab c") == "/v1/disks/d%2F1/blocks/ab%20c"
    assert P.parse_int("12", "x") == 12 and P.parse_int(None, "x", default=3) == 3
    for bad in ("-1", "1e3", "x", "١٢"):
        with pytest.raises(P.BadParameter):
            P.parse_int(bad, "x")
    with pytest.raises(P.BadParameter):
        P.parse_float("nan", "x")
    assert P.parse_error(409, None, P.error_body("DataCorruption", "bad")).code == "DataCorruption"
    assert P.parse_error(404, None, b"<html>").code is None
    assert P.parse_error(404, "NotFound", b"").message == "HTTP 404"
    assert {P.verify_word(v): v for v in (True, False, None)} == P.VERIFY_RESULTS
    assert all(P.status_of(code) >= 400 for code in P.ERROR_STATUS)


async def test_stat_many_in_one_request(server: Server) -> None:
    vol = server.remote()
    await vol.put("abc001", b"x" * 10)
    await vol.put("abc002", b"y" * 20)
    got = await vol.stat_many(["abc001", "abc002", "abc003"])
    assert got["abc001"] is not None and got["abc001"][0] == 10
    assert got["abc002"] is not None and got["abc002"][0] == 20
    assert got["abc003"] is None
    assert await vol.stat_many([]) == {}
    with pytest.raises(InvalidArgument):
        await vol.stat_many(["../x"])
    status, _, _ = await raw(server, "POST", P.stat_path("d0"), data=b'{"names": ["../x"]}')
    assert status == 400
