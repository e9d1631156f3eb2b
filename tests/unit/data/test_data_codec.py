"""Reed-Solomon codec: both kernels give the same bytes and survive every loss of <= m."""

from __future__ import annotations

import ctypes
import itertools
import os
import random

import pytest

from tessera.data import codec
from tessera.model.errors import DataCorruption, InvalidArgument, Unavailable

ISAL_PATH = codec.find_isal()
needs_isal = pytest.mark.skipif(ISAL_PATH is None, reason="ISA-L not available")

PY = codec.PythonKernel()


def kernels() -> list[codec.Kernel]:
    found: list[codec.Kernel] = [PY]
    if ISAL_PATH is not None:
        found.append(codec.IsalKernel(ISAL_PATH))
    return found


KERNELS = kernels()
SHAPES = [(4, 2), (6, 3), (8, 4), (10, 5)]


def payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def test_gf_field_basics() -> None:
    for a in range(1, 256):
        assert codec.gf_mul(a, codec.gf_inv(a)) == 1
    assert codec.gf_mul(2, 0x80) == 0x1D  # reduction by 0x11d


@needs_isal
@pytest.mark.parametrize(("k", "m"), SHAPES)
def test_matrix_is_isal_cauchy1(k: int, m: int) -> None:
    assert ISAL_PATH is not None
    lib = ctypes.CDLL(ISAL_PATH)
    buf = ctypes.create_string_buffer((k + m) * k)
    lib.gf_gen_cauchy1_matrix(buf, k + m, k)
    assert list(buf.raw) == [v for row in codec.cauchy_matrix(k, m) for v in row]


def test_known_vector() -> None:
    """Pinned parity bytes: data written today stays readable by any future kernel."""
    frags = codec.encode(bytes(range(1, 9)), 4, 2, PY)
    assert frags[:4] == [b"\x01\x02", b"\x03\x04", b"\x05\x06", b"\x07\x08"]
    assert [f.hex() for f in frags[4:]] == ["3d90", "7d1e"]
    # parity row 4 is 1/(4^j) = [inv4, inv5, inv6, inv7] applied to byte 0 of each piece
    row = [codec.gf_inv(4 ^ j) for j in range(4)]
    expect = 0
    for coeff, byte in zip(row, [1, 3, 5, 7], strict=True):
        expect ^= codec.gf_mul(coeff, byte)
    assert frags[4][0] == expect


@pytest.mark.parametrize(("k", "m"), SHAPES)
@pytest.mark.parametrize("size", [0, 1, 3, 7, 8, 9, 10, 11, 4097, 65_537])
def test_kernels_agree_and_shape(k: int, m: int, size: int) -> None:
    data = payload(size, seed=size)
    results = [codec.encode(data, k, m, kern) for kern in KERNELS]
    assert all(r == results[0] for r in results)
    frags = results[0]
    n = codec.fragment_size(size, k)
    assert len(frags) == k + m and all(len(f) == n for f in frags)
    assert b"".join(frags[:k])[:size] == data
    assert b"".join(frags[:k])[size:] == bytes(n * k - size)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda kern: kern.name)
@pytest.mark.parametrize(("k", "m"), SHAPES)
def test_every_loss_pattern(kernel: codec.Kernel, k: int, m: int) -> None:
    size = 97 * k + 3  # odd, last piece padded
    data = payload(size)
    frags = codec.encode(data, k, m, kernel)
    for lost_count in range(m + 1):
        for lost in itertools.combinations(range(k + m), lost_count):
            have = {i: f for i, f in enumerate(frags) if i not in lost}
            assert codec.decode(have, k, m, size, kernel) == data
            rebuilt = codec.reconstruct(have, k, m, list(lost), kernel)
            assert rebuilt == {i: frags[i] for i in lost}


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5])
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda kern: kern.name)
def test_tiny_sizes_around_k(kernel: codec.Kernel, size: int) -> None:
    data = payload(size)
    frags = codec.encode(data, 4, 2, kernel)
    assert codec.decode({1: frags[1], 2: frags[2], 4: frags[4], 5: frags[5]}, 4, 2, size) == data


def test_one_mib_cross_kernel() -> None:
    data = payload(1 << 20)
    frags = codec.encode(data, 4, 2, KERNELS[-1])
    assert frags == codec.encode(data, 4, 2, PY)
    have = {2: frags[2], 3: frags[3], 4: frags[4], 5: frags[5]}
    for kern in KERNELS:
        assert codec.decode(have, 4, 2, len(data), kern) == data


def test_accepts_bytes_like_segment() -> None:
    data = payload(1000)
    assert codec.encode(bytearray(data), 4, 2) == codec.encode(memoryview(data), 4, 2)


def test_too_few_fragments() -> None:
    frags = codec.encode(payload(100), 4, 2)
    with pytest.raises(Unavailable):
        codec.decode({0: frags[0], 1: frags[1], 5: frags[5]}, 4, 2, 100)
    with pytest.raises(Unavailable):
        codec.reconstruct({0: frags[0]}, 4, 2, [1])


def test_unequal_or_short_fragments() -> None:
    frags = codec.encode(payload(100), 4, 2)
    have = dict(enumerate(frags[:4]))
    have[3] = have[3][:-1]
    with pytest.raises(DataCorruption, match="unequal"):
        codec.decode(have, 4, 2, 100)
    with pytest.raises(DataCorruption):
        codec.decode(dict(enumerate(frags)), 4, 2, 200)


def test_bad_shape_or_index() -> None:
    with pytest.raises(InvalidArgument):
        codec.encode(b"x", 0, 2)
    with pytest.raises(InvalidArgument):
        codec.encode(b"x", 200, 100)
    frags = codec.encode(payload(10), 4, 2)
    with pytest.raises(InvalidArgument):
        codec.decode({**dict(enumerate(frags)), 9: frags[0]}, 4, 2, 10)
    with pytest.raises(InvalidArgument):
        codec.reconstruct(dict(enumerate(frags)), 4, 2, [6])


def test_select_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    assert codec.select_kernel("python").name == "python"
    monkeypatch.setenv("TESSERA_CODEC", "python")
    assert codec.select_kernel().name == "python"
    with pytest.raises(InvalidArgument):
        codec.select_kernel("nope")
    if ISAL_PATH is not None:
        assert codec.select_kernel("isal").name == "isal"
        assert codec.select_kernel("auto").name == "isal"


@pytest.mark.parametrize("name", ["isal", "python"])
def test_encode_into_given_parity_buffers(name: str) -> None:
    try:
        kernel = codec.select_kernel(name)
    except OSError:
        pytest.skip("ISA-L not available")
    segment = bytearray(os.urandom(10_001))
    want = codec.encode(bytes(segment), 4, 2, kernel)
    n = codec.fragment_size(len(segment), 4)
    parity = [bytearray(n + 100), bytearray(n + 100)]  # larger pooled buffers
    got = codec.encode(segment, 4, 2, kernel, parity)
    assert [bytes(f) for f in got] == [bytes(f) for f in want]
    assert all(bytes(parity[i][:n]) == bytes(want[4 + i]) for i in range(2))
