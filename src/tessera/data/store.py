"""The data path: objects' bytes as segments of fragments on block volumes.

Theory of operation
-------------------

**Volumes and topology.** A :class:`SegmentStore` writes to a set of
:class:`~tessera.data.volume.Volume` s (local disks, or chunk servers' disks
through :class:`~tessera.data.remote.RemoteVolume`) arranged in a
:class:`~tessera.data.topology.Topology` (zones, servers, disks; servers up or
down). One process with several disks is one server in one zone.
:meth:`SegmentStore.update_cluster` swaps both atomically (the cluster map
changed); reads and writes already running finish with what they started with.

**Write.** Content that ends within the inline threshold is read whole, hashed
at once (MD5 and the requested checksums) and returned inline (no block, no
segment buffer). Otherwise :meth:`SegmentStore.write` drives a
:class:`Segmenter` over the source (the chunks read so far first): chunks are
copied into pooled segment buffers; MD5 (the ETag), the requested S3 checksums
and each segment's BLAKE3 are computed in worker threads in the same pass. Each
segment is stored
by its policy (:mod:`writer`): ``plain`` as one block on the first disk of its
placement order that accepts it; ``rep/n=N`` as N copies on distinct disks;
``ec/k=K,m=M`` as K+M Reed-Solomon fragments (encoded off the event loop) on
distinct disks, spread over zones and servers first. A segment is stored once it
reached its write quorum; fragments that could not be stored are left out of the
manifest (the healer completes them). Up to ``write_concurrency`` segments of
one write are written at once, and up to ``total_write_concurrency`` of all
writes together; a write holds at most ``write_concurrency + 1`` buffers, and
while its segments wait for a permit it stops reading its source, so clients are
throttled rather than memory growing: segment buffers in use stay near
``total_write_concurrency`` + one per running write. A segment that repeats
within one write is stored once (blocks are named by content hash, so a retried
write is idempotent too).

**Atomicity.** A volume makes a block visible only once it is complete and on
stable storage. ``write`` returns a :class:`Manifest` nobody references yet; the
caller commits it. On any failure (source error, EntityTooLarge, no room, no
quorum, cancellation) ``write`` waits for the puts in flight, deletes the blocks
*this call created* (with ``older_than`` just past their own mtime, so a block
another writer stored again meanwhile survives) and re-raises; blocks that
existed before (dedup) are never touched. What cleanup misses is garbage for the GC.

**Read.** :meth:`SegmentStore.read` maps the byte range onto pieces of at most
``read_chunk`` bytes (:func:`reader.plan`) and reads them with a
:class:`~tessera.data.reader.SegmentReader`, the next ``prefetch`` pieces in
flight while the current one is sent. Replicas fail over; EC pieces are read
from their data fragment, or decoded from any k fragments when it is missing,
corrupt or down. Fragments found missing or corrupt are queued in
:attr:`SegmentStore.repairs` for the healer. A read never returns wrong bytes:
the iterator raises DataCorruption or Unavailable when no good set exists.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tessera.common.checksums import MultiHasher
from tessera.common.ranges import ByteRange
from tessera.common.streams import ByteSource, peek_whole
from tessera.data import codec
from tessera.data.contract import CreatedBlock, WriteResult
from tessera.data.reader import BrokenFragment, ColumnCache, SegmentReader, plan
from tessera.data.segmenter import BufferPool, Piece, Segmenter, too_large
from tessera.data.topology import Topology, place
from tessera.data.volume import MTIME_STEP, Volume
from tessera.data.writer import fragment_name, store_fragments
from tessera.model.errors import InvalidArgument, Unavailable
from tessera.model.manifest import Manifest, Segment
from tessera.model.policy import Policy

log = logging.getLogger(__name__)

AVOID_SECONDS = 5.0
"""How long a disk that answered full or failing is tried after the others."""
MAX_REPAIRS = 10_000
"""Broken fragments remembered for the healer; beyond, new reports are dropped
(the healer's full pass finds them anyway)."""


def local_topology(volume_ids: Iterable[str]) -> Topology:
    """One zone, one server, these disks (weight 1): a single node's layout."""
    return Topology.build({"local": {"local": list(volume_ids)}})


class _Slots:
    """Permits to write one segment: one of the upload's own (at most
    ``write_concurrency`` segments of one upload at once), then one of the
    process-wide ones (at most ``total_write_concurrency`` across uploads), so
    memory for segments in flight stays bounded however many uploads run."""

    __slots__ = ("_own", "_shared")

    def __init__(self, own: int, shared: asyncio.Semaphore) -> None:
        self._own = asyncio.Semaphore(own)
        self._shared = shared

    async def acquire(self) -> None:
        await self._own.acquire()
        try:
            await self._shared.acquire()
        except BaseException:
            self._own.release()
            raise

    def release(self) -> None:
        self._shared.release()
        self._own.release()


@dataclass(eq=False)
class _WriteState:
    """Bookkeeping of one :meth:`SegmentStore.write` call."""

    segments: dict[int, Segment] = field(default_factory=dict)
    created: list[tuple[str, str, float]] = field(default_factory=list)
    """``(volume, block, mtime)`` of blocks this call created."""
    by_hash: dict[str, asyncio.Future[Segment]] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    error: BaseException | None = None

    def add_created(self, volume: str, block: str, mtime: float) -> None:
        self.created.append((volume, block, mtime))


class SegmentStore:
    """:class:`~tessera.data.contract.DataStore` over block volumes (see the module
    docstring).

    ``topology`` defaults to :func:`local_topology` of the volumes.
    ``inline_threshold`` is capped at ``segment_size`` (inline content is always a
    single segment). ``total_write_concurrency`` (segments written at once by all
    writes together; default ``write_concurrency + 1``) must be at least
    ``write_concurrency`` (ValueError). The store owns the volumes: :meth:`close`
    closes them.
    """

    def __init__(
        self,
        volumes: Sequence[Volume] | Mapping[str, Volume],
        *,
        topology: Topology | None = None,
        segment_size: int = 8 << 20,
        inline_threshold: int = 64 << 10,
        write_concurrency: int = 3,
        total_write_concurrency: int | None = None,
        read_chunk: int = 1 << 20,
        prefetch: int = 2,
        kernel: codec.Kernel | None = None,
    ) -> None:
        total = (
            write_concurrency + 1 if total_write_concurrency is None else total_write_concurrency
        )
        if (
            segment_size <= 0
            or write_concurrency < 1
            or total < write_concurrency
            or read_chunk <= 0
            or prefetch < 0
        ):
            raise ValueError("invalid data store parameters")
        vols = dict(volumes) if isinstance(volumes, Mapping) else {v.id: v for v in volumes}
        if not isinstance(volumes, Mapping) and len(vols) != len(volumes):
            raise ValueError("volume ids must be unique")
        if not vols and topology is None:
            raise ValueError("at least one volume is needed")
        self._volumes: dict[str, Volume] = vols
        self._topology = topology or local_topology(vols)
        self._down: frozenset[str] = self._down_disks(self._topology)
        self.segment_size = segment_size
        self.inline_threshold = min(inline_threshold, segment_size)
        self.write_concurrency = write_concurrency
        self.total_write_concurrency = total
        self._writing: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self.read_chunk = read_chunk
        self.prefetch = prefetch
        self.kernel = kernel or codec.DEFAULT
        self._avoid_until: dict[str, float] = {}
        self._pool = BufferPool(segment_size, keep=total + 1)
        self._parity_pools: dict[int, BufferPool] = {}
        self.repairs: dict[tuple[str, str], BrokenFragment] = {}
        """Broken fragments found by reads, by ``(volume, block)``, for the healer."""
        self.reader = SegmentReader(
            lambda: self._volumes,
            is_down=self._is_down,
            avoid=self._avoid,
            report=self._report,
            kernel=self.kernel,
        )

    # -- cluster state ------------------------------------------------------------
    @staticmethod
    def _down_disks(topology: Topology) -> frozenset[str]:
        return frozenset(d.id for s in topology.servers() if not s.up for d in s.disks)

    def update_cluster(self, topology: Topology, volumes: Mapping[str, Volume]) -> None:
        """Use ``topology`` and ``volumes`` from now on. Volumes no longer listed are
        not closed here (the caller owns their lifecycle from then on)."""
        self._volumes = dict(volumes)
        self._topology = topology
        self._down = self._down_disks(topology)

    @property
    def down_disks(self) -> frozenset[str]:
        """Disks on servers the topology marks down."""
        return self._down

    @property
    def topology(self) -> Topology:
        return self._topology

    @property
    def volume_ids(self) -> list[str]:
        return list(self._volumes)

    @property
    def volumes(self) -> dict[str, Volume]:
        """The volumes by id (for GC, scrubbing, healing and status)."""
        return dict(self._volumes)

    def _is_down(self, disk: str) -> bool:
        return disk in self._down or self._avoid_until.get(disk, 0.0) > time.monotonic()

    def _avoid(self, disk: str) -> None:
        self._avoid_until[disk] = time.monotonic() + AVOID_SECONDS

    def _report(self, broken: BrokenFragment) -> None:
        key = (broken.fragment.volume, broken.fragment.block)
        if key not in self.repairs and len(self.repairs) < MAX_REPAIRS:
            log.warning("fragment %s/%s is %s; queued for repair", *key, broken.reason)
            self.repairs[key] = broken

    def placement_order(self, key: str) -> list[str]:
        """Every disk on an up server that has a volume, in spread order for ``key``,
        disks that failed a moment ago moved to the end (raises NotEnoughDisks when
        the topology has none)."""
        topo = self._topology
        order = [d for d in place(key, topo, max(topo.placeable, 1)) if d in self._volumes]
        now = time.monotonic()
        return [d for d in order if self._avoid_until.get(d, 0.0) <= now] + [
            d for d in order if self._avoid_until.get(d, 0.0) > now
        ]

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
        if allow_inline:
            whole, source = await peek_whole(source, self.inline_threshold)
            if whole is not None:  # ended within the inline threshold
                return self._inline(whole, algorithms, max_size)
        seg = Segmenter(
            source,
            segment_size=self.segment_size,
            algorithms=algorithms,
            max_size=max_size,
            window=self.write_concurrency + 1,
            pool=self._pool,
        )
        state = _WriteState()
        slots = _Slots(self.write_concurrency, self._all_slots())
        try:
            async for piece in seg:  # longer than the inline threshold, or not inline
                await slots.acquire()
                if state.error is not None:  # a segment failed: stop reading the source
                    slots.release()
                    piece.release()
                    raise state.error
                task = asyncio.create_task(self._write_segment(piece, pol, state, slots))
                state.tasks.add(task)
            if state.tasks:
                await asyncio.wait(state.tasks)
            if state.error is not None:
                raise state.error
        except BaseException:
            await self._abort(seg, state)
            raise
        segments = tuple(state.segments[i] for i in sorted(state.segments))
        return WriteResult(
            size=seg.size,
            md5=seg.md5(),
            checksums=seg.checksums(),
            manifest=Manifest(segments),
            created=tuple(CreatedBlock(vol, block, mtime) for vol, block, mtime in state.created),
        )

    def _all_slots(self) -> asyncio.Semaphore:
        """The process-wide segment-write permits (one set per event loop)."""
        loop = asyncio.get_running_loop()
        if self._writing is None or self._writing[0] is not loop:
            self._writing = (loop, asyncio.Semaphore(self.total_write_concurrency))
        return self._writing[1]

    @staticmethod
    def _inline(content: bytes, algorithms: Iterable[str], max_size: int | None) -> WriteResult:
        """A whole small stream, stored inline: hashed here (up to the inline
        threshold, less than a thread hop costs), no segment buffer, no block."""
        if max_size is not None and len(content) > max_size:
            raise too_large(max_size)
        hasher = MultiHasher(algorithms)
        hasher.update(content)
        return WriteResult(
            size=len(content),
            md5=hasher.md5_digest(),
            checksums=hasher.checksums(),
            inline=content,
        )

    async def _write_segment(
        self, piece: Piece, pol: Policy, state: _WriteState, slots: _Slots
    ) -> None:
        try:
            digest = await piece.digest()
            known = state.by_hash.get(digest)
            if known is None:
                fut = state.by_hash[digest] = asyncio.get_running_loop().create_future()
                try:
                    segment = await self._store_segment(digest, piece, pol, state)
                except BaseException as e:
                    fut.set_exception(e)
                    fut.exception()  # retrieved: a later duplicate re-raises it
                    raise
                fut.set_result(segment)
            else:
                piece.release()
                segment = await asyncio.shield(known)
            state.segments[piece.index] = segment
        except BaseException as e:
            if state.error is None:
                state.error = e
        finally:
            piece.release()
            slots.release()

    async def _store_segment(
        self, digest: str, piece: Piece, pol: Policy, state: _WriteState
    ) -> Segment:
        order = self.placement_order(digest)
        if len(order) < pol.write_quorum:
            raise Unavailable(
                f"{pol} needs {pol.write_quorum} disk(s) on up servers, {len(order)} available",
                {d: "down" for d in sorted(self._down)},
            )
        datas: Sequence[memoryview | bytes]
        parity: list[bytearray] = []
        if pol.kind == "ec":
            pool = self._parity_pool(codec.fragment_size(self.segment_size, pol.k))
            if codec.fragment_size(piece.size, pol.k) <= pool.size:
                parity = [pool.acquire() for _ in range(pol.m)]
            # Shielded: the thread reads the segment buffer, which must not be
            # released under it if this task is cancelled.
            enc = asyncio.ensure_future(
                asyncio.to_thread(
                    codec.encode, piece.data, pol.k, pol.m, self.kernel, parity or None
                )
            )
            try:
                # Data fragments are views of the segment buffer, parity fragments
                # views of pooled buffers: both are released only after the puts.
                datas = await asyncio.shield(enc)
            except asyncio.CancelledError:
                await asyncio.wait([enc])
                self._release_parity(parity)
                raise
        else:
            datas = [piece.data] * pol.fragments
        try:
            return await self._put_fragments(digest, piece, pol, datas, order, state)
        finally:
            del datas
            self._release_parity(parity)

    def _parity_pool(self, size: int) -> BufferPool:
        pool = self._parity_pools.get(size)
        if pool is None:
            pool = self._parity_pools[size] = BufferPool(
                size, keep=2 * self.total_write_concurrency
            )
        return pool

    def _release_parity(self, buffers: list[bytearray]) -> None:
        for buf in buffers:
            self._parity_pool(len(buf)).release(buf)

    async def _put_fragments(
        self,
        digest: str,
        piece: Piece,
        pol: Policy,
        datas: Sequence[memoryview | bytes],
        order: list[str],
        state: _WriteState,
    ) -> Segment:
        outcome = await store_fragments(
            lambda i: fragment_name(digest, pol, i),
            datas,
            order,
            self._volumes,
            quorum=pol.write_quorum,
            created=state.add_created,
            failed=self._avoid,
            attempts=len(order) if pol.kind == "plain" else 3,
        )
        for disk in outcome.refs.values():
            self._avoid_until.pop(disk.volume, None)
        refs = tuple(outcome.refs[i] for i in sorted(outcome.refs))
        return Segment(piece.size, str(pol), digest, refs)

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

    async def _read_blocks(self, manifest: Manifest, byte_range: ByteRange | None) -> ByteSource:
        total = manifest.size
        start, end = (0, total) if byte_range is None else (byte_range.start, byte_range.end)
        if not 0 <= start <= end <= total:
            raise InvalidArgument(f"range {start}-{end} outside content of {total} bytes")
        pieces = plan(manifest, start, end, self.read_chunk)
        cache: ColumnCache = {}
        pending: list[asyncio.Task[bytes]] = []
        try:
            for i, piece in enumerate(pieces):
                while len(pending) < self.prefetch + 1 and i + len(pending) < len(pieces):
                    task = asyncio.ensure_future(self.reader.read(pieces[i + len(pending)], cache))
                    pending.append(task)
                data = await pending.pop(0)
                for key in [k for k in cache if k[0] < piece.seg]:
                    del cache[key]  # decoded columns of segments already sent
                yield data
        finally:
            for t in pending:
                t.cancel()
            for fut in cache.values():
                fut.cancel()
            leftovers: list[asyncio.Future[Any]] = [*pending, *cache.values()]
            if leftovers:
                await asyncio.wait(leftovers)

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
