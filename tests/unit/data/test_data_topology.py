"""Cluster placement over zones, servers and disks (tessera.data.topology)."""

from __future__ import annotations

import math
from collections import Counter
from functools import cache

import blake3
import pytest

from tessera.data.topology import NotEnoughDisks, Topology, place, probe_order
from tessera.model.errors import Unavailable

KEYS = [blake3.blake3(str(i).encode()).hexdigest() for i in range(10_000)]
FEW = KEYS[:4000]  # movement tests: enough for +-1 % on shares, fast

Layout = dict[str, dict[str, dict[str, float]]]


def layout(zones: int, servers: int, disks: int, weight: float = 1.0) -> Layout:
    return {
        f"z{z}": {
            f"z{z}s{s}": {f"z{z}s{s}d{d}": weight for d in range(disks)} for s in range(servers)
        }
        for z in range(zones)
    }


def reversed_layout(lay: Layout) -> Layout:
    return {
        z: {s: dict(reversed(d.items())) for s, d in reversed(sv.items())}
        for z, sv in reversed(lay.items())
    }


@cache
def placements(t: Topology, n: int, count: int) -> list[list[str]]:
    return [place(k, t, n) for k in KEYS[:count]]


def shares_vs_weights(t: Topology, n: int) -> dict[str, float]:
    """Each disk's share of all fragments divided by its weight share, minus 1."""
    counts = Counter(d for p in placements(t, n, len(KEYS)) for d in p)
    total_w = sum(d.weight for d in t.disks())
    total = sum(counts.values())
    return {d.id: (counts[d.id] / total) / (d.weight / total_w) - 1 for d in t.disks()}


def moved(before: list[list[str]], after: list[list[str]]) -> list[str]:
    """Disks that received a fragment they did not hold (set comparison per segment)."""
    return [d for b, a in zip(before, after, strict=True) for d in a if d not in b]


SIX = Topology.build(layout(3, 2, 2))  # 6 servers in 3 zones, 12 disks
BIG = Topology.build(layout(4, 3, 2))  # 12 servers in 4 zones, 24 disks


def test_deterministic_and_independent_of_input_order() -> None:
    rev = Topology.build(reversed_layout(layout(4, 3, 2)))
    for k in KEYS[:300]:
        p = place(k, BIG, 6)
        assert p == place(k, BIG, 6) == place(k, rev, 6)
        assert len(set(p)) == 6
        assert probe_order(k, BIG) == probe_order(k, rev)


def test_six_servers_three_zones_two_per_zone_one_per_server() -> None:
    for p in placements(SIX, 6, 2000):
        assert Counter(SIX.zone_of(d) for d in p) == {"z0": 2, "z1": 2, "z2": 2}
        assert len({SIX.server_of(d) for d in p}) == 6


def test_distinct_zones_first_then_even_spread() -> None:
    for k in KEYS[:1000]:
        # n <= zones: all zones distinct; n=6 over 4 zones: at most ceil(6/4) = 2 per zone
        assert len({BIG.zone_of(d) for d in place(k, BIG, 4)}) == 4
        per_zone = Counter(BIG.zone_of(d) for d in place(k, BIG, 6))
        assert max(per_zone.values()) == math.ceil(6 / 4)
        assert len({BIG.server_of(d) for d in place(k, BIG, 12)}) == 12


def test_uneven_zones_spread_as_evenly_as_capacity_allows() -> None:
    lay = layout(3, 2, 2)
    lay["z2"] = {"z2s0": {"z2s0d0": 1.0}}  # a small zone: one disk
    t = Topology.build(lay)
    for k in KEYS[:500]:
        per_zone = Counter(t.zone_of(d) for d in place(k, t, 7))
        assert per_zone == {"z0": 3, "z1": 3, "z2": 1}


def test_place_is_prefix_of_probe_order() -> None:
    for k in KEYS[:500]:
        order = probe_order(k, BIG)
        assert sorted(order) == sorted(d.id for d in BIG.disks())
        for n in (1, 3, 6, 9):
            assert place(k, BIG, n) == order[:n]


def test_balanced_equal_weights() -> None:
    dev = shares_vs_weights(BIG, 6)
    assert max(abs(v) for v in dev.values()) <= 0.05, dev


def test_balanced_unequal_disk_weights() -> None:
    lay = layout(3, 2, 2)
    for servers in lay.values():
        for disks in servers.values():
            disks[next(iter(disks))] = 3.0  # one disk of 3 TB, one of 1 TB per server
    dev = shares_vs_weights(Topology.build(lay), 6)
    assert max(abs(v) for v in dev.values()) <= 0.05, dev


def test_first_fragment_follows_zone_weights() -> None:
    lay = {z: servers for z, servers in layout(3, 2, 2).items()}
    for i, z in enumerate(lay):
        for disks in lay[z].values():
            for d in disks:
                disks[d] = float(i + 1)  # zone weights 4, 8, 12
    t = Topology.build(lay)
    counts = Counter(t.zone_of(place(k, t, 1)[0]) for k in KEYS)
    for i, z in enumerate(lay):
        expected = len(KEYS) * (i + 1) / 6
        assert abs(counts[z] - expected) <= 0.05 * expected, counts


def test_adding_a_server_moves_fragments_only_onto_it() -> None:
    # n a multiple of the zone count: zone quotas are fixed, so nothing else moves
    lay = layout(3, 3, 2)
    lay["z0"]["new"] = {"new-d0": 1.0, "new-d1": 1.0}
    before = placements(Topology.build(layout(3, 3, 2)), 6, len(FEW))
    after = placements(Topology.build(lay), 6, len(FEW))
    m = moved(before, after)
    on_new = sum(d.startswith("new") for p in after for d in p) / (6 * len(FEW))
    assert all(d.startswith("new") for d in m)
    assert len(m) / (6 * len(FEW)) == on_new
    # zone z0 keeps 2 of 6 fragments, now over 4 servers: the new one gets 1/4 of 1/3
    assert abs(on_new - 1 / 12) <= 0.01


def test_adding_a_server_moves_about_its_weight_share() -> None:
    # 6 fragments over 4 zones: the heavier zone now wins the extra fragment a bit
    # more often, so a few fragments move between old disks too (bounded below)
    lay = layout(4, 3, 2)
    lay["z0"]["new"] = {"new-d0": 1.0, "new-d1": 1.0}
    before = placements(BIG, 6, len(FEW))
    after = placements(Topology.build(lay), 6, len(FEW))
    m = moved(before, after)
    total = 6 * len(FEW)
    onto_new = sum(d.startswith("new") for d in m) / total
    assert abs(onto_new - 2 / 26) <= 0.015  # weight share of the new server
    assert (len(m) / total) - onto_new <= 0.01


def test_removing_a_server_moves_only_its_fragments() -> None:
    lay = layout(3, 3, 2)
    del lay["z1"]["z1s0"]
    before = placements(Topology.build(layout(3, 3, 2)), 6, len(FEW))
    after = placements(Topology.build(lay), 6, len(FEW))
    for b, a in zip(before, after, strict=True):
        lost = {d for d in b if d.startswith("z1s0")}
        assert len(set(a) - set(b)) == len(lost)


def test_down_server_is_skipped_and_nothing_else_changes() -> None:
    down = BIG.with_up("z1s0", False)
    touched = 0
    for k, b in zip(FEW, placements(BIG, 6, len(FEW)), strict=True):
        a = place(k, down, 6)
        assert len(set(a)) == 6 and not any(d.startswith("z1s0") for d in a)
        for i, d in enumerate(b):
            if d.startswith("z1s0"):
                touched += 1
                assert BIG.zone_of(a[i]) == "z1"  # the next server of the same zone
            else:
                assert a[i] == d  # same disk, same index
        assert max(Counter(BIG.zone_of(d) for d in a).values()) <= 2
    assert touched > 0
    # when it comes back up everything is where it was
    assert [place(k, down.with_up("z1s0", True), 6) for k in FEW[:200]] == placements(
        BIG, 6, len(FEW)
    )[:200]


def test_down_zone_spreads_over_the_others() -> None:
    t = SIX.with_up("z2s0", False).with_up("z2s1", False)
    for k in KEYS[:300]:
        p = place(k, t, 6)
        assert Counter(t.zone_of(d) for d in p) == {"z0": 3, "z1": 3}


def test_not_enough_disks_is_a_domain_error() -> None:
    with pytest.raises(NotEnoughDisks) as err:
        place(KEYS[0], SIX, 13)
    assert isinstance(err.value, Unavailable)
    assert (err.value.needed, err.value.placeable) == (13, 12)
    t = SIX
    for s in ("z0s0", "z0s1", "z1s0"):
        t = t.with_up(s, False)  # 6 disks left
    with pytest.raises(NotEnoughDisks):
        place(KEYS[0], t, 8)
    assert len(place(KEYS[0], t, 8, quorum=5)) == 6  # degraded but above quorum
    with pytest.raises(NotEnoughDisks):
        place(KEYS[0], t, 8, quorum=7)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        place(KEYS[0], SIX, 0)
    with pytest.raises(ValueError):
        place(KEYS[0], SIX, 4, quorum=5)
    with pytest.raises(ValueError, match="duplicate disk"):
        Topology.build({"a": {"s1": ["d"]}, "b": {"s2": ["d"]}})
    with pytest.raises(KeyError):
        SIX.with_up("nope", False)
