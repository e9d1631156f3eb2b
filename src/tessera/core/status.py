"""Status documents of background work, shared by every process over one store.

A healing pass runs in whichever process holds the cluster lease or took the
operator's request; the scrubber runs in worker 0 of a node. The operator's
``GET /_tessera/v1/admin/heal`` may reach any worker of ``tessera serve
--workers N`` or any gateway of a cluster, so the process doing the work
publishes its counters to the metadata store (:meth:`MetadataStore.put_status`)
and every process answers from there.

A :class:`StatusBoard` is one named document as one process sees it. Its
``snapshot`` (absent in a process that never does the work) returns this
process's counters as a JSON-ready dict whose ``started`` is the start time of
its current or last pass (None: it never ran one). Contracts:

* :meth:`StatusBoard.publish` writes the snapshot only when this process has
  run a pass and the snapshot changed since it last wrote it, so an idle
  process never overwrites another's document.
* :meth:`StatusBoard.run` publishes every ``interval`` seconds, and while a pass
  runs at least every ``stale_after / 3`` seconds even when nothing changed: a
  document still ``running`` that was not refreshed for ``stale_after`` seconds
  belongs to a process that stopped, and is answered as ``interrupted``.
* :meth:`StatusBoard.read` answers with the newer of the local snapshot and the
  shared document (by ``started``; the local one on a tie, being the fresher),
  plus ``holder`` (host:pid that published it), ``updated`` (epoch seconds) and
  ``interrupted``. With neither, the ``idle`` document.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from tessera.common.clock import Clock, SystemClock
from tessera.meta.store import MetadataStore

log = logging.getLogger(__name__)

INTERVAL = 2.0
"""Seconds between publications of a changed snapshot."""
STALE_AFTER = 30.0
"""Seconds after which a running pass's unrefreshed document counts as interrupted."""


def process_holder() -> str:
    """This process as a status holder: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_running(body: dict[str, Any]) -> bool:
    """Whether a document describes a pass in progress: its ``running`` flag
    where it has one, else started and not finished."""
    if "running" in body:
        return bool(body["running"])
    return body.get("started") is not None and body.get("finished") is None


class StatusBoard:
    """See the module docstring."""

    def __init__(
        self,
        meta: MetadataStore,
        name: str,
        snapshot: Callable[[], dict[str, Any]] | None = None,
        *,
        idle: dict[str, Any] | None = None,
        holder: str | None = None,
        clock: Clock | None = None,
        interval: float = INTERVAL,
        stale_after: float = STALE_AFTER,
    ) -> None:
        self.meta = meta
        self.name = name
        self.snapshot = snapshot
        self.idle = idle or {}
        self.holder = holder or process_holder()
        self.clock = clock or SystemClock()
        self.interval = interval
        self.stale_after = stale_after
        self._last: dict[str, Any] | None = None
        self._last_at = 0.0
        self._failing = False

    def _local(self) -> dict[str, Any] | None:
        """This process's snapshot, when it has run a pass."""
        snap = self.snapshot() if self.snapshot is not None else None
        return snap if snap is not None and snap.get("started") is not None else None

    async def publish(self, *, force: bool = False) -> bool:
        """Write the snapshot if this process has run a pass and it changed (or
        ``force``); returns whether it wrote. Metadata errors propagate."""
        snap = self._local()
        if snap is None or (snap == self._last and not force):
            return False
        await self.meta.put_status(self.name, self.holder, snap)
        self._last, self._last_at = snap, time.monotonic()
        return True

    async def run(self) -> None:
        """Publish every ``interval`` seconds until cancelled (see the module
        docstring). A failing store is logged once per run of failures."""
        while True:
            await asyncio.sleep(self.interval)
            last = self._last
            refresh = (
                last is not None
                and is_running(last)
                and time.monotonic() - self._last_at >= self.stale_after / 3
            )
            try:
                await self.publish(force=refresh)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if not self._failing:
                    log.warning("publishing the %s status failed: %s", self.name, e)
                self._failing = True
            else:
                self._failing = False

    async def read(self) -> dict[str, Any]:
        """The freshest view of the document (see the module docstring)."""
        now = self.clock.now()
        local = self._local()
        shared = await self.meta.get_status(self.name)
        if local is not None and (
            shared is None or (shared.body.get("started") or 0.0) <= local["started"]
        ):
            return {**local, "holder": self.holder, "updated": now, "interrupted": False}
        if shared is None:
            return {**self.idle, "holder": None, "updated": None, "interrupted": False}
        body = dict(shared.body)
        interrupted = is_running(body) and now - shared.updated > self.stale_after
        if interrupted and "running" in body:
            body["running"] = False
        return {
            **body,
            "holder": shared.holder,
            "updated": shared.updated,
            "interrupted": interrupted,
        }
