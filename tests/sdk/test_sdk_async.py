"""AsyncObjectStorageApi, the asyncio twin of ObjectStorageApi (both backends)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sdk_support import payload, read_all, unique

import tessera
from tessera.sdk import (
    AsyncObjectStorageApi,
    AsyncObjectStream,
    BadRequest,
    Conflict,
    NoSuchContainer,
    NoSuchObject,
    ObjectStorageApi,
    PreconditionFailed,
)
from tessera.sdk.aio import _Feed

MiB = 1 << 20


@pytest.fixture
def aapi(api: ObjectStorageApi) -> Iterator[AsyncObjectStorageApi]:
    """The twin of the session's API, on a pool this test owns (so closing the
    twin is not needed and the session's API stays open)."""
    pool = ThreadPoolExecutor(8, thread_name_prefix="test-aio")
    yield AsyncObjectStorageApi(api, executor=pool, queue_pieces=4)
    pool.shutdown(wait=True)


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_every_sync_method_has_a_twin() -> None:
    sync = {n for n in _public(ObjectStorageApi) if callable(getattr(ObjectStorageApi, n))}
    assert "object_create" in sync and "object_fetch" in sync and "close" in sync
    missing = sync - _public(AsyncObjectStorageApi)
    assert not missing, f"ObjectStorageApi methods without an async twin: {sorted(missing)}"
    for name in sync:
        twin = getattr(AsyncObjectStorageApi, name)
        assert inspect.iscoroutinefunction(twin), name
        sync_doc, doc = getattr(ObjectStorageApi, name).__doc__, twin.__doc__
        assert doc and (doc == sync_doc or f"ObjectStorageApi.{name}`" in doc), name
        sync_params = list(inspect.signature(getattr(ObjectStorageApi, name)).parameters)
        twin_params = list(inspect.signature(twin).parameters)
        assert twin_params == sync_params, name
    assert isinstance(AsyncObjectStorageApi.account, property)


async def test_calls_round_trip(aapi: AsyncObjectStorageApi, container: str) -> None:
    assert aapi.account == aapi.api.account
    info = await aapi.object_create(container, data=b"hello", obj_name="a", properties={"k": "v"})
    assert info.size == 5 and info.name == "a"
    assert (await aapi.object_head(container, "a")).etag == info.etag
    assert await aapi.object_get_properties(container, "a") == {"k": "v"}
    page = await aapi.object_list(container)
    assert [o.name for o in page.objects] == ["a"]
    assert container in [c.name for c in await aapi.container_list(prefix=container)]
    await aapi.object_delete(container, "a")
    assert [o.name for o in (await aapi.object_list(container)).objects] == []


async def test_concurrent_creates_and_fetches(aapi: AsyncObjectStorageApi, container: str) -> None:
    bodies = {f"obj-{i}": payload(100_000 + i * 7919, seed=i) for i in range(20)}
    infos = await asyncio.gather(
        *(aapi.object_create(container, data=b, obj_name=n) for n, b in bodies.items())
    )
    assert sorted(i.name for i in infos) == sorted(bodies)

    async def fetch(name: str) -> bytes:
        _, stream = await aapi.object_fetch(container, name)
        return await stream.read()

    got = await asyncio.gather(*(fetch(n) for n in bodies))
    assert dict(zip(bodies, got, strict=True)) == bodies


async def test_streaming_fetch_and_early_close(aapi: AsyncObjectStorageApi, container: str) -> None:
    data = payload(5 * MiB, seed=3)
    await aapi.object_create(container, data=data, obj_name="big")
    perf: dict[str, float] = {}
    for _ in range(12):  # more than a connection pool: closing must release them
        info, stream = await aapi.object_fetch(container, "big", perfdata=perf)
        assert isinstance(stream, AsyncObjectStream) and info.size == len(data)
        first = await stream.__anext__()
        assert data.startswith(first) and 0 < len(first) < len(data)
        await stream.aclose()
        assert [p async for p in stream] == []
    assert 0 < perf["bytes"] < len(data)
    async with (await aapi.object_fetch(container, "big"))[1] as stream:
        assert await stream.__anext__()
    assert stream.stream.read() == b""  # closed by the block
    _, stream = await aapi.object_fetch(container, "big", ranges=[(0, 9), (None, 5)])
    assert b"".join([p async for p in stream]) == data[:10] + data[-5:]


async def test_async_iterable_upload_is_bounded(
    aapi: AsyncObjectStorageApi, container: str
) -> None:
    piece, count = 64 * 1024, 320  # 20 MiB
    produced = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal produced
        for i in range(count):
            produced += 1
            yield payload(piece, seed=i)

    perf: dict[str, float] = {}
    info = await aapi.object_create(container, data=source(), obj_name="stream", perfdata=perf)
    assert produced == count and info.size == piece * count and perf["bytes"] == info.size
    assert 1 <= aapi.max_queued <= aapi.queue_pieces
    expected = b"".join(payload(piece, seed=i) for i in range(count))
    assert read_all(aapi.api, container, "stream") == expected


async def test_feed_reads_no_further_ahead_than_its_queue() -> None:
    produced = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal produced
        for i in range(100):
            produced += 1
            yield bytes([i]) * 10

    feed = _Feed(source(), asyncio.get_running_loop(), maxsize=3)
    pump = asyncio.create_task(feed.pump())
    for _ in range(200):  # let the pump run as far as it can, nobody consuming
        await asyncio.sleep(0)
    assert not pump.done()
    assert produced == 4  # three queued, the fourth waiting for room
    pieces = await asyncio.to_thread(lambda: b"".join(feed.pieces()))
    await pump
    assert produced == 100 and pieces == b"".join(bytes([i]) * 10 for i in range(100))
    assert feed.max_queued == 3


async def test_failing_source_stores_nothing(aapi: AsyncObjectStorageApi, container: str) -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise ValueError("source broke")

    with pytest.raises(ValueError, match="source broke"):
        await aapi.object_create(container, data=source(), obj_name="broken")
    with pytest.raises(NoSuchObject):
        await aapi.object_head(container, "broken")

    async def not_bytes() -> AsyncIterator[bytes]:
        yield "text"  # type: ignore[misc]

    with pytest.raises(BadRequest):
        await aapi.object_create(container, data=not_bytes(), obj_name="bad")


async def test_cancelled_upload_is_abandoned(api: ObjectStorageApi, container: str) -> None:
    started = asyncio.Event()
    never = asyncio.Event()

    async def source() -> AsyncIterator[bytes]:
        yield b"y" * 1000
        started.set()
        await never.wait()  # the source stalls; the caller gives up
        yield b"never"

    with ThreadPoolExecutor(1) as pool:  # one worker: the upload held it
        aapi = AsyncObjectStorageApi(api, executor=pool)
        task = asyncio.create_task(aapi.object_create(container, data=source(), obj_name="c"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the worker gave up the upload: it serves the next calls; nothing was stored
        with pytest.raises(NoSuchObject):
            await aapi.object_head(container, "c")
        assert (await aapi.container_show(container)).name == container


async def test_errors_are_the_sdk_errors(aapi: AsyncObjectStorageApi, container: str) -> None:
    with pytest.raises(NoSuchObject):
        await aapi.object_fetch(container, "nope")
    with pytest.raises(NoSuchContainer):
        await aapi.container_show(unique())
    with pytest.raises(BadRequest):
        await aapi.object_create(container, data=b"x")  # no name
    with pytest.raises(BadRequest):
        await aapi.container_purge(container, maxvers=0)
    await aapi.object_create(container, data=b"z", obj_name="z")
    _, stream = await aapi.object_fetch(container, "z", ranges=[(0, 0), (0, 0)])
    await aapi.object_create(container, data=b"changed", obj_name="z")
    with pytest.raises(PreconditionFailed):  # the second range sees another version
        await stream.read()


async def test_aopen_async_with(tmp_path: Path) -> None:
    path = tmp_path / "data"
    async with await tessera.aopen(path) as aapi:
        assert isinstance(aapi, AsyncObjectStorageApi)
        name = unique()
        assert await aapi.container_create(name) is True
        await aapi.object_create(name, data=b"abc", obj_name="o")
        _, stream = await aapi.object_fetch(name, "o")
        assert await stream.read() == b"abc"
        with pytest.raises(Conflict):  # the directory is held until aclose
            tessera.open(path)
    again = await tessera.aopen(path)
    try:
        assert read_all(again.api, name, "o") == b"abc"
    finally:
        await again.aclose()
        await again.aclose()  # idempotent
