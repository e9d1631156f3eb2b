"""The cluster map: chunk servers, their disks, their state (DESIGN.md §1, §5).

The map lives in the metadata store (the only source of truth; no consensus of
our own). A chunk server *registers* once at start-up (its id, URL, zone and
disks) and then *heartbeats* every few seconds with fresh disk capacities.
Gateways read the map to build a :class:`tessera.data.topology.Topology`: a
server whose last heartbeat is older than the gateway's timeout is treated as
down (skipped at write time, tried last at read time).

``state`` is the operator's intent, never changed by heartbeats:

* ``active``: takes new fragments and serves reads;
* ``draining``: serves reads, takes no new fragments; the rebalancer moves its
  fragments elsewhere (``tessera admin server drain``);
* ``removed``: gone for good; its fragments count as lost and are rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tessera.model.manifest import Manifest

SERVER_STATES = ("active", "draining", "removed")


@dataclass(frozen=True, slots=True)
class DiskInfo:
    """One disk (block volume) of a chunk server."""

    id: str
    """Volume id, unique in the cluster; manifests name fragments' disks by it."""
    weight: float = 1.0
    """Placement weight (share of new fragments); 0 takes none."""
    total: int = 0
    """Capacity in bytes, as last reported."""
    free: int = 0
    """Free bytes usable for blocks, as last reported."""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """One chunk server as recorded in the cluster map."""

    id: str
    url: str
    """Base URL of its block API, e.g. ``http://127.0.0.1:9101``."""
    zone: str = "default"
    disks: tuple[DiskInfo, ...] = ()
    state: str = "active"
    """One of :data:`SERVER_STATES`."""
    heartbeat: float = 0.0
    """Time of the last registration or heartbeat (unix seconds)."""
    registered: float = 0.0
    """Time of the first registration (unix seconds)."""


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """A stored row whose data is a manifest (an object version or an upload part),
    as returned by the metadata store's manifest scan."""

    kind: str
    """``version`` or ``part``."""
    cursor: str
    """Opaque, totally ordered position of the row in the scan (pass it as ``after``)."""
    manifest: Manifest
    text: str
    """The manifest exactly as stored; :meth:`replace_manifest` compares it."""


@dataclass(frozen=True, slots=True)
class SharedStatus:
    """A named status document every process over one metadata store can read:
    the counters of background work (a healing pass, a scrub pass) as the
    process doing it last published them."""

    name: str
    holder: str
    """Which process published it (host:pid)."""
    body: dict[str, Any]
    """The document (JSON object)."""
    updated: float
    """Epoch seconds of the publication."""
