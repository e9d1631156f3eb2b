"""Range math of tessera.data.fragments, checked exhaustively against the real codec."""

from __future__ import annotations

import itertools
import random

import pytest

from tessera.data import codec
from tessera.data.fragments import (
    DegradedRead,
    FragmentRead,
    SegmentPiece,
    degraded_read,
    healthy_reads,
    map_object_range,
    replica_range,
)
from tessera.model.errors import InvalidArgument

KS = (1, 2, 4, 6)
MS = (1, 2, 3)


def _sizes(k: int) -> list[int]:
    return sorted({0, 1, max(k - 1, 0), k, k + 1, 2 * k + 3, 7, 13})


def _data(size: int) -> bytes:
    return random.Random(size).randbytes(size)


@pytest.mark.parametrize("k", KS)
def test_healthy_reads_join_to_range_and_touch_only_overlap(k: int) -> None:
    for size in _sizes(k):
        data = _data(size)
        frags = codec.encode(data, k, 1)
        f = codec.fragment_size(size, k)
        for a in range(size + 1):
            for b in range(a, size + 1):
                reads = healthy_reads(size, k, a, b)
                assert b"".join(frags[r.index][r.start : r.stop] for r in reads) == data[a:b]
                assert sum(r.stop - r.start for r in reads) == b - a  # only needed bytes
                assert all(r.index < k and 0 <= r.start < r.stop <= f for r in reads)
                assert [r.index for r in reads] == sorted({x // f for x in range(a, b)})


@pytest.mark.parametrize(("k", "m"), list(itertools.product(KS, MS)))
def test_degraded_read_rebuilds_range_from_column_slices(k: int, m: int) -> None:
    for size in _sizes(k):
        data = _data(size)
        frags = codec.encode(data, k, m)
        f = codec.fragment_size(size, k)
        # every loss pattern of 1..m fragments (at least one data fragment lost)
        losses = [
            set(c)
            for n in range(1, m + 1)
            for c in itertools.combinations(range(k + m), n)
            if min(c) < k
        ]
        ranges = [(a, b) for a in range(size + 1) for b in range(a, size + 1)]
        for i, (a, b) in enumerate(ranges):
            plan = degraded_read(size, k, a, b)
            assert 0 <= plan.col_start <= plan.col_stop <= f
            if a == b:
                assert plan.width == 0 and plan.trim_start == plan.trim_stop
                continue
            # a tight column range: never wider than the request unless it spans fragments
            if a // f == (b - 1) // f:
                assert plan.width == b - a
            for lost in (losses[i % len(losses)], losses[(i * 7 + 3) % len(losses)]):
                alive = [j for j in range(k + m) if j not in lost][:k]
                sliced = {j: frags[j][plan.col_start : plan.col_stop] for j in alive}
                decoded = codec.decode(sliced, k, m, plan.decoded_size)
                assert decoded[plan.trim_start : plan.trim_stop] == data[a:b], (size, a, b, lost)


def test_decode_of_column_slices_with_python_kernel() -> None:
    data = _data(13)
    frags = codec.encode(data, 4, 2)  # f = 4
    plan = degraded_read(13, 4, 9, 11)  # inside fragment 2, columns 1..3
    assert plan == DegradedRead(4, 1, 3, 4, 6)
    sliced = {j: frags[j][1:3] for j in (1, 3, 4, 5)}  # data 0 and 2 lost
    decoded = codec.decode(sliced, 4, 2, plan.decoded_size, kernel=codec.PythonKernel())
    assert decoded[plan.trim_start : plan.trim_stop] == data[9:11]


def test_examples() -> None:
    # S=10, k=4 -> f=3: fragments [0,3) [3,6) [6,9) [9,10)+pad
    assert healthy_reads(10, 4, 2, 7) == [
        FragmentRead(0, 2, 3),
        FragmentRead(1, 0, 3),
        FragmentRead(2, 0, 1),
    ]
    assert degraded_read(10, 4, 2, 7) == DegradedRead(4, 0, 3, 2, 7)
    assert degraded_read(10, 4, 9, 10) == DegradedRead(4, 0, 1, 3, 4)
    assert healthy_reads(0, 3, 0, 0) == []
    assert replica_range(5, 1, 4) == (1, 4)


def test_map_object_range_matches_brute_force() -> None:
    for sizes in ([], [0], [5], [3, 0, 4], [1, 1, 1], [4, 2, 0, 7], [0, 0, 3]):
        owner = [(i, x) for i, s in enumerate(sizes) for x in range(s)]
        total = sum(sizes)
        for a in range(total + 1):
            for b in range(a, total + 1):
                pieces = map_object_range(sizes, a, b)
                flat = [(p.segment, x) for p in pieces for x in range(p.start, p.stop)]
                assert flat == owner[a:b]
                assert all(p.start < p.stop for p in pieces)
    assert map_object_range([4, 6], 3, 8) == [SegmentPiece(0, 3, 4), SegmentPiece(1, 0, 4)]


@pytest.mark.parametrize(
    ("size", "k", "a", "b"),
    [(10, 0, 0, 1), (10, 2, -1, 3), (10, 2, 4, 3), (10, 2, 0, 11)],
)
def test_bad_arguments(size: int, k: int, a: int, b: int) -> None:
    with pytest.raises(InvalidArgument):
        healthy_reads(size, k, a, b)
    with pytest.raises(InvalidArgument):
        degraded_read(size, k, a, b)


def test_map_object_range_bad_arguments() -> None:
    with pytest.raises(InvalidArgument):
        map_object_range([3, 4], 2, 8)
    with pytest.raises(InvalidArgument):
        map_object_range([3, -1], 0, 1)
    with pytest.raises(InvalidArgument):
        replica_range(3, 2, 1)
