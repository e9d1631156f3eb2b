"""A gateway's view of the cluster map: topology and volumes kept in step.

:class:`ClusterWatcher` re-reads the cluster map from the metadata store every
``interval`` seconds and hands the data store a new
:class:`~tessera.data.topology.Topology` and the matching
:class:`~tessera.data.remote.RemoteVolume` s (:meth:`SegmentStore.update_cluster`):

* a server whose last heartbeat is older than ``timeout`` is **down**: writes skip
  its disks, reads try them last (no waiting for timeouts on every request);
* a **draining** server's disks get weight 0: no new fragments, reads as usual,
  the healer moves its fragments elsewhere;
* a **removed** server is left out entirely: its fragments count as gone and the
  healer rebuilds them on other disks;
* a server silent for more than ``down_out`` seconds is treated as removed until
  it heartbeats again (a machine that died for good is healed around without an
  operator; one that comes back finds its old fragments unreferenced, and the
  garbage collector deletes them after the grace delay).

If the metadata store cannot be read, the last map stays in force (a gateway
keeps serving through a database blip) and the error is logged.
"""

from __future__ import annotations

import asyncio
import logging

from tessera.common.clock import Clock, SystemClock
from tessera.data.remote import ClientPool, RemoteVolume
from tessera.data.store import SegmentStore
from tessera.data.topology import Disk, Server, Topology, Zone
from tessera.data.volume import Volume
from tessera.meta.store import MetadataStore
from tessera.model.cluster import ServerInfo

log = logging.getLogger(__name__)


def build_topology(
    servers: list[ServerInfo], now: float, timeout: float, down_out: float | None = None
) -> tuple[Topology, dict[str, str]]:
    """The topology of the ``servers`` not removed (nor silent for more than
    ``down_out`` seconds), and each disk's server URL."""
    zones: dict[str, list[Server]] = {}
    urls: dict[str, str] = {}
    for s in servers:
        if s.state == "removed" or (down_out is not None and now - s.heartbeat > down_out):
            continue
        weight_of = 0.0 if s.state == "draining" else None
        disks = tuple(Disk(d.id, d.weight if weight_of is None else weight_of) for d in s.disks)
        up = now - s.heartbeat <= timeout
        zones.setdefault(s.zone, []).append(Server(s.id, disks, up))
        urls.update((d.id, s.url) for d in s.disks)
    topo = Topology(tuple(Zone(z, tuple(v)) for z, v in sorted(zones.items())))
    return topo, urls


class ClusterWatcher:
    """Keeps ``store`` in step with the cluster map (see the module docstring)."""

    def __init__(
        self,
        meta: MetadataStore,
        store: SegmentStore,
        *,
        secret: str = "",
        interval: float = 2.0,
        timeout: float = 10.0,
        down_out: float | None = None,
        clock: Clock | None = None,
        read_timeout: float = 30.0,
    ) -> None:
        self.meta = meta
        self.store = store
        self.secret = secret
        self.interval = interval
        self.timeout = timeout
        self.down_out = down_out
        self.clock = clock or SystemClock()
        self.read_timeout = read_timeout
        self.pool = ClientPool()
        self.servers: list[ServerInfo] = []
        self._volumes: dict[tuple[str, str], RemoteVolume] = {}

    def _volume(self, url: str, disk: str) -> RemoteVolume:
        vol = self._volumes.get((url, disk))
        if vol is None:
            vol = self._volumes[(url, disk)] = RemoteVolume(
                url,
                disk,
                session=self.pool,
                secret=self.secret or None,
                read_timeout=self.read_timeout,
                connect_timeout=min(2.0, self.read_timeout / 5),
            )
        return vol

    async def refresh(self) -> Topology:
        """Read the map once and apply it; returns the new topology."""
        servers = await self.meta.list_servers()
        topo, urls = build_topology(servers, self.clock.now(), self.timeout, self.down_out)
        volumes: dict[str, Volume] = {d: self._volume(u, d) for d, u in urls.items()}
        before = {(s.id, s.up) for s in self.store.topology.servers()}
        self.store.update_cluster(topo, volumes)
        self.servers = servers
        after = {(s.id, s.up) for s in topo.servers()}
        for sid, up in sorted(after - before):
            log.info("chunk server %s is %s", sid, "up" if up else "DOWN")
        return topo

    async def run(self) -> None:
        """Refresh every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("cannot read the cluster map (keeping the last one): %s", e)

    async def close(self) -> None:
        await self.pool.close()
