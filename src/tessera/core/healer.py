"""Healing: every segment back to full redundancy, without anyone touching it.

Three kinds of work, one mechanism (:meth:`Healer.heal_segment`):

* **Read repair.** Reads that find a fragment missing or corrupt queue it in
  ``SegmentStore.repairs``; :meth:`Healer.repair_reported` rebuilds those at once.
* **Full passes.** :meth:`Healer.heal_pass` walks every stored manifest (object
  versions and upload parts, :meth:`MetadataStore.scan_manifests`), stats every
  fragment and rebuilds what is missing: fragments a write could not store (it
  reached quorum without them), fragments lost with a disk, blocks the scrubber
  quarantined. With ``repair=False`` the same walk only counts (``tessera admin
  verify``); with ``deep=True`` every fragment is re-read and CRC-checked too.
* **Draining.** Fragments on a disk that is no longer in the cluster (server
  removed) or is draining (weight 0) are rebuilt on other disks; the old copy
  stays readable until the manifest no longer names it.
* **Rebalancing.** While every server is up, fragments of healthy segments that
  sit on disks their placement no longer ranks (a server was added) move onto
  the ranked disks that hold none of the segment: after adding one server to N,
  about 1/(N+1) of the fragments move, all onto it.

Where a fragment goes: back onto its own disk when that disk is up (same block
name, so no manifest changes); otherwise onto the first disks of the segment's
placement order that hold no fragment of it, preferring servers that hold the
fewest. A segment whose fragments moved gets its manifest rewritten with a
compare-and-swap (:meth:`MetadataStore.replace_manifest`), which also moves the
block references; if the row changed meanwhile the rebuilt blocks are simply
unreferenced (garbage after the grace delay) and the next pass retries.

Nothing here can lose data: rebuilt bytes are verified against the segment hash
before they are written (:mod:`tessera.data.repair`), and a fragment is only ever
dropped from a manifest in the same transaction that adds its replacement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tessera.common.clock import Clock, SystemClock
from tessera.data.repair import (
    FragmentState,
    Unrecoverable,
    check_segment,
    check_segments,
    rebuild,
)
from tessera.data.store import SegmentStore
from tessera.data.topology import place
from tessera.meta.store import MetadataStore
from tessera.model.cluster import ManifestRow
from tessera.model.errors import TesseraError
from tessera.model.manifest import FragmentRef, Manifest, Segment
from tessera.model.policy import Policy

log = logging.getLogger(__name__)


@dataclass
class HealStats:
    """Counters of the current (or last) pass, plus totals since start."""

    running: bool = False
    mode: str = ""
    """``heal``, ``verify`` or ``verify-deep`` for the current or last pass."""
    passes: int = 0
    started: float | None = None
    finished: float | None = None
    rows: int = 0
    segments: int = 0
    healthy: int = 0
    """Segments with every fragment present and readable."""
    degraded: int = 0
    """Segments readable but missing fragments (before this pass repaired them)."""
    unavailable: int = 0
    """Segments with fewer reachable fragments than a read needs (disks down)."""
    lost: int = 0
    """Segments with fewer existing fragments than a read needs (data lost)."""
    fragments_rebuilt: int = 0
    fragments_moved: int = 0
    """Fragments of healthy segments moved to the disks placement now prefers
    (after a server was added)."""
    bytes_rebuilt: int = 0
    manifests_updated: int = 0
    errors: int = 0
    read_repairs: int = 0
    """Fragments rebuilt from read-repair reports, since start."""
    last_error: str = ""

    def to_dict(self, now: float) -> dict[str, Any]:
        return heal_view(asdict(self), now)


def heal_view(stats: dict[str, Any], now: float) -> dict[str, Any]:
    """``stats`` (a :class:`HealStats` as a dict, possibly published by another
    process) with ``elapsed`` seconds and ``rate_bytes_per_s`` added as of ``now``."""
    out = dict(stats)
    started, finished = out.get("started"), out.get("finished")
    end = now if out.get("running") else (finished or now)
    elapsed = max(end - started, 1e-9) if started is not None else 0.0
    out["elapsed"] = elapsed
    out["rate_bytes_per_s"] = out.get("bytes_rebuilt", 0) / elapsed if elapsed else 0.0
    return out


@dataclass
class _Pass:
    repair: bool
    deep: bool
    done: dict[tuple[str, str, tuple[tuple[int, str], ...]], Segment] = field(default_factory=dict)
    checked: dict[tuple[str, str, tuple[tuple[int, str], ...]], list[FragmentState]] = field(
        default_factory=dict
    )


class Healer:
    """See the module docstring. ``rate`` bounds rebuilt bytes per second (0: no bound)."""

    def __init__(
        self,
        meta: MetadataStore,
        store: SegmentStore,
        *,
        clock: Clock | None = None,
        rate: float = 0.0,
        batch: int = 200,
        rebalance: bool = True,
    ) -> None:
        self.meta = meta
        self.store = store
        self.clock = clock or SystemClock()
        self.rate = rate
        self.batch = batch
        self.rebalance = rebalance
        self.stats = HealStats()
        self._lock = asyncio.Lock()

    def status(self) -> dict[str, Any]:
        return self.stats.to_dict(self.clock.now())

    # -- passes -------------------------------------------------------------------
    async def heal_pass(self, *, repair: bool = True, deep: bool = False) -> HealStats:
        """Walk every manifest once; see the module docstring. One pass at a time:
        a second caller waits for the first. Returns the pass's counters."""
        async with self._lock:
            st = self.stats
            keep = (st.passes, st.read_repairs)
            self.stats = st = HealStats(running=True, started=self.clock.now())
            st.passes, st.read_repairs = keep[0] + 1, keep[1]
            st.mode = ("heal" if repair else "verify") + ("-deep" if deep else "")
            state = _Pass(repair, deep)
            after: str | None = None
            try:
                while True:
                    rows = await self.meta.scan_manifests(after, self.batch)
                    await self._precheck(rows, state)
                    for row in rows:
                        st.rows += 1
                        segments = [await self._segment(s, state) for s in row.manifest.segments]
                        changed = any(
                            a is not b for a, b in zip(segments, row.manifest.segments, strict=True)
                        )
                        if (
                            repair
                            and changed
                            and await self.meta.replace_manifest(row, Manifest(tuple(segments)))
                        ):
                            st.manifests_updated += 1
                    if len(rows) < self.batch:
                        break
                    after = rows[-1].cursor
            finally:
                st.running = False
                st.finished = self.clock.now()
            return st

    async def _precheck(self, rows: list[ManifestRow], state: _Pass) -> None:
        """Stat the fragments of a page of rows at once (one request per disk)."""
        todo = {
            _key(s): s for row in rows for s in row.manifest.segments if _key(s) not in state.done
        }
        segments = list(todo.values())
        for s, states in zip(segments, await check_segments(self.store, segments), strict=True):
            state.checked[_key(s)] = states

    async def _segment(self, s: Segment, state: _Pass) -> Segment:
        key = _key(s)
        done = state.done.get(key)
        if done is not None:
            return done
        result = await self.heal_segment(
            s, repair=state.repair, deep=state.deep, states=state.checked.pop(key, None)
        )
        state.done[key] = result
        return result

    # -- one segment ------------------------------------------------------------------
    async def heal_segment(
        self,
        s: Segment,
        *,
        repair: bool = True,
        deep: bool = False,
        states: list[FragmentState] | None = None,
    ) -> Segment:
        """Check ``s`` and (with ``repair``) rebuild what it misses; returns ``s``
        itself when its fragment list is unchanged, else the segment with its new
        fragment list (the caller records it in the manifests naming ``s``)."""
        st = self.stats
        st.segments += 1
        pol = Policy.parse(s.policy)
        if states is None:
            states = await check_segment(self.store, s)
        if deep:
            states = [await self._deep(x) for x in states]
        draining = self._draining()
        count = Counter(x.state for x in states)
        need = pol.read_minimum
        present = {x.fragment.index for x in states if x.state != "gone"}
        absent = [i for i in range(pol.fragments) if i not in present]
        moving = [x for x in states if x.state == "ok" and x.fragment.volume in draining]
        if count["ok"] == pol.fragments and not moving and len(states) == pol.fragments:
            st.healthy += 1
            return await self._rebalance(s, pol, states) if repair else s
        if count["ok"] >= need:
            st.degraded += 1
        elif count["ok"] + count["down"] >= need:
            st.unavailable += 1
        else:
            st.lost += 1
        if not repair or count["ok"] < need:
            return s
        targets = {x.fragment.index: x.fragment.volume for x in states if x.state == "missing"}
        targets = {i: d for i, d in targets.items() if d not in draining}
        relocate = absent + [x.fragment.index for x in moving]
        relocate += [
            x.fragment.index
            for x in states
            if x.state == "missing" and x.fragment.volume in draining
        ]
        targets.update(self._new_disks(s, states, relocate))
        if not targets:
            return s
        try:
            refs = await rebuild(self.store, s, targets)
        except Unrecoverable as e:
            st.errors += 1
            st.last_error = e.message
            log.error("cannot heal segment %s: %s", s.hash, e.message)
            return s
        except TesseraError as e:
            st.errors += 1
            st.last_error = e.message
            log.warning("healing segment %s failed: %s", s.hash, e.message)
            return s
        st.fragments_rebuilt += len(refs)
        st.bytes_rebuilt += sum(r.size for r in refs.values())
        await self._throttle(sum(r.size for r in refs.values()))
        return _merge(s, states, refs)

    async def _rebalance(self, s: Segment, pol: Policy, states: list[FragmentState]) -> Segment:
        """Move fragments of a healthy segment onto the disks placement now ranks
        for it (a server was added or reweighted), while every server is up.
        ``plain`` segments (no redundancy to rebuild from) stay where they are."""
        topo = self.store.topology
        if not self.rebalance or pol.kind == "plain" or not topo.all_up:
            return s
        try:
            ideal = [d for d in place(s.hash, topo, pol.fragments) if d in self.store.volumes]
        except TesseraError:
            return s
        used = {x.fragment.volume for x in states}
        free = [d for d in ideal if d not in used]
        misplaced = [x.fragment.index for x in states if x.fragment.volume not in ideal]
        targets = dict(zip(misplaced, free, strict=False))
        if not targets:
            return s
        try:
            refs = await rebuild(self.store, s, targets)
        except TesseraError as e:
            self.stats.errors += 1
            self.stats.last_error = e.message
            return s
        self.stats.fragments_moved += len(refs)
        self.stats.bytes_rebuilt += sum(r.size for r in refs.values())
        await self._throttle(sum(r.size for r in refs.values()))
        return _merge(s, states, refs)

    async def _deep(self, x: FragmentState) -> FragmentState:
        if x.state != "ok":
            return x
        vol = self.store.volumes.get(x.fragment.volume)
        if vol is None:
            return x
        try:
            good = await vol.verify(x.fragment.block)
        except (OSError, TesseraError):
            return FragmentState(x.fragment, "down")
        return x if good else FragmentState(x.fragment, "missing")

    def _draining(self) -> set[str]:
        return {d.id for d in self.store.topology.disks() if d.weight <= 0}

    def _new_disks(
        self, s: Segment, states: list[FragmentState], indexes: list[int]
    ) -> dict[int, str]:
        """A disk for each index, none already holding a fragment of ``s``, on the
        servers holding the fewest fragments of it, in placement order."""
        if not indexes:
            return {}
        topo = self.store.topology
        used = {x.fragment.volume for x in states if x.state != "gone"}
        per_server: Counter[str] = Counter()
        for d in used:
            with contextlib.suppress(KeyError):
                per_server[topo.server_of(d)] += 1
        draining = self._draining()
        try:
            order = [d for d in self.store.placement_order(s.hash) if d not in used | draining]
        except TesseraError:
            return {}
        out: dict[int, str] = {}
        for index in indexes:
            if not order:
                break
            best = min(order, key=lambda d: (per_server[topo.server_of(d)], order.index(d)))
            order.remove(best)
            per_server[topo.server_of(best)] += 1
            out[index] = best
        return out

    async def _throttle(self, nbytes: int) -> None:
        if self.rate > 0:
            await asyncio.sleep(nbytes / self.rate)

    # -- read repair ---------------------------------------------------------------------
    async def repair_reported(self) -> int:
        """Rebuild, in place, the fragments reads found missing or corrupt; returns
        how many were rebuilt. Each report is consumed: one that cannot be handled
        now (its disk is down or gone, or the rebuild failed) is left to the next
        full pass, which finds the fragment again."""
        rebuilt = 0
        for key, broken in list(self.store.repairs.items()):
            self.store.repairs.pop(key, None)
            f = broken.fragment
            if f.volume in self.store.down_disks or f.volume not in self.store.volumes:
                continue  # the full pass handles it once the disk is back or replaced
            try:
                refs = await rebuild(self.store, broken.segment, {f.index: f.volume})
            except TesseraError as e:
                self.stats.errors += 1
                self.stats.last_error = e.message
                log.warning("read repair of %s/%s failed: %s", f.volume, f.block, e.message)
                continue
            rebuilt += len(refs)
            self.stats.read_repairs += len(refs)
            self.stats.bytes_rebuilt += sum(r.size for r in refs.values())
        return rebuilt

    async def run(
        self,
        interval: float,
        repair_poll: float = 1.0,
        leader: Callable[[], bool] = lambda: True,
    ) -> None:
        """Heal reported fragments every ``repair_poll`` seconds and run a full pass
        every ``interval`` seconds (the first after one interval) while ``leader()``
        is true (one process of a cluster: :mod:`tessera.core.lease`), until
        cancelled. Failures are logged and retried."""
        loop = asyncio.get_running_loop()
        next_pass = loop.time() + interval
        while True:
            try:
                if self.store.repairs:
                    await self.repair_reported()
                if loop.time() >= next_pass and leader():
                    st = await self.heal_pass()
                    next_pass = loop.time() + interval
                    if st.fragments_rebuilt or st.lost:
                        log.info(
                            "heal pass: %d segments, %d fragments rebuilt, %d lost",
                            st.segments,
                            st.fragments_rebuilt,
                            st.lost,
                        )
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.exception("healing failed")
                self.stats.last_error = str(e)
                next_pass = loop.time() + interval
            await asyncio.sleep(repair_poll)


def _key(s: Segment) -> tuple[str, str, tuple[tuple[int, str], ...]]:
    return (s.hash, s.policy, tuple((f.index, f.volume) for f in s.fragments))


def _merge(s: Segment, states: list[FragmentState], refs: dict[int, FragmentRef]) -> Segment:
    """``s`` with gone fragments dropped and rebuilt ones (by index) replacing the
    old ones; the same object when nothing in the fragment list changed."""
    by_index: dict[int, FragmentRef] = {
        x.fragment.index: x.fragment for x in states if x.state != "gone"
    }
    by_index.update(refs)
    fragments = tuple(by_index[i] for i in sorted(by_index))
    if fragments == s.fragments:
        return s
    return Segment(s.size, s.policy, s.hash, fragments)
