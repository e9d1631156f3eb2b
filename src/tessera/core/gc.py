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
volume scan of the durable-storage work reclaims it.
"""

from __future__ import annotations

import asyncio
import logging

from tessera.common.clock import Clock, SystemClock
from tessera.data.contract import DataStore
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

    async def run(self, interval: float) -> None:
        """Collect every ``interval`` seconds until cancelled. A failing pass is
        logged and retried at the next interval."""
        while True:
            try:
                n = await self.collect()
                if n:
                    log.info("garbage collection deleted %d blocks", n)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("garbage collection pass failed")
            await asyncio.sleep(interval)
