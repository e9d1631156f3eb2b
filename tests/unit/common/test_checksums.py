"""S3 checksums: known vectors, CRC combination against the CRC of the whole
data, composite values and ETags of multipart objects."""

from __future__ import annotations

import base64
import hashlib
import random
import zlib

import crc32c
import pytest

from tessera.common.checksums import (
    ALGORITHMS,
    MultiHasher,
    checksum_b64,
    checksum_type_of,
    combine_crcs,
    composite_checksum,
    multipart_etag,
    multipart_etag_of,
)

CRCS = ("CRC32", "CRC32C", "CRC64NVME")


def b64int(value: int, width: int) -> str:
    return base64.b64encode(value.to_bytes(width, "big")).decode()


def test_check_values() -> None:
    """The catalogued check value of each CRC (CRC of b"123456789")."""
    assert checksum_b64("CRC32", b"123456789") == b64int(0xCBF43926, 4)
    assert checksum_b64("CRC32C", b"123456789") == b64int(0xE3069283, 4)
    assert checksum_b64("CRC64NVME", b"123456789") == b64int(0xAE8B14860A799888, 8)


def test_against_reference_libraries() -> None:
    data = random.Random(1).randbytes(100_003)
    assert checksum_b64("CRC32", data) == b64int(zlib.crc32(data), 4)
    assert checksum_b64("CRC32C", data) == b64int(crc32c.crc32c(data), 4)
    assert checksum_b64("SHA1", data) == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert checksum_b64("SHA256", data) == base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_s3_documented_crc64nvme_value() -> None:
    # 1024 bytes of "A", the value the ceph s3-tests suite expects from S3.
    assert checksum_b64("CRC64NVME", b"A" * 1024) == "Qeh8oXvGiSo="


@pytest.mark.parametrize("algorithm", CRCS)
def test_streaming_equals_one_shot(algorithm: str) -> None:
    data = random.Random(2).randbytes(70_000)
    h = MultiHasher([algorithm])
    view = memoryview(bytearray(data))
    for i in range(0, len(data), 4099):
        h.update(view[i : i + 4099])
    assert h.checksums() == {algorithm: checksum_b64(algorithm, data)}


@pytest.mark.parametrize("algorithm", CRCS)
@pytest.mark.parametrize("seed", range(8))
def test_combine_equals_crc_of_whole(algorithm: str, seed: int) -> None:
    rng = random.Random(seed)
    pieces = [rng.randbytes(rng.choice([0, 1, 7, 64, 1000, 65_537, 300_000])) for _ in range(6)]
    combined = combine_crcs(algorithm, [(checksum_b64(algorithm, p), len(p)) for p in pieces])
    assert combined == checksum_b64(algorithm, b"".join(pieces))


def test_combine_edge_cases() -> None:
    assert combine_crcs("CRC32", []) == checksum_b64("CRC32", b"")
    one = b"only piece"
    assert combine_crcs("CRC32C", [(checksum_b64("CRC32C", one), len(one))]) == checksum_b64(
        "CRC32C", one
    )
    # Order matters: a combination is not a sum.
    a, b = b"first piece", b"second"
    ca, cb = checksum_b64("CRC32", a), checksum_b64("CRC32", b)
    assert combine_crcs("CRC32", [(cb, len(b)), (ca, len(a))]) != checksum_b64("CRC32", a + b)


def test_combine_refuses_what_is_not_a_crc() -> None:
    with pytest.raises(ValueError):
        combine_crcs("SHA256", [(checksum_b64("SHA256", b"x"), 1)])
    with pytest.raises(ValueError):
        combine_crcs("CRC32", [("not base64!", 3)])
    with pytest.raises(ValueError):  # a CRC64 value where a CRC32 is due
        combine_crcs("CRC32", [(checksum_b64("CRC64NVME", b"x"), 1)])


def test_s3_tests_multipart_vectors() -> None:
    """Three 5 MiB parts of "A", "B", "C": the part and FULL_OBJECT / COMPOSITE
    values the ceph s3-tests expect from S3."""
    parts = [c * (5 << 20) for c in (b"A", b"B", b"C")]

    def full(algorithm: str) -> str:
        return combine_crcs(algorithm, [(checksum_b64(algorithm, p), len(p)) for p in parts])

    assert full("CRC32") == "WgDhBQ=="
    assert full("CRC32C") == "xU+Krw=="
    assert full("CRC64NVME") == "i+6LR0y3eFo="
    sha = [checksum_b64("SHA256", p) for p in parts]
    assert sha[0] == "275VF5loJr1YYawit0XSHREhkFXYkkPKGuoK0x9VKxI="
    assert composite_checksum("SHA256", sha) == "uWBwpe1dxI4Vw8Gf0X9ynOdw/SS6VBzfWm9giiv1sf4=-3"


def test_multipart_etags() -> None:
    md5s = [hashlib.md5(p).digest() for p in (b"a", b"b")]
    etag = multipart_etag(md5s)
    assert etag == hashlib.md5(b"".join(md5s)).hexdigest() + "-2"
    assert multipart_etag_of([f'"{m.hex()}"' for m in md5s]) == etag
    assert multipart_etag_of(["zz"]) is None


def test_checksum_type_of() -> None:
    assert checksum_type_of("abc=-3") == "COMPOSITE"
    assert checksum_type_of("abc=") == "FULL_OBJECT"
    assert set(CRCS) <= set(ALGORITHMS)
