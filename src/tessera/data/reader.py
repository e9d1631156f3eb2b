"""Reading byte ranges of stored segments, healthy or degraded (DESIGN.md §4).

:func:`plan` cuts an object range into :class:`ReadPiece` s of at most
``read_chunk`` bytes; :meth:`SegmentReader.read` returns the bytes of one piece.

* ``plain``/``rep`` pieces are read from the first fragment (replica) that reads
  well, disks known to be down tried last.
* ``ec`` pieces never cross a data-fragment boundary, and inside a fragment they
  are cut at the same column offsets in every fragment. A healthy piece is one
  ranged read of one data fragment (no decoding). When that fragment is missing,
  corrupt, on a down server or fails, the piece's columns are fetched from any
  ``k`` fragments (data first, then parity; a failing one is replaced by the next)
  and decoded off the event loop; the decoded columns of the *other* data
  fragments are kept in the read's :class:`ColumnCache`, because the pieces at the
  same columns of those fragments come later in the same read: a degraded full
  read thus fetches each needed fragment byte once and decodes each column once.

Every byte comes from a volume that verified it against the block's CRC32Cs, so a
read never returns wrong bytes: when no good set of fragments exists it raises
DataCorruption (some were corrupt or missing) or Unavailable (disks did not
answer). Fragments found missing or corrupt are reported as
:class:`BrokenFragment` (read repair); a down disk is not reported (nothing is
lost, the healer checks it when it is back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tessera.data import codec
from tessera.data.fragments import map_object_range
from tessera.data.volume import BlockNotFound, Volume
from tessera.model.errors import DataCorruption, InvalidArgument, TesseraError, Unavailable
from tessera.model.manifest import FragmentRef, Manifest, Segment
from tessera.model.policy import Policy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokenFragment:
    """A fragment a read found missing or corrupt (for read repair)."""

    segment: Segment
    fragment: FragmentRef
    reason: str
    """``missing`` or ``corrupt``."""


@dataclass(frozen=True, slots=True)
class ReadPiece:
    """Bytes ``[start, stop)`` of segment number ``seg`` of the manifest."""

    seg: int
    segment: Segment
    policy: Policy
    start: int
    stop: int
    wide: bool = False
    """EC only: the read covers more than one data fragment of this segment, so a
    decode for any of them serves the others' columns too."""


def plan(manifest: Manifest, start: int, end: int, read_chunk: int) -> list[ReadPiece]:
    """Pieces whose concatenation is object bytes ``[start, end)`` (see the module
    docstring for how EC segments are cut). Raises InvalidArgument for a range
    outside the content."""
    segments = manifest.segments
    pieces: list[ReadPiece] = []
    for sp in map_object_range([s.size for s in segments], start, end):
        s = segments[sp.segment]
        pol = Policy.parse(s.policy)
        if pol.kind == "ec":
            f = codec.fragment_size(s.size, pol.k)
            cuts = [i * f for i in range(1, pol.k)]  # fragment boundaries
            cuts += [i * f + c for i in range(pol.k) for c in range(read_chunk, f, read_chunk)]
        else:
            f = s.size
            cuts = list(range(read_chunk, s.size, read_chunk))
        wide = pol.kind == "ec" and any(sp.start < i * f < sp.stop for i in range(1, pol.k))
        a = sp.start
        for cut in sorted(c for c in cuts if sp.start < c < sp.stop):
            pieces.append(ReadPiece(sp.segment, s, pol, a, cut, wide))
            a = cut
        pieces.append(ReadPiece(sp.segment, s, pol, a, sp.stop, wide))
    return pieces


ColumnCache = dict[tuple[int, int, int], "asyncio.Future[list[bytes]]"]
"""Decoded data columns of one read, by ``(segment number, col_start, col_stop)``."""


class SegmentReader:
    """Reads :class:`ReadPiece` s from the volumes (see the module docstring).

    ``volumes`` and ``is_down`` are called on every read, so topology changes
    apply at once; ``avoid`` receives disks that failed to answer (not missing or
    corrupt data: an I/O error, a timeout); ``report`` receives broken fragments."""

    def __init__(
        self,
        volumes: Callable[[], Mapping[str, Volume]],
        *,
        is_down: Callable[[str], bool] = lambda disk: False,
        avoid: Callable[[str], None] = lambda disk: None,
        report: Callable[[BrokenFragment], None] = lambda broken: None,
        kernel: codec.Kernel | None = None,
    ) -> None:
        self._volumes = volumes
        self._is_down = is_down
        self._avoid = avoid
        self._report = report
        self.kernel = kernel or codec.DEFAULT

    async def read(self, piece: ReadPiece, cache: ColumnCache) -> bytes:
        if piece.start == piece.stop:
            return b""
        if piece.policy.kind == "ec":
            return await self._read_ec(piece, cache)
        return await self._read_replica(piece)

    # -- fetching one fragment range ------------------------------------------------
    async def _fetch(
        self, s: Segment, frag: FragmentRef, start: int, stop: int, causes: dict[str, str]
    ) -> bytes | None:
        """Bytes ``[start, stop)`` of ``frag``, or None (cause recorded; missing or
        corrupt fragments reported)."""
        vol = self._volumes().get(frag.volume)
        where = f"{frag.volume}/{frag.block}"
        if vol is None:
            causes[where] = "unknown disk"
            return None
        try:
            data = await vol.get(frag.block, start, stop, crc32c=frag.crc32c)
        except BlockNotFound as e:
            causes[where] = f"missing: {e}"
            self._report(BrokenFragment(s, frag, "missing"))
            return None
        except (DataCorruption, ValueError) as e:
            causes[where] = f"corrupt: {e}"
            log.error("fragment %s unreadable: %s", where, e)
            self._report(BrokenFragment(s, frag, "corrupt"))
            return None
        except (OSError, TesseraError) as e:
            causes[where] = f"{type(e).__name__}: {e}"
            self._avoid(frag.volume)  # failing, not lost: try others first for a while
            return None
        if len(data) != stop - start:
            causes[where] = f"corrupt: holds fewer bytes than the manifest says ({frag.size})"
            self._report(BrokenFragment(s, frag, "corrupt"))
            return None
        return data

    @staticmethod
    def _fail(s: Segment, causes: dict[str, str]) -> TesseraError:
        if any(c.startswith(("missing", "corrupt")) for c in causes.values()):
            return DataCorruption(f"no good copy of segment {s.hash}", causes=causes)
        return Unavailable(f"segment {s.hash} could not be read", causes)

    # -- replicas -------------------------------------------------------------------
    async def _read_replica(self, p: ReadPiece) -> bytes:
        causes: dict[str, str] = {}
        frags = sorted(p.segment.fragments, key=lambda f: self._is_down(f.volume))
        for frag in frags:
            data = await self._fetch(p.segment, frag, p.start, p.stop, causes)
            if data is not None:
                return data
        raise self._fail(p.segment, causes)

    # -- erasure coded --------------------------------------------------------------
    async def _read_ec(self, p: ReadPiece, cache: ColumnCache) -> bytes:
        s, k = p.segment, p.policy.k
        f = codec.fragment_size(s.size, k)
        index = p.start // f
        c0, c1 = p.start - index * f, p.stop - index * f
        key = (p.seg, c0, c1)
        decoded = cache.get(key)
        if decoded is None:
            frag = next((x for x in s.fragments if x.index == index), None)
            usable = {x.index for x in s.fragments if not self._is_down(x.volume)}
            # A wide read of a segment missing a data fragment decodes every column
            # range once (all data columns at a time) instead of reading the healthy
            # fragments twice (directly, then again for the decode).
            degraded = p.wide and not usable.issuperset(range(k))
            failed = -1
            if frag is not None and frag.index in usable and not degraded:
                data = await self._fetch(s, frag, c0, c1, {})
                if data is not None:
                    return data
                failed = index
            decoded = cache.get(key)  # another piece may have started decoding meanwhile
            if decoded is None:
                decoded = asyncio.ensure_future(self._decode_columns(p, c0, c1, failed))
                cache[key] = decoded
        return (await asyncio.shield(decoded))[index]

    async def _decode_columns(self, p: ReadPiece, c0: int, c1: int, bad: int) -> list[bytes]:
        """The ``k`` data fragments' bytes ``[c0, c1)``, from any ``k`` fragments;
        fragment ``bad`` (just failed; -1 for none) is tried last."""
        s, k, m = p.segment, p.policy.k, p.policy.m
        by_index = {x.index: x for x in s.fragments if 0 <= x.index < k + m}
        candidates = sorted(
            (x for i, x in by_index.items() if i != bad),
            key=lambda x: (self._is_down(x.volume), x.index >= k, x.index),
        )
        if bad in by_index:
            candidates.append(by_index[bad])  # last resort: it failed a moment ago
        causes: dict[str, str] = {}
        got: dict[int, bytes] = {}
        pending = iter(candidates)
        running: dict[asyncio.Task[bytes | None], int] = {}

        def launch() -> bool:
            frag = next(pending, None)
            if frag is None:
                return False
            task = asyncio.ensure_future(self._fetch(s, frag, c0, c1, causes))
            running[task] = frag.index
            return True

        try:
            while len(got) + len(running) < k and launch():
                pass
            while running:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    index = running.pop(task)
                    data = task.result()
                    if data is not None:
                        got[index] = data
                    elif len(got) + len(running) < k:
                        launch()
                if len(got) >= k:
                    break
        finally:
            for task in running:
                task.cancel()
        if len(got) < k:
            raise self._fail(s, causes)
        return await asyncio.to_thread(self._columns, got, k, m)

    def _columns(self, got: dict[int, bytes], k: int, m: int) -> list[bytes]:
        missing = [i for i in range(k) if i not in got]
        use = dict(sorted(got.items())[:k]) if missing else got
        rebuilt = codec.reconstruct(use, k, m, missing, self.kernel) if missing else {}
        try:
            return [got[i] if i in got else rebuilt[i] for i in range(k)]
        except KeyError as e:  # pragma: no cover - reconstruct returns every missing index
            raise InvalidArgument(f"fragment {e} could not be rebuilt") from None
