"""Cluster placement: a segment's fragments spread over zones, servers and disks.

A :class:`Topology` is a value: zones hold servers, servers hold disks; a disk
has a weight (e.g. capacity in TB), a server is up or down. :func:`place` maps a
segment key and a fragment count ``n`` (``k + m`` for EC, ``N`` for replication)
to an ordered list of ``n`` distinct disk ids (DESIGN.md §4). Contracts (tested in
``tests/unit/data/test_data_topology.py``):

* **Pure and deterministic**: the result depends only on the key, ``n`` and the
  topology's content (ids, weights, up flags), never on the order of zones,
  servers or disks in it.
* **Failure domains first**: the fragments go to as many distinct zones as
  possible, then as many distinct servers as possible. With fewer zones than
  ``n`` they are spread round-robin, so no zone holds more than
  ``ceil(n / zones)`` unless the others are too small; likewise servers in a zone.
* **Weighted rendezvous at every level** (:func:`tessera.data.placement.rank`):
  zones and servers are ranked with the sum of their disks' weights, disks with
  their own weight. Hence balance (a disk's share follows its weight as far as
  the spreading rule allows) and minimal movement (adding a server changes the
  disk *set* only by moving fragments onto it; removing one moves only the
  fragments it held).
* **Down servers are skipped**: their fragments go to the next placeable disk in
  rank; every other fragment keeps its disk *and* its index.
* **Not enough disks**: :class:`NotEnoughDisks` when fewer than ``n`` disks (or
  fewer than the ``quorum`` the caller accepts) are placeable.

Index semantics: fragment ``i`` goes to the ``i``-th disk of the list. A weight
change can permute indexes among the *same* disks; the manifest records where
each fragment went, so a rebalancer compares disk sets and moves only fragments
whose disk left the set. :func:`probe_order` ranks every disk for readers that
look for fragments after a topology change; ``place(key, t, n)`` on a topology
with every server up is exactly ``probe_order(key, t)[:n]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property

from tessera.data.placement import rank
from tessera.model.errors import Unavailable


class NotEnoughDisks(Unavailable):
    """Fewer disks are placeable than the fragments (or the quorum) need."""

    def __init__(self, needed: int, placeable: int) -> None:
        super().__init__(
            f"placement needs {needed} disk(s) on up servers, only {placeable} available"
        )
        self.needed = needed
        self.placeable = placeable


@dataclass(frozen=True)
class Disk:
    """One disk (volume) of a server. ``weight`` > 0 takes a proportional share;
    ``weight`` <= 0 (draining) is ranked last and used only when nothing else is left."""

    id: str
    weight: float = 1.0


@dataclass(frozen=True)
class Server:
    """A chunk server: a failure domain inside a zone. A down server keeps its
    weight (its zone's rank does not change) but none of its disks is placeable."""

    id: str
    disks: tuple[Disk, ...]
    up: bool = True

    @property
    def weight(self) -> float:
        """Sum of the positive disk weights."""
        return sum(max(d.weight, 0.0) for d in self.disks)


@dataclass(frozen=True)
class Zone:
    """A failure domain of servers (a rack, a room, a site)."""

    id: str
    servers: tuple[Server, ...]

    @property
    def weight(self) -> float:
        """Sum of the server weights, down servers included."""
        return sum(s.weight for s in self.servers)


@dataclass(frozen=True)
class Topology:
    """Zones → servers → disks. Ids must be unique per level (disk ids across the
    whole topology, since placement returns them); :class:`ValueError` otherwise."""

    zones: tuple[Zone, ...]

    def __post_init__(self) -> None:
        for what, ids in (
            ("zone", [z.id for z in self.zones]),
            ("server", [s.id for s in self.servers()]),
            ("disk", [d.id for d in self.disks()]),
        ):
            dup = {i for i in ids if ids.count(i) > 1}
            if dup:
                raise ValueError(f"duplicate {what} id(s) in topology: {sorted(dup)}")

    @classmethod
    def build(
        cls,
        layout: Mapping[str, Mapping[str, Mapping[str, float] | Iterable[str]]],
        down: Iterable[str] = (),
    ) -> Topology:
        """From ``{zone: {server: {disk: weight}}}`` (or ``{zone: {server: [disk, ...]}}``,
        weight 1), with the servers named in ``down`` marked down."""
        down_set = set(down)

        def disks(d: Mapping[str, float] | Iterable[str]) -> tuple[Disk, ...]:
            if isinstance(d, Mapping):
                return tuple(Disk(i, float(w)) for i, w in d.items())
            return tuple(Disk(i) for i in d)

        return cls(
            tuple(
                Zone(z, tuple(Server(s, disks(d), s not in down_set) for s, d in servers.items()))
                for z, servers in layout.items()
            )
        )

    def servers(self) -> list[Server]:
        """All servers, up or down."""
        return [s for z in self.zones for s in z.servers]

    def disks(self) -> list[Disk]:
        """All disks, on up and down servers."""
        return [d for s in self.servers() for d in s.disks]

    def server_of(self, disk_id: str) -> str:
        """The id of the server holding ``disk_id`` (:class:`KeyError` if unknown)."""
        for s in self.servers():
            if any(d.id == disk_id for d in s.disks):
                return s.id
        raise KeyError(disk_id)

    def zone_of(self, disk_id: str) -> str:
        """The id of the zone holding ``disk_id`` (:class:`KeyError` if unknown)."""
        for z in self.zones:
            if any(d.id == disk_id for s in z.servers for d in s.disks):
                return z.id
        raise KeyError(disk_id)

    def with_up(self, server_id: str, up: bool) -> Topology:
        """A copy with ``server_id`` marked up or down (:class:`KeyError` if unknown)."""
        if server_id not in {s.id for s in self.servers()}:
            raise KeyError(server_id)
        return Topology(
            tuple(
                replace(
                    z,
                    servers=tuple(replace(s, up=up) if s.id == server_id else s for s in z.servers),
                )
                for z in self.zones
            )
        )

    @cached_property
    def placeable(self) -> int:
        """How many disks are on up servers."""
        return sum(len(s.disks) for s in self.servers() if s.up)

    @cached_property
    def all_up(self) -> bool:
        """Whether every server is up."""
        return all(s.up for s in self.servers())

    @cached_property
    def _levels(self) -> list[tuple[str, float, list[tuple[str, float, bool, dict[str, float]]]]]:
        """Ids and weights per level, computed once per topology for :func:`place`."""
        return [
            (
                z.id,
                z.weight,
                [(s.id, s.weight, s.up, {d.id: d.weight for d in s.disks}) for s in z.servers],
            )
            for z in self.zones
        ]


def _interleave(key: str, groups: list[tuple[str, float, list[str]]]) -> list[str]:
    """Round-robin over ``(id, weight, items)`` groups in rendezvous order of
    ``(id, weight)``: round ``j`` takes the ``j``-th item of every group that has
    one. Any prefix of the result therefore spreads over as many groups as
    possible and holds at most ``ceil(len / groups)`` items of a group unless
    the other groups ran out."""
    by_id = {gid: items for gid, _, items in groups}
    order = rank(key, {gid: w for gid, w, _ in groups})
    out: list[str] = []
    for j in range(max((len(v) for v in by_id.values()), default=0)):
        out.extend(by_id[g][j] for g in order if j < len(by_id[g]))
    return out


def _order(key: str, topology: Topology, include_down: bool) -> list[str]:
    """Every placeable disk (all disks if ``include_down``) in spread order."""
    zones = [
        (
            zid,
            zw,
            _interleave(
                key,
                [(sid, sw, rank(key, d) if up or include_down else []) for sid, sw, up, d in sv],
            ),
        )
        for zid, zw, sv in topology._levels
    ]
    return _interleave(key, zones)


def probe_order(key: str, topology: Topology) -> list[str]:
    """Every disk of ``topology`` (down servers included) ranked for ``key``:
    where a reader looks for a segment's fragments when the manifest's locations
    fail or the topology changed since the write. Fragments written with every
    server up are exactly at the front; fragments moved by skipped servers or
    topology changes are usually a few places further."""
    return _order(key, topology, include_down=True)


def place(key: str, topology: Topology, n: int, *, quorum: int | None = None) -> list[str]:
    """The ``n`` distinct disk ids, fragment index order, for segment ``key``.

    Spread over zones, then servers, then disks (see the module docstring).
    Disks on down servers are skipped; their fragments take the next placeable
    disks in rank and every other fragment keeps its disk and index. If fewer
    than ``n`` disks are placeable but at least ``quorum`` (``1 <= quorum <= n``),
    returns all placeable disks (a shorter list); below that (or below ``n``
    when ``quorum`` is None) raises :class:`NotEnoughDisks`.
    """
    if n < 1:
        raise ValueError(f"fragment count must be >= 1, got {n}")
    need = n if quorum is None else quorum
    if not 1 <= need <= n:
        raise ValueError(f"quorum must be in 1..{n}, got {quorum}")
    placeable = topology.placeable
    if placeable < need:
        raise NotEnoughDisks(need, placeable)
    actual = _order(key, topology, include_down=False)[:n]
    if topology.all_up:
        return actual
    ideal = _order(key, topology, include_down=True)[:n]
    return _keep_slots(ideal, actual)


def _keep_slots(ideal: list[str], actual: list[str]) -> list[str]:
    """``actual`` reordered so disks also in ``ideal`` keep their index there; the
    others fill the freed indexes in their ``actual`` order (trailing holes dropped)."""
    present, wanted = set(actual), set(ideal)
    fill = iter(d for d in actual if d not in wanted)
    slots = [d if d in present else next(fill, None) for d in ideal]
    return [d for d in slots if d is not None]


def spread_limit(n: int, domains: int) -> int:
    """``ceil(n / domains)``: the most fragments one of ``domains`` failure domains
    holds when ``n`` fragments are spread evenly (for callers checking a placement)."""
    return math.ceil(n / max(domains, 1))
