"""The one-node data path: objects' bytes as blocks on local volumes.

Theory of operation
-------------------

**Write.** :meth:`LocalDataStore.write` drives a :class:`Segmenter` over the
source: chunks are copied into pooled segment buffers; MD5 (the ETag), the
requested S3 checksums and each segment's BLAKE3 are computed in worker threads
in the same pass. Content that ends within the first segment and is at most the
inline threshold is returned inline (no block). Otherwise each segment becomes one
block named by its BLAKE3 hex digest (so identical segments deduplicate and a
retried write is idempotent), written to the first volume of its rendezvous
placement order (:mod:`placement`) that accepts it. Volumes that just answered
full or failed are tried last for a few seconds. Up to ``write_concurrency``
segments are written at once and at most ``write_concurrency + 1`` buffers are
held per write, so the client is throttled rather than memory growing. A segment
that repeats within one write is stored once.

**Atomicity.** A volume makes a block visible only once it is complete and on
stable storage. ``write`` returns a :class:`Manifest` nobody references yet; the
caller commits it. On any failure (source error, EntityTooLarge, no room,
cancellation) ``write`` waits for the puts in flight, deletes the blocks *this
call created* (with ``older_than`` just past their own mtime, so a block another
writer stored again meanwhile survives) and re-raises; blocks that existed before
(dedup) are never touched. What cleanup misses is garbage for the GC.

**Read.** :meth:`LocalDataStore.read` maps the byte range onto segments and reads
only the needed byte ranges of their blocks, in pieces of at most ``read_chunk``
bytes, each verified against the block's per-64 KiB CRC32Cs and the manifest's
CRC. The next ``prefetch`` pieces are read while the current one is being sent.
A fragment that cannot be read is tried on the segment's other fragments (rep
policies); when none is good the iterator raises DataCorruption (data is bad or
missing) or Unavailable (a volume is unknown or failing).

**Policies.** Only ``plain`` is written here. The segment/fragment/volume
structure is what ``rep/n`` (N fragments on the first N volumes) and ``ec/k,m``
(k+m fragments named ``<hash>.<i>``) need; writing them raises NotSupported.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tessera.common.ranges import ByteRange
from tessera.common.streams import ByteSource
from tessera.data import placement
from tessera.data.contract import CreatedBlock, WriteResult
from tessera.data.segmenter import BufferPool, Piece, Segmenter
from tessera.data.volume import MTIME_STEP, BlockNotFound, Volume
from tessera.model.errors import (
    DataCorruption,
    InvalidArgument,
    NotSupported,
    StorageFull,
    TesseraError,
    Unavailable,
)
from tessera.model.manifest import FragmentRef, Manifest, Segment
from tessera.model.policy import Policy

log = logging.getLogger(__name__)

AVOID_SECONDS = 5.0
"""How long a volume that answered full or failing is tried after the others."""


@dataclass(eq=False)
class _WriteState:
    """Bookkeeping of one :meth:`LocalDataStore.write` call."""

    segments: dict[int, Segment] = field(default_factory=dict)
    created: list[tuple[str, str, float]] = field(default_factory=list)
    """``(volume, block, mtime)`` of blocks this call created."""
    by_hash: dict[str, asyncio.Future[FragmentRef]] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    error: BaseException | None = None


class LocalDataStore:
    """:class:`~tessera.data.contract.DataStore` over in-process volumes.

    ``inline_threshold`` is capped at ``segment_size`` (inline content is always
    a single segment). The store owns the volumes: :meth:`close` closes them.
    """

    def __init__(
        self,
        volumes: Sequence[Volume],
        *,
        segment_size: int = 8 << 20,
        inline_threshold: int = 64 << 10,
        write_concurrency: int = 4,
        read_chunk: int = 1 << 20,
        prefetch: int = 2,
    ) -> None:
        if not volumes:
            raise ValueError("at least one volume is needed")
        if segment_size <= 0 or write_concurrency < 1 or read_chunk <= 0 or prefetch < 0:
            raise ValueError("invalid data store parameters")
        self._volumes = {v.id: v for v in volumes}
        if len(self._volumes) != len(volumes):
            raise ValueError("volume ids must be unique")
        self.segment_size = segment_size
        self.inline_threshold = min(inline_threshold, segment_size)
        self.write_concurrency = write_concurrency
        self.read_chunk = read_chunk
        self.prefetch = prefetch
        self._weights = dict.fromkeys(self._volumes, 1.0)
        self._avoid_until: dict[str, float] = {}
        self._pool = BufferPool(segment_size, keep=2 * (write_concurrency + 1))

    @property
    def volume_ids(self) -> list[str]:
        return list(self._volumes)

    @property
    def volumes(self) -> dict[str, Volume]:
        """The volumes by id (for GC, scrubbing and status)."""
        return dict(self._volumes)

    async def close(self) -> None:
        await asyncio.gather(*(v.close() for v in self._volumes.values()))

    # -- write ------------------------------------------------------------------
    async def write(
        self,
        source: ByteSource,
        *,
        policy: str = "plain",
        algorithms: Iterable[str] = (),
        max_size: int | None = None,
        allow_inline: bool = True,
    ) -> WriteResult:
        pol = Policy.parse(policy)
        if pol.kind != "plain":
            raise NotSupported(f"storage policy {pol} is not supported on this node yet")
        seg = Segmenter(
            source,
            segment_size=self.segment_size,
            algorithms=algorithms,
            max_size=max_size,
            window=self.write_concurrency + 1,
            pool=self._pool,
        )
        state = _WriteState()
        slots = asyncio.Semaphore(self.write_concurrency)
        inline: bytes | None = None
        try:
            async for piece in seg:
                small = piece.size <= self.inline_threshold
                if piece.index == 0 and piece.last and allow_inline and small:
                    inline = bytes(piece.data)
                    piece.release()
                    continue
                await slots.acquire()
                if state.error is not None:  # a segment failed: stop reading the source
                    slots.release()
                    piece.release()
                    raise state.error
                task = asyncio.create_task(self._write_segment(piece, str(pol), state, slots))
                state.tasks.add(task)
            if state.tasks:
                await asyncio.wait(state.tasks)
            if state.error is not None:
                raise state.error
        except BaseException:
            await self._abort(seg, state)
            raise
        if inline is None and seg.size == 0 and allow_inline:
            inline = b""
        segments = tuple(state.segments[i] for i in sorted(state.segments))
        return WriteResult(
            size=seg.size,
            md5=seg.md5(),
            checksums=seg.checksums(),
            inline=inline,
            manifest=Manifest(segments),
            created=tuple(CreatedBlock(vol, block, mtime) for vol, block, mtime in state.created),
        )

    async def _write_segment(
        self, piece: Piece, policy: str, state: _WriteState, slots: asyncio.Semaphore
    ) -> None:
        try:
            digest = await piece.digest()
            known = state.by_hash.get(digest)
            if known is None:
                fut = state.by_hash[digest] = asyncio.get_running_loop().create_future()
                try:
                    ref = await self._put_block(digest, piece, state)
                except BaseException as e:
                    fut.set_exception(e)
                    fut.exception()  # retrieved: a later duplicate re-raises it
                    raise
                fut.set_result(ref)
            else:
                piece.release()
                ref = await asyncio.shield(known)
            state.segments[piece.index] = Segment(piece.size, policy, digest, (ref,))
        except BaseException as e:
            if state.error is None:
                state.error = e
        finally:
            piece.release()
            slots.release()

    def _order(self, key: str) -> list[str]:
        """Placement order, volumes avoided recently moved to the end."""
        now = time.monotonic()
        order = placement.rank(key, self._weights)
        return [v for v in order if self._avoid_until.get(v, 0) <= now] + [
            v for v in order if self._avoid_until.get(v, 0) > now
        ]

    async def _put_block(self, name: str, piece: Piece, state: _WriteState) -> FragmentRef:
        causes: dict[str, str] = {}
        full = True
        for vid in self._order(name):
            # shielded: if this task is cancelled the put still finishes (the piece's
            # buffer must outlive the thread using it) and its block is recorded
            put = asyncio.ensure_future(self._volumes[vid].put(name, piece.data))
            try:
                stored = await asyncio.shield(put)
            except asyncio.CancelledError:
                await asyncio.wait([put])
                if not put.cancelled() and put.exception() is None and put.result().created:
                    state.created.append((vid, name, put.result().mtime))
                raise
            except StorageFull as e:
                causes[vid] = e.message
            except (OSError, TesseraError) as e:
                causes[vid] = f"{type(e).__name__}: {e}"
                full = False
                log.warning("volume %s failed to store block %s: %s", vid, name, e)
            else:
                if stored.created:
                    state.created.append((vid, name, stored.mtime))
                self._avoid_until.pop(vid, None)
                return FragmentRef(0, name, piece.size, vid, stored.crc32c)
            self._avoid_until[vid] = time.monotonic() + AVOID_SECONDS
        if full:
            raise StorageFull("no volume has room for the data", causes=causes)
        raise Unavailable("no volume could store the data", causes)

    async def _abort(self, seg: Segmenter, state: _WriteState) -> None:
        """Wait for the puts in flight, then delete the blocks this call created."""
        if state.tasks:
            await asyncio.wait(state.tasks)
        await seg.aclose()
        await self._delete_created([CreatedBlock(v, b, m) for v, b, m in state.created])

    async def discard(self, result: WriteResult) -> int:
        """See the contract: deletes ``result.created`` unless stored again since."""
        return await self._delete_created(result.created)

    async def _delete_created(self, blocks: Sequence[CreatedBlock]) -> int:
        deleted = 0
        for c in blocks:
            vol = self._volumes.get(c.volume)
            if vol is None:
                continue
            try:
                # A re-store moves the mtime at least MTIME_STEP forward: keep it then.
                deleted += await vol.delete(c.block, older_than=c.mtime + MTIME_STEP / 2e9)
            except Exception as e:  # best effort: the GC reclaims it
                log.warning("could not delete block %s on %s: %s", c.block, c.volume, e)
        return deleted

    # -- read -------------------------------------------------------------------
    def read(
        self, inline: bytes | None, manifest: Manifest, byte_range: ByteRange | None = None
    ) -> ByteSource:
        if inline is not None:
            return self._read_inline(inline, byte_range)
        return self._read_blocks(manifest, byte_range)

    async def _read_inline(self, inline: bytes, byte_range: ByteRange | None) -> ByteSource:
        start, end = (0, len(inline)) if byte_range is None else (byte_range.start, byte_range.end)
        view = memoryview(inline)
        for off in range(max(start, 0), min(end, len(inline)), self.read_chunk):
            yield bytes(view[off : min(off + self.read_chunk, end)])

    def _plan(
        self, manifest: Manifest, byte_range: ByteRange | None
    ) -> list[tuple[Segment, int, int]]:
        """``(segment, start, end)`` pieces of at most ``read_chunk`` bytes covering
        the range, in order; piece bounds are aligned to ``read_chunk`` in the segment."""
        total = manifest.size
        start, end = (0, total) if byte_range is None else (byte_range.start, byte_range.end)
        if not 0 <= start <= end <= total:
            raise InvalidArgument(f"range {start}-{end} outside content of {total} bytes")
        plan = []
        offset = 0
        for s in manifest.segments:
            a, b = max(start - offset, 0), min(end - offset, s.size)
            while a < b:
                stop = min(b, (a // self.read_chunk + 1) * self.read_chunk)
                plan.append((s, a, stop))
                a = stop
            offset += s.size
            if offset >= end:
                break
        return plan

    async def _read_blocks(self, manifest: Manifest, byte_range: ByteRange | None) -> ByteSource:
        plan = self._plan(manifest, byte_range)
        pending: list[asyncio.Task[bytes]] = []
        try:
            for i, _ in enumerate(plan):
                while len(pending) < self.prefetch + 1 and i + len(pending) < len(plan):
                    s, a, b = plan[i + len(pending)]
                    pending.append(asyncio.create_task(self._read_segment(s, a, b)))
                data = await pending.pop(0)
                yield data
        finally:
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _read_segment(self, s: Segment, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of segment ``s`` from the first fragment that reads well."""
        pol = Policy.parse(s.policy)
        if pol.kind == "ec":
            raise NotSupported(f"reading {pol} segments is not supported on this node yet")
        causes: dict[str, str] = {}
        corrupt = False
        for frag in s.fragments:
            vol = self._volumes.get(frag.volume)
            if vol is None:
                causes[frag.volume] = "unknown volume"
                continue
            try:
                data = await vol.get(frag.block, start, end, crc32c=frag.crc32c)
            except (BlockNotFound, DataCorruption, ValueError) as e:
                corrupt = True
                causes[frag.volume] = f"{type(e).__name__}: {e}"
                log.error("block %s on %s unreadable: %s", frag.block, frag.volume, e)
                continue
            except (OSError, TesseraError) as e:
                causes[frag.volume] = f"{type(e).__name__}: {e}"
                continue
            if len(data) != end - start:
                corrupt = True
                causes[frag.volume] = (
                    f"block holds fewer bytes than the manifest says ({frag.size})"
                )
                continue
            return data
        if corrupt:
            raise DataCorruption(f"no good copy of segment {s.hash}", causes=causes)
        raise Unavailable(f"no copy of segment {s.hash} could be read", causes)

    # -- delete -----------------------------------------------------------------
    async def delete_blocks(
        self, refs: Sequence[tuple[str, str]], *, older_than: float | None = None
    ) -> int:
        """Delete the ``(volume, block)`` pairs; see the contract. Never raises for a
        single block: unknown volumes and failing deletes are logged and skipped
        (what remains is garbage the GC retries)."""
        limit = asyncio.Semaphore(16)

        async def one(vid: str, block: str) -> bool:
            vol = self._volumes.get(vid)
            if vol is None:
                log.warning("cannot delete block %s: unknown volume %s", block, vid)
                return False
            async with limit:
                try:
                    return await vol.delete(block, older_than=older_than)
                except Exception as e:
                    log.warning("could not delete block %s on %s: %s", block, vid, e)
                    return False

        done = await asyncio.gather(*(one(v, b) for v, b in dict.fromkeys(refs)))
        return sum(done)
