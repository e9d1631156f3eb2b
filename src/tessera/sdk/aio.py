"""The asyncio twin of :class:`~tessera.sdk.api.ObjectStorageApi` (issue 4).

:class:`AsyncObjectStorageApi` wraps a sync API and exposes each of its public
methods as a coroutine with the same arguments, result, errors and contract
(read the sync method's docstring): the sync call runs in a worker thread, so
the event loop never blocks. ``tessera.aconnect(...)`` and
``tessera.aopen(path)`` build one.

Threads: every call, and every piece read of a fetch stream, runs on the
twin's own :class:`~concurrent.futures.ThreadPoolExecutor` of ``max_workers``
threads (16 by default), not on the loop's default executor: a thousand
concurrent calls queue for those threads instead of exhausting threads or
starving other ``asyncio.to_thread`` users. Pass ``executor=`` to share one
(the caller then owns it and :meth:`~AsyncObjectStorageApi.aclose` leaves it
running). An upload holds one worker for its whole transfer; piping a fetch
stream into an upload of the *same* twin therefore needs fewer concurrent pipes
than workers (or two twins), else the uploads hold every worker while their
sources wait for one.

Two methods differ in types only:

* :meth:`~AsyncObjectStorageApi.object_fetch` returns ``(ObjectInfo,
  AsyncObjectStream)``: ``async for piece in stream``, ``await stream.read()``,
  ``await stream.aclose()`` or ``async with stream``;
* :meth:`~AsyncObjectStorageApi.object_create` also takes an async iterable of
  bytes as ``data``. Its pieces go to the sync call through a queue of at most
  ``queue_pieces`` pieces (8 by default): the source is not read further ahead
  than that, so memory stays flat whatever the size. When the source raises,
  or the caller cancels, the upload is abandoned and stores nothing.

Cancelling a call does not interrupt a sync call already running in its worker
(it runs to its end, its result dropped), except an async-iterable upload,
which is abandoned.
"""

from __future__ import annotations

import asyncio
import functools
import os
import queue
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Sequence,
)
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import suppress
from typing import IO, Any, Concatenate, ParamSpec, TypeVar

from tessera.sdk.api import Data, ObjectStorageApi, ObjectStream, Range
from tessera.sdk.errors import BadRequest
from tessera.sdk.records import ObjectInfo

MAX_WORKERS = 16
"""Default worker threads of one twin."""
QUEUE_PIECES = 8
"""Default bound of the piece queue of an async-iterable upload."""

P = ParamSpec("P")
R = TypeVar("R")
_Runner = Callable[..., Awaitable[Any]]
"""Runs a sync callable with its arguments in a worker: the twin's ``_run``."""


class _End:
    """Marks the end of an async-iterable upload's pieces."""


class UploadAbandoned(Exception):
    """Raised inside the sync upload when its async caller was cancelled."""


_END = _End()


class _Feed:
    """An async iterable turned into a sync iterator through a bounded queue.

    :meth:`pump` runs on the loop and puts the source's pieces; :meth:`pieces`
    runs in the worker and gets them. At most ``maxsize`` pieces wait in the
    queue; the pump waits for room (woken by the worker after each get).
    """

    def __init__(
        self, source: AsyncIterable[bytes], loop: asyncio.AbstractEventLoop, maxsize: int
    ) -> None:
        self._source = source
        self._loop = loop
        self._queue: queue.Queue[bytes | _End | BaseException] = queue.Queue(maxsize)
        self._room = asyncio.Event()
        self.max_queued = 0
        """Most pieces ever waiting in the queue (never above ``maxsize``)."""

    async def pump(self) -> None:
        """Put every piece, then the end (or the source's exception)."""
        try:
            async for piece in self._source:
                if not isinstance(piece, bytes | bytearray | memoryview):
                    raise BadRequest(f"an async data source yields bytes, not {type(piece)}")
                if piece:
                    await self._put(bytes(piece))
            await self._put(_END)
        except Exception as e:  # handed to the worker, which raises it in the upload
            await self._put(e)

    async def _put(self, item: bytes | _End | BaseException) -> None:
        for _ in range(1 << 40):
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self._room.clear()
                if self._queue.full():  # a get after this clear sets it again
                    await self._room.wait()
                continue
            self.max_queued = max(self.max_queued, self._queue.qsize())
            return

    def abandon(self) -> None:
        """Make the worker's next get raise UploadAbandoned (called on the loop,
        once nothing else puts)."""
        for _ in range(1 << 20):
            try:
                self._queue.put_nowait(UploadAbandoned("the async caller went away"))
                return
            except queue.Full:
                with suppress(queue.Empty):
                    self._queue.get_nowait()

    def pieces(self) -> Iterator[bytes]:
        """The pieces, in the worker thread (blocks while the queue is empty)."""
        while True:
            item = self._queue.get()
            with suppress(RuntimeError):  # the loop closed: nobody waits for room
                self._loop.call_soon_threadsafe(self._room.set)
            if isinstance(item, _End):
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class AsyncObjectStream(AsyncIterator[bytes]):
    """The bytes of :meth:`AsyncObjectStorageApi.object_fetch`: each piece is
    read from the sync :class:`~tessera.sdk.api.ObjectStream` in a worker
    thread, one at a time (calls on one stream are serialised). :meth:`aclose`
    (or leaving ``async with``) stops early and releases the connection;
    reaching the end or an error closes it too."""

    def __init__(self, stream: ObjectStream, run: _Runner) -> None:
        self.stream = stream
        """The sync stream underneath."""
        self._run = run
        self._lock = asyncio.Lock()

    def __aiter__(self) -> AsyncObjectStream:
        return self

    async def __anext__(self) -> bytes:
        async with self._lock:
            piece: bytes | None = await self._run(next, self.stream, None)
        if piece is None:
            raise StopAsyncIteration
        return piece

    async def read(self) -> bytes:
        """Every remaining byte (for small objects), then closes."""
        async with self._lock:
            whole: bytes = await self._run(self.stream.read)
            return whole

    async def aclose(self) -> None:
        """Stop and release the connection. Idempotent."""
        async with self._lock:
            await self._run(self.stream.close)

    async def __aenter__(self) -> AsyncObjectStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _twin(
    method: Callable[Concatenate[ObjectStorageApi, P], R],
) -> Callable[Concatenate[AsyncObjectStorageApi, P], Coroutine[Any, Any, R]]:
    """The coroutine twin of a sync method: same arguments, result and docstring."""

    async def call(self: AsyncObjectStorageApi, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = await self._run(functools.partial(method, self.api, *args, **kwargs))
        return result

    functools.update_wrapper(call, method)
    if not call.__doc__:
        call.__doc__ = f"The coroutine twin of :meth:`ObjectStorageApi.{method.__name__}`."
    return call


class AsyncObjectStorageApi:
    """Every public method of :class:`~tessera.sdk.api.ObjectStorageApi` as a
    coroutine running the sync call in a worker thread (see the module doc).
    Use it with ``async with`` or call :meth:`aclose`.

    ``max_workers`` sizes the twin's own pool; ``executor`` replaces it (the
    caller then shuts it down); ``queue_pieces`` bounds an async-iterable
    upload's queue.
    """

    def __init__(
        self,
        api: ObjectStorageApi,
        *,
        max_workers: int = MAX_WORKERS,
        executor: Executor | None = None,
        queue_pieces: int = QUEUE_PIECES,
    ) -> None:
        if queue_pieces < 1:
            raise BadRequest("queue_pieces must be at least 1")
        self.api = api
        """The sync API underneath."""
        self._own_executor = executor is None
        self._executor: Executor = executor or ThreadPoolExecutor(
            max_workers, thread_name_prefix="tessera-aio"
        )
        self.queue_pieces = queue_pieces
        self._closed = False
        self.max_queued = 0
        """Most pieces that ever waited in an upload queue of this twin."""

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def account(self) -> str:
        """The account this API acts for."""
        return self.api.account

    async def close(self) -> None:
        """:meth:`ObjectStorageApi.close` in a worker, then shut down the
        twin's own pool (not an ``executor=`` given). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._run(self.api.close)
        if self._own_executor:
            self._executor.shutdown(wait=False)

    aclose = close

    async def __aenter__(self) -> AsyncObjectStorageApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # The table: one line per sync method whose twin differs in nothing but
    # being a coroutine (tests/sdk/test_sdk_async.py checks none is missing).
    create_par = _twin(ObjectStorageApi.create_par)
    block_client = _twin(ObjectStorageApi.block_client)
    account_create = _twin(ObjectStorageApi.account_create)
    account_delete = _twin(ObjectStorageApi.account_delete)
    account_list = _twin(ObjectStorageApi.account_list)
    account_show = _twin(ObjectStorageApi.account_show)
    account_set_properties = _twin(ObjectStorageApi.account_set_properties)
    account_del_properties = _twin(ObjectStorageApi.account_del_properties)
    account_flush = _twin(ObjectStorageApi.account_flush)
    account_refresh = _twin(ObjectStorageApi.account_refresh)
    access_key_create = _twin(ObjectStorageApi.access_key_create)
    container_create = _twin(ObjectStorageApi.container_create)
    container_create_many = _twin(ObjectStorageApi.container_create_many)
    container_delete = _twin(ObjectStorageApi.container_delete)
    container_list = _twin(ObjectStorageApi.container_list)
    container_show = _twin(ObjectStorageApi.container_show)
    container_get_properties = _twin(ObjectStorageApi.container_get_properties)
    container_set_properties = _twin(ObjectStorageApi.container_set_properties)
    container_del_properties = _twin(ObjectStorageApi.container_del_properties)
    container_flush = _twin(ObjectStorageApi.container_flush)
    container_purge = _twin(ObjectStorageApi.container_purge)
    container_snapshot = _twin(ObjectStorageApi.container_snapshot)
    container_touch = _twin(ObjectStorageApi.container_touch)
    container_refresh = _twin(ObjectStorageApi.container_refresh)
    object_head = _twin(ObjectStorageApi.object_head)
    object_get_properties = _twin(ObjectStorageApi.object_get_properties)
    object_set_properties = _twin(ObjectStorageApi.object_set_properties)
    object_del_properties = _twin(ObjectStorageApi.object_del_properties)
    object_delete = _twin(ObjectStorageApi.object_delete)
    object_delete_many = _twin(ObjectStorageApi.object_delete_many)
    object_list = _twin(ObjectStorageApi.object_list)
    object_link = _twin(ObjectStorageApi.object_link)
    object_copy = _twin(ObjectStorageApi.object_copy)
    object_locate = _twin(ObjectStorageApi.object_locate)
    object_drain = _twin(ObjectStorageApi.object_drain)
    object_truncate = _twin(ObjectStorageApi.object_truncate)
    object_touch = _twin(ObjectStorageApi.object_touch)

    # ------------------------------------------------- the two that differ

    async def object_create(
        self,
        container: str,
        file_or_path: str | os.PathLike[str] | IO[bytes] | None = None,
        *,
        data: Data | AsyncIterable[bytes] | None = None,
        obj_name: str | None = None,
        etag: str | None = None,
        mime_type: str | None = None,
        properties: dict[str, str] | None = None,
        policy: str | None = None,
        append: bool = False,
        perfdata: dict[str, Any] | None = None,
        deadline: float | None = None,
    ) -> ObjectInfo:
        """:meth:`ObjectStorageApi.object_create`, where ``data`` may also be an
        async iterable of bytes (read at most ``queue_pieces`` pieces ahead of
        the upload; its exception, or cancelling this call, abandons the upload
        and stores nothing). ``file_or_path``: a path (``str`` or
        ``os.PathLike``) or a sync binary file object, read in the worker."""
        create = functools.partial(
            self.api.object_create,
            container,
            file_or_path,
            obj_name=obj_name,
            etag=etag,
            mime_type=mime_type,
            properties=properties,
            policy=policy,
            append=append,
            perfdata=perfdata,
            deadline=deadline,
        )
        if not isinstance(data, AsyncIterable):
            return await self._run(functools.partial(create, data=data))
        feed = _Feed(data, asyncio.get_running_loop(), self.queue_pieces)
        pump = asyncio.create_task(feed.pump())
        done = False
        try:
            info = await self._run(functools.partial(create, data=feed.pieces()))
            done = True
            return info
        finally:
            pump.cancel()
            with suppress(asyncio.CancelledError):
                await pump
            if not done:
                feed.abandon()  # a worker still blocked on the queue gives up
            self.max_queued = max(self.max_queued, feed.max_queued)

    async def object_fetch(
        self,
        container: str,
        obj: str,
        ranges: Sequence[Range] | None = None,
        *,
        version: str | None = None,
        perfdata: dict[str, Any] | None = None,
        deadline: float | None = None,
    ) -> tuple[ObjectInfo, AsyncObjectStream]:
        """:meth:`ObjectStorageApi.object_fetch`, its stream async: close it
        (``aclose`` or ``async with``) to stop early."""
        info, stream = await self._run(
            functools.partial(
                self.api.object_fetch,
                container,
                obj,
                ranges,
                version=version,
                perfdata=perfdata,
                deadline=deadline,
            )
        )
        return info, AsyncObjectStream(stream, self._run)
