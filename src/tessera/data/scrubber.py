"""The scrubber: re-check every stored block on a schedule, gently.

A :class:`Scrubber` walks the blocks of a set of volumes (:meth:`Volume.blocks`)
and has each one checked in full (:meth:`Volume.verify`). A corrupt block is
moved out of service by the volume itself (quarantine), so the healer sees it as
missing; the scrubber reports it to ``on_corrupt(volume_id, name)`` so healing
can start at once rather than at the next read. Once per pass it also empties
each volume's trash of blocks whose deadline has passed.

Contracts:

* **Rate.** All the volumes of one scrubber together are read at no more than
  ``rate`` bytes per second on average (one token bucket holding at most
  ``burst`` bytes; block sizes from :meth:`Volume.stat`), so scrubbing never
  saturates a disk, nor the machine's I/O. Volumes (one per disk) are scrubbed
  concurrently, so a slow disk does not hold up the others.
* **Schedule.** :meth:`Scrubber.run` starts a pass every ``interval`` seconds
  (start to start); a pass longer than that is followed at once by the next.
* **Robustness.** A volume whose listing fails is logged and skipped for the rest
  of the pass; a block whose check fails with an error is logged, counted and
  skipped (after :data:`MAX_CONSECUTIVE_ERRORS` in a row the volume is given up
  for the pass). A failing ``on_corrupt`` is logged. :meth:`Scrubber.run` never
  stops on an error; only cancellation ends it.
* **Event loop.** The scrubber only awaits: volume I/O runs in the volumes'
  threads, waiting for tokens is an ``await sleep``.
* **Statistics.** :attr:`Scrubber.stats` is a snapshot (a plain dataclass copy) of
  the current pass, or of the last one between passes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from tessera.data.volume import Volume
from tessera.model.errors import DataCorruption

log = logging.getLogger(__name__)

CorruptCallback = Callable[[str, str], Awaitable[None] | None]
"""``on_corrupt(volume_id, block_name)``: a plain function or a coroutine function."""
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

MAX_CONSECUTIVE_ERRORS = 16
"""Failed block checks in a row after which a volume is skipped for the rest of a pass."""


@dataclass(slots=True)
class ScrubStats:
    """Progress of one pass (the current one, or the last one between passes)."""

    passes: int = 0
    """Passes completed since the scrubber was made."""
    started: float | None = None
    """Clock time the pass started (None before the first pass)."""
    finished: float | None = None
    """Clock time the pass finished (None while it runs)."""
    blocks_checked: int = 0
    bytes_checked: int = 0
    """Data bytes of the blocks checked (as :meth:`Volume.stat` reports them)."""
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    """``(volume id, block name)`` of each corrupt block found in this pass."""
    missing: int = 0
    """Blocks listed but gone before they could be checked (deleted meanwhile)."""
    errors: int = 0
    """Block checks and volume listings that failed with an error."""
    failed_volumes: list[str] = field(default_factory=list)
    """Volumes skipped for (the rest of) this pass because of errors."""
    trash_removed: int = 0
    """Trashed blocks removed for good by this pass."""
    position: dict[str, str] = field(default_factory=dict)
    """Per volume id, the last block name checked (names are visited in sorted order)."""

    def copy(self) -> ScrubStats:
        """A deep enough copy for another reader (no shared mutable fields)."""
        return dataclasses.replace(
            self,
            corrupt=list(self.corrupt),
            failed_volumes=list(self.failed_volumes),
            position=dict(self.position),
        )


class TokenBucket:
    """At most ``burst + rate * t`` units taken in any time ``t`` (by ``clock``).

    :meth:`take` never refuses: it takes the units (going into debt for a request
    bigger than what is there) and then sleeps until the debt is paid, so requests
    larger than ``burst`` still pass, just slowly. ``rate=inf`` never waits.
    """

    def __init__(self, rate: float, burst: float, clock: Clock, sleep: Sleep) -> None:
        if not rate > 0 or not burst >= 0:
            raise ValueError(f"invalid rate {rate} or burst {burst}")
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._tokens = burst
        self._last = clock()

    async def take(self, n: float) -> None:
        if math.isinf(self.rate):
            return
        now = self._clock()
        elapsed = max(0.0, now - self._last)  # a clock stepping back gives nothing
        self._last = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate) - n
        if self._tokens < 0:
            await self._sleep(-self._tokens / self.rate)


class Scrubber:
    """Checks every block of ``volumes`` once per ``interval`` seconds, at ``rate`` bytes/s
    (for all of them together).

    ``volumes`` is a mapping of volume id to volume, or a function returning one
    (called at the start of each pass, so volumes added or removed are followed).
    ``burst`` (default: one second's worth of ``rate``) bounds how far ahead of the
    average rate a volume may be read. ``clock`` (default :func:`time.time`) and
    ``sleep`` (default :func:`asyncio.sleep`) are injectable for tests.
    """

    def __init__(
        self,
        volumes: Mapping[str, Volume] | Callable[[], Mapping[str, Volume]],
        *,
        rate: float = 50e6,
        interval: float = 86400.0,
        burst: float | None = None,
        on_corrupt: CorruptCallback | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"invalid scrub rate {rate}")
        if not interval > 0:
            raise ValueError(f"invalid scrub interval {interval}")
        self._volumes = volumes
        self.rate = rate
        self.interval = interval
        self.burst = rate if burst is None else burst
        self.on_corrupt = on_corrupt
        self._clock: Clock = clock or time.time
        self._sleep: Sleep = sleep or asyncio.sleep
        self._stats = ScrubStats()
        self._bucket = TokenBucket(rate, self.burst, self._clock, self._sleep)
        self._pass_lock = asyncio.Lock()

    @property
    def stats(self) -> ScrubStats:
        """A snapshot of the current (or last) pass's statistics."""
        return self._stats.copy()

    def _current_volumes(self) -> dict[str, Volume]:
        vols = self._volumes() if callable(self._volumes) else self._volumes
        return dict(vols)

    async def scrub_once(self) -> ScrubStats:
        """One full pass: check every block of every volume, then empty the trashes.

        Returns the pass's statistics. Only cancellation propagates; every other
        error is logged and recorded in the statistics. Passes never overlap: a call
        made while another pass runs (say, an operator's "scrub now" beside
        :meth:`run`) waits for it to finish, then makes its own.
        """
        async with self._pass_lock:
            return await self._pass()

    async def _pass(self) -> ScrubStats:
        stats = ScrubStats(passes=self._stats.passes, started=self._clock())
        self._stats = stats
        try:
            volumes = self._current_volumes()
        except Exception:
            log.exception("scrubber: cannot get the volumes")
            stats.errors += 1
            volumes = {}
        await asyncio.gather(*(self._scrub_volume(vid, vol, stats) for vid, vol in volumes.items()))
        stats.passes += 1
        stats.finished = self._clock()
        log.info(
            "scrub pass done: %d blocks, %d bytes, %d corrupt, %d errors",
            stats.blocks_checked,
            stats.bytes_checked,
            len(stats.corrupt),
            stats.errors,
        )
        return stats.copy()

    async def _scrub_volume(self, vid: str, vol: Volume, stats: ScrubStats) -> None:
        bucket = self._bucket
        consecutive = 0
        try:
            async for name in vol.blocks():
                try:
                    await self._scrub_block(vid, vol, name, bucket, stats)
                    consecutive = 0
                except Exception:
                    log.exception("scrubber: checking block %s on volume %s failed", name, vid)
                    stats.errors += 1
                    consecutive += 1
                    if consecutive >= MAX_CONSECUTIVE_ERRORS:
                        log.error("scrubber: too many errors on volume %s; skipping it", vid)
                        stats.failed_volumes.append(vid)
                        break
        except Exception:
            log.exception("scrubber: listing volume %s failed; skipping it", vid)
            stats.errors += 1
            stats.failed_volumes.append(vid)
        try:
            removed = await vol.empty_trash()
            stats.trash_removed += removed  # not ``+= await``: other volumes update it too
        except Exception:
            log.exception("scrubber: emptying the trash of volume %s failed", vid)
            stats.errors += 1

    async def _scrub_block(
        self, vid: str, vol: Volume, name: str, bucket: TokenBucket, stats: ScrubStats
    ) -> None:
        try:
            st = await vol.stat(name)
        except DataCorruption:  # a bad footer: size unknown, verify() deals with it
            size = 0
        else:
            if st is None:
                stats.missing += 1
                return
            size = st[0]
        await bucket.take(size)
        result = await vol.verify(name)
        stats.position[vid] = name
        if result is None:
            stats.missing += 1
            return
        stats.blocks_checked += 1
        stats.bytes_checked += size
        if result is False:
            stats.corrupt.append((vid, name))
            await self._report(vid, name)

    async def _report(self, vid: str, name: str) -> None:
        if self.on_corrupt is None:
            return
        try:
            result = self.on_corrupt(vid, name)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("scrubber: on_corrupt(%s, %s) failed", vid, name)

    async def run(self, first_delay: float = 0.0) -> None:
        """Scrub forever: a pass every ``interval`` seconds, start to start, the
        first after ``first_delay`` seconds (so a restart does not start re-reading
        every disk at once).

        Never returns; cancel the task to stop it (a pass in progress stops at its
        next await, leaving nothing half done: blocks are checked by the volume).
        """
        if first_delay > 0:
            await self._sleep(first_delay)
        while True:
            started = self._clock()
            try:
                await self.scrub_once()
            except Exception:  # scrub_once logs its own errors; this is a last resort
                log.exception("scrubber: pass failed")
            took = max(0.0, self._clock() - started)
            await self._sleep(max(0.0, self.interval - took))
