"""Cluster-wide jobs run by one process at a time, through leases in the metadata
store (no consensus of our own: the database arbitrates).

Several gateways share one metadata store. Work that only needs doing once per
cluster (full healing passes, scans of every disk for orphans) is gated by a
:class:`Lease`: each process tries to take or renew the named lease every
``ttl / 3`` seconds and runs the job only while it holds it. If the holder dies,
its lease expires after ``ttl`` and another process takes over. Work that is
per-process (read repair of what *this* gateway's reads found) or already safe
to overlap (claiming garbage is atomic) is not gated.

A process that loses the database keeps believing it holds the lease for at most
``ttl`` seconds; the jobs gated this way are idempotent (compare-and-swap on
manifests, mtime-guarded deletes), so an overlap wastes work but loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

from tessera.meta.store import MetadataStore

log = logging.getLogger(__name__)


def process_id() -> str:
    """An id for this process, unique in the cluster: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Lease:
    """The lease ``name``, kept by :meth:`run`; :attr:`held` says whether the
    job may run now."""

    def __init__(
        self, meta: MetadataStore, name: str, *, holder: str | None = None, ttl: float = 30.0
    ) -> None:
        if ttl <= 0:
            raise ValueError("lease ttl must be > 0")
        self.meta = meta
        self.name = name
        self.holder = holder or process_id()
        self.ttl = ttl
        self.held = False

    async def renew(self) -> bool:
        """Try once to take or renew the lease; returns and records whether held."""
        try:
            held = await self.meta.acquire_lease(self.name, self.holder, self.ttl)
        except Exception as e:  # database unreachable: assume another process runs it
            log.warning("lease %s: cannot renew (%s); pausing the job", self.name, e)
            held = False
        if held != self.held:
            log.info("lease %s %s by %s", self.name, "taken" if held else "lost", self.holder)
        self.held = held
        return held

    def __call__(self) -> bool:
        return self.held

    async def run(self) -> None:
        """Renew every ``ttl / 3`` seconds until cancelled."""
        while True:
            await self.renew()
            await asyncio.sleep(self.ttl / 3)
