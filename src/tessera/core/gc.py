"""Garbage collection of blocks nobody references any more.

The metadata store counts references to every ``(volume, block)`` pair and
remembers when a count dropped to zero (deleting or overwriting an object,
aborting an upload, dropping a replaced part). Blocks are content-addressed and
shared (dedup), so a block at zero may be stored again at any moment by a writer
that has not committed its manifest yet. Two rules make deletion safe:

* **Grace delay.** Only blocks whose count has been zero for ``grace`` seconds
  are claimed. ``grace`` must exceed the longest time a writer holds a block
  before committing the manifest that names it (one PUT, one part upload).
* **mtime check.** Every store of a block moves its mtime forward, even when the
  block already existed. A claimed block is deleted only if its mtime is older
  than the cut-off, so a writer that deduplicated onto it within the grace window
  keeps it.

Claiming forgets the pairs in the same transaction (so two collectors never
both act on one pair); a block whose deletion fails is left on disk, where the
orphan scan reclaims it.

**Orphans.** A writer that dies between storing fragments and committing the
manifest (``kill -9`` of a gateway mid-upload) leaves blocks no row knows about.
:meth:`GarbageCollector.collect_orphans` lists every volume's blocks, asks the
metadata store which it knows (:meth:`MetadataStore.known_blocks`) and deletes
the unknown ones stored more than ``grace`` seconds ago, with the same mtime
check. Deletes go to the volumes' trash, so a mistake is recoverable for a day.
Blocks of the content-addressed block API (``<md5>.cas``, :mod:`tessera.core.blocks`)
are never orphans: no manifest names them, their owners hold signed locators, and
only an explicit DELETE removes them; the scan skips them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from tessera.common.clock import Clock, SystemClock
from tessera.data.contract import DataStore
from tessera.data.volume import Volume, is_content_block
from tessera.meta.store import MetadataStore

log = logging.getLogger(__name__)


class GarbageCollector:
    """Deletes blocks whose reference count has been zero for ``grace`` seconds."""

    def __init__(
        self,
        meta: MetadataStore,
        data: DataStore,
        *,
        grace: float,
        clock: Clock | None = None,
        batch: int = 1000,
    ) -> None:
        if grace < 0 or batch <= 0:
            raise ValueError("grace must be >= 0 and batch > 0")
        self.meta = meta
        self.data = data
        self.grace = grace
        self.clock = clock or SystemClock()
        self.batch = batch
        self.deleted_total = 0

    async def collect(self) -> int:
        """One pass: claim and delete every block at zero since before
        ``now - grace``. Returns how many block files were deleted (claimed blocks
        that were missing or stored again since are not counted)."""
        cutoff = self.clock.now() - self.grace
        deleted = 0
        while True:
            refs = await self.meta.claim_garbage(cutoff, self.batch)
            if not refs:
                break
            deleted += await self.data.delete_blocks(refs, older_than=cutoff)
            if len(refs) < self.batch:
                break
        self.deleted_total += deleted
        return deleted

    async def collect_orphans(self) -> int:
        """One scan of every volume for *orphans*: blocks the metadata store has no
        row for (a writer stored them and died before committing), stored more
        than ``grace`` seconds ago. Each is deleted with ``older_than`` the
        cut-off, so one stored again since is kept. Returns how many were deleted;
        a volume that fails is logged and skipped."""
        volumes = getattr(self.data, "volumes", {})
        deleted = 0
        for vid, vol in dict(volumes).items():
            try:
                deleted += await self._orphans_of(vid, vol)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("orphan scan of volume %s failed: %s", vid, e)
        self.deleted_total += deleted
        return deleted

    async def _orphans_of(self, vid: str, vol: Volume) -> int:
        cutoff = self.clock.now() - self.grace
        deleted = 0
        batch: list[str] = []

        async def flush() -> int:
            known = await self.meta.known_blocks(vid, batch)
            n = 0
            for name in batch:
                if name in known:
                    continue
                st = await vol.stat(name)
                if st is not None and st[1] < cutoff:
                    n += await vol.delete(name, older_than=cutoff)
            batch.clear()
            return n

        async for name in vol.blocks():
            if is_content_block(name):
                continue
            batch.append(name)
            if len(batch) >= self.batch:
                deleted += await flush()
        if batch:
            deleted += await flush()
        if deleted:
            log.info("volume %s: %d orphan block(s) deleted", vid, deleted)
        return deleted

    async def run(
        self,
        interval: float,
        orphan_interval: float | None = None,
        leader: Callable[[], bool] = lambda: True,
    ) -> None:
        """Collect every ``interval`` seconds until cancelled, and scan for orphans
        every ``orphan_interval`` seconds (never when None) while ``leader()`` is
        true (one process of a cluster: see :mod:`tessera.core.lease`). A failing
        pass is logged and retried at the next interval."""
        loop = asyncio.get_running_loop()
        next_orphans = loop.time() + (orphan_interval or 0.0)
        while True:
            try:
                n = await self.collect()
                if n:
                    log.info("garbage collection deleted %d blocks", n)
                if orphan_interval is not None and loop.time() >= next_orphans and leader():
                    next_orphans = loop.time() + orphan_interval
                    await self.collect_orphans()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("garbage collection pass failed")
            await asyncio.sleep(interval)
