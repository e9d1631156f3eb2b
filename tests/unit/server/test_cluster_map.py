"""The gateway's topology from the cluster map: up, down, draining, removed, gone."""

from __future__ import annotations

from tessera.model.cluster import DiskInfo, ServerInfo
from tessera.server.cluster import build_topology

NOW = 1_000_000.0


def server(sid: str, heartbeat: float, state: str = "active", zone: str = "z") -> ServerInfo:
    return ServerInfo(sid, f"http://{sid}", zone, (DiskInfo(f"{sid}-d"),), state, heartbeat)


def test_states_and_silence() -> None:
    servers = [
        server("a", NOW - 1),
        server("b", NOW - 20),  # down: silent past the timeout
        server("c", NOW - 1, "draining"),
        server("d", NOW - 1, "removed"),
        server("e", NOW - 2000),  # down for good: past down_out
    ]
    topo, urls = build_topology(servers, NOW, timeout=10, down_out=900)
    assert {s.id: s.up for s in topo.servers()} == {"a": True, "b": False, "c": True}
    assert {d.id: d.weight for d in topo.disks()} == {"a-d": 1.0, "b-d": 1.0, "c-d": 0.0}
    assert urls == {"a-d": "http://a", "b-d": "http://b", "c-d": "http://c"}
    topo, _ = build_topology(servers, NOW, timeout=10)  # no down_out: e is only down
    assert {s.id: s.up for s in topo.servers()}["e"] is False
