"""Weighted rendezvous placement: deterministic, balanced, minimal movement."""

from __future__ import annotations

from collections import Counter

import blake3

from tessera.data.placement import first, rank

KEYS = [blake3.blake3(str(i).encode()).hexdigest() for i in range(10_000)]
SIX = [f"disk{i}-{i * 7919:04x}" for i in range(6)]


def firsts(volumes: list[str] | dict[str, float]) -> list[str]:
    return [rank(k, volumes)[0] for k in KEYS]


def test_deterministic_and_independent_of_list_order() -> None:
    for k in KEYS[:200]:
        order = rank(k, SIX)
        assert sorted(order) == sorted(SIX)
        assert rank(k, list(reversed(SIX))) == order
        assert rank(k, dict.fromkeys(SIX, 1.0)) == order
        assert first(k, SIX, 2) == order[:2]


def test_balanced_within_5_percent_on_6_volumes() -> None:
    """The brief's check. Note: with 10,000 keys a volume's count has a binomial
    sigma of 2.2 % of the mean, so 5 % is ~2.2 sigma: about 1 random id set in 5
    exceeds it on one volume. These ids pass; the tests below check uniformity in
    a way that does not depend on the ids chosen."""
    counts = Counter(firsts(SIX))
    mean = len(KEYS) / len(SIX)
    assert set(counts) == set(SIX)
    assert all(abs(c - mean) <= 0.05 * mean for c in counts.values()), counts


def test_uniform_for_any_ids_chi_square() -> None:
    for n in range(5):
        ids = [blake3.blake3(f"set{n}-vol{i}".encode()).hexdigest()[:12] for i in range(6)]
        counts = Counter(rank(k, ids)[0] for k in KEYS[:6000])
        chi2 = sum((c - 1000) ** 2 / 1000 for c in counts.values())
        assert chi2 < 20.5, (ids, counts)  # p = 0.001 for 5 degrees of freedom


def test_balanced_within_3_5_percent_on_50k_keys() -> None:
    counts = Counter(rank(str(i), SIX)[0] for i in range(50_000))  # sigma = 1 % of the mean
    assert all(abs(c - 50_000 / 6) <= 0.035 * 50_000 / 6 for c in counts.values()), counts


def test_second_choices_are_balanced_too() -> None:
    counts = Counter(rank(k, SIX)[1] for k in KEYS)
    mean = len(KEYS) / len(SIX)
    assert all(abs(c - mean) <= 0.06 * mean for c in counts.values()), counts


def test_adding_a_volume_moves_only_keys_to_it() -> None:
    before = firsts(SIX)
    after = firsts([*SIX, "disk-new"])
    moved = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    assert all(a == "disk-new" for _, a in moved)
    assert 0.8 / 7 <= len(moved) / len(KEYS) <= 1.2 / 7


def test_removing_a_volume_moves_only_its_keys() -> None:
    before = firsts(SIX)
    after = firsts(SIX[1:])
    for b, a in zip(before, after, strict=True):
        assert a == b or b == SIX[0]


def test_relative_order_of_other_volumes_is_stable() -> None:
    for k in KEYS[:500]:
        full = rank(k, [*SIX, "disk-new"])
        assert [v for v in full if v != "disk-new"] == rank(k, SIX)


def test_weights_scale_the_share() -> None:
    weights = {"big": 2.0, "small1": 1.0, "small2": 1.0}
    counts = Counter(firsts(weights))
    share = counts["big"] / len(KEYS)
    assert 0.47 <= share <= 0.53, counts


def test_zero_weight_is_ranked_last() -> None:
    weights = {"a": 1.0, "b": 1.0, "drained": 0.0}
    assert all(rank(k, weights)[-1] == "drained" for k in KEYS[:500])
