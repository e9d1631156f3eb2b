"""Cut a byte stream into fixed-size segments, hashing everything in one pass.

:class:`Segmenter` pulls chunks of any size from a :data:`ByteSource`, copies them
into reusable segment buffers and yields one :class:`Piece` per segment (every
piece is ``segment_size`` bytes except the last). Alongside, it computes

* the MD5 and the requested S3 checksums of the whole stream (:class:`MultiHasher`,
  updated strictly in stream order), and
* the BLAKE3 of each segment (its identity), available through :meth:`Piece.digest`.

Hashing runs in worker threads (md5, blake3 and crc32c release the GIL), so the
event loop keeps serving while a segment is hashed; the stream hash of segment
*i* overlaps with filling segment *i+1* and with writing segment *i*.

**Memory is bounded.** A segmenter owns at most ``window`` buffers. A buffer is
reused only when the consumer has released its piece *and* both hashes of it are
done; while all ``window`` buffers are busy the segmenter stops pulling from the
source (back-pressure to the client socket). Buffers come from a
:class:`BufferPool`, shared across streams, so steady-state operation touches no
fresh memory (fresh pages cost ~0.8 GB/s on our machines; memcpy ~15 GB/s).
The first buffer of a stream is a small one (:data:`FIRST`), exchanged for a pooled
one (copying what it holds) only if the stream is longer: small objects never
take a segment buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import blake3

from tessera.common.checksums import MultiHasher
from tessera.common.streams import ByteSource
from tessera.model.errors import EntityTooLarge

T = TypeVar("T")

SMALL = 64 << 10
"""Pieces up to this size are hashed on the event loop (a thread hop costs more)."""

FIRST = 64 << 10
"""Capacity of a stream's first buffer. A stream starts in a small buffer and moves
to a pooled ``segment_size`` one only when it outgrows it, so a 4 KiB PUT does not
touch 8 MiB of memory (at 32 concurrent small PUTs, that was 256 MiB of RSS and
most of their latency)."""


def too_large(max_size: int) -> EntityTooLarge:
    """The error for a stream longer than ``max_size`` bytes."""
    return EntityTooLarge(
        f"Your proposed upload exceeds the maximum allowed size ({max_size} bytes)",
        max_size=max_size,
    )


class BufferPool:
    """Idle ``bytearray`` s of one size, kept for reuse (at most ``keep`` of them)."""

    def __init__(self, size: int, keep: int = 8) -> None:
        self.size = size
        self.keep = keep
        self._idle: list[bytearray] = []

    def acquire(self) -> bytearray:
        return self._idle.pop() if self._idle else bytearray(self.size)

    def release(self, buf: bytearray) -> None:
        if len(buf) == self.size and len(self._idle) < self.keep:
            self._idle.append(buf)


@dataclass(eq=False, slots=True)
class _Slot:
    """One buffer of the window and how many users it still has (the filler or the
    consumer, the segment hash, the stream hash)."""

    buf: bytearray
    view: memoryview
    refs: int = 1


@dataclass(eq=False, slots=True)
class Piece:
    """One segment of the stream. ``data`` is valid until :meth:`release`."""

    index: int
    offset: int
    """Offset of the segment's first byte in the stream."""
    size: int
    data: memoryview
    last: bool
    """True for the final segment of the stream."""
    _hash: asyncio.Future[str] | None
    """The BLAKE3 being computed in a thread; None for a small piece, hashed
    on demand (an inline object never needs its block name)."""
    _segmenter: Segmenter
    _slot: _Slot
    _released: bool = field(default=False)

    async def digest(self) -> str:
        """The BLAKE3 hex digest of ``data`` (call before :meth:`release`)."""
        if self._hash is None:
            if self._released:
                raise RuntimeError("digest() of a released piece")
            self._hash = self._segmenter._loop.create_future()
            self._hash.set_result(_blake3_hex(self.data))
        return await asyncio.shield(self._hash)

    def release(self) -> None:
        """Give the buffer back (idempotent). ``data`` is released too: the caller
        must not use it, nor let a thread use it, afterwards."""
        if not self._released:
            self._released = True
            self.data.release()
            self._segmenter._unref(self._slot)


def _blake3_hex(view: memoryview) -> str:
    return blake3.blake3(view).hexdigest()


class Segmenter:
    """Async iterator of :class:`Piece` s over ``source``; see the module docstring.

    Raises EntityTooLarge as soon as more than ``max_size`` bytes were read (before
    they are yielded), and whatever ``source`` raises. After the iteration ended
    normally, :attr:`size`, :meth:`md5` and :meth:`checksums` describe the stream.
    On any early exit, call :meth:`aclose`: it waits for hashing still running
    in threads (so buffers are never recycled under them). Create it inside the
    running event loop that iterates it.
    """

    def __init__(
        self,
        source: ByteSource,
        *,
        segment_size: int = 8 << 20,
        algorithms: Iterable[str] = (),
        max_size: int | None = None,
        window: int = 2,
        pool: BufferPool | None = None,
    ) -> None:
        if segment_size <= 0 or window < 1:
            raise ValueError("segment_size and window must be positive")
        if pool is not None and pool.size != segment_size:
            raise ValueError("pool buffers must be segment_size bytes")
        self._source = source
        self.segment_size = segment_size
        self.max_size = max_size
        self._pool = pool or BufferPool(segment_size, keep=window)
        self._window = asyncio.Semaphore(window)
        self._hasher = MultiHasher(algorithms)
        self._lane: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._active = 0
        """Hash jobs running (or queued) in worker threads."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._done = False
        self.size = 0
        """Bytes read from the source so far."""

    # -- results --------------------------------------------------------------
    def md5(self) -> bytes:
        """Binary MD5 of the whole stream (only once iteration has finished)."""
        self._check_done()
        return self._hasher.md5_digest()

    def checksums(self) -> dict[str, str]:
        """Base64 digests of the requested algorithms (once iteration has finished)."""
        self._check_done()
        return self._hasher.checksums()

    def _check_done(self) -> None:
        if not self._done:
            raise RuntimeError("the stream has not been read to its end")

    # -- buffers --------------------------------------------------------------
    async def _acquire(self, first: bool = False) -> _Slot:
        await self._window.acquire()
        # A first buffer is not pooled: release() keeps only full-size buffers.
        small = first and self.segment_size > FIRST
        buf = bytearray(FIRST) if small else self._pool.acquire()
        return _Slot(buf, memoryview(buf))

    def _grow(self, slot: _Slot, fill: int) -> _Slot:
        """Move the first ``fill`` bytes of a small, unshared slot into a pooled
        full-size one; the window permit passes from the old slot to the new."""
        buf = self._pool.acquire()
        buf[:fill] = slot.view[:fill]
        slot.view.release()
        return _Slot(buf, memoryview(buf))

    def _unref(self, slot: _Slot) -> None:
        slot.refs -= 1
        if slot.refs == 0:
            self._pool.release(slot.buf)
            self._window.release()

    def _in_thread(self, fn: Callable[[memoryview], T], view: memoryview, slot: _Slot) -> T:
        """Run ``fn(view)`` in a worker thread; the thread itself drops its reference
        to ``slot`` when done, so a buffer is never recycled while a thread reads it,
        even if the asyncio future awaiting the result was cancelled."""
        try:
            return fn(view)
        finally:
            view.release()
            with contextlib.suppress(RuntimeError):  # loop closed: nothing to recycle into
                self._loop.call_soon_threadsafe(self._thread_done, slot)

    def _thread_done(self, slot: _Slot) -> None:
        self._active -= 1
        self._unref(slot)
        if not self._active:
            self._idle.set()

    def _offload(self, fn: Callable[[memoryview], T], slot: _Slot, fill: int) -> asyncio.Future[T]:
        view = slot.view[:fill]
        self._active += 1
        self._idle.clear()
        return self._loop.run_in_executor(None, self._in_thread, fn, view, slot)

    # -- hashing --------------------------------------------------------------
    def _emit(self, slot: _Slot, fill: int, index: int, last: bool) -> Piece:
        h: asyncio.Future[str] | None = None
        if fill <= SMALL:  # hashed on the loop: no thread hop, no task
            slot.refs = 2  # the consumer, the stream hash; digest() reads the data
            lane = self._lane
            if lane is None or (lane.done() and not lane.cancelled() and not lane.exception()):
                self._hasher.update(slot.view[:fill])
                self._unref(slot)
            else:
                self._lane = asyncio.ensure_future(self._stream_hash(lane, slot, fill))
        else:
            slot.refs = 3  # the consumer, the segment hash, the stream hash
            h = self._offload(_blake3_hex, slot, fill)
            self._lane = asyncio.ensure_future(self._stream_hash(self._lane, slot, fill))
        offset = index * self.segment_size
        return Piece(index, offset, fill, slot.view[:fill], last, h, self, slot)

    async def _stream_hash(
        self, previous: asyncio.Future[None] | None, slot: _Slot, fill: int
    ) -> None:
        """Feed the slot to the stream hasher after ``previous`` fed the one before."""
        try:
            if previous is not None:
                await asyncio.shield(previous)
        except BaseException:
            self._unref(slot)
            raise
        if fill <= SMALL:
            self._hasher.update(slot.view[:fill])
            self._unref(slot)
        else:
            await self._offload(self._hasher.update, slot, fill)

    # -- iteration ------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[Piece]:
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[Piece]:
        seg = self.segment_size
        slot: _Slot | None = await self._acquire(first=True)
        fill = index = 0
        full = False  # the buffer is full; emitted once we know whether more follows
        try:
            async for chunk in self._source:
                mv = memoryview(chunk)
                if mv.ndim != 1 or mv.itemsize != 1:
                    mv = mv.cast("B")
                n = len(mv)
                if not n:
                    continue
                self.size += n
                if self.max_size is not None and self.size > self.max_size:
                    raise too_large(self.max_size)
                pos = 0
                while pos < n:
                    assert slot is not None
                    if full and len(slot.buf) < seg:
                        slot, full = self._grow(slot, fill), False
                    if full:
                        piece, slot = self._emit(slot, fill, index, last=False), None
                        yield piece
                        index += 1
                        slot = await self._acquire()
                        fill, full = 0, False
                    cap = len(slot.buf)
                    take = min(n - pos, cap - fill)
                    slot.view[fill : fill + take] = mv[pos : pos + take]
                    fill += take
                    pos += take
                    full = fill == cap
            if fill and slot is not None:
                piece, slot = self._emit(slot, fill, index, last=True), None
                yield piece
        finally:
            if slot is not None:  # acquired but never emitted
                self._unref(slot)
        if self._lane is not None:
            await asyncio.shield(self._lane)
        self._done = True

    async def aclose(self) -> None:
        """Wait until no worker thread reads this segmenter's buffers any more.

        Pieces already yielded stay valid until released; the source is not closed
        (it belongs to the caller).
        """
        await self._idle.wait()
