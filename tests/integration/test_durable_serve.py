"""``tessera serve --disks D1,...,D6``: one process, six disks, erasure coding.

With six disks the default policy is ec/k=4,m=2: objects survive the loss of any
two disks (their block files deleted, or corrupted on disk) and read byte-exact,
ranges included; storage classes map to their configured policies."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import harness
import pytest

SEG = 1 << 20


@pytest.fixture(scope="module")
def six_disk_server(tmp_path_factory: pytest.TempPathFactory) -> harness.Server:
    root = tmp_path_factory.mktemp("six")
    disks = ",".join(str(root / f"disk{i}") for i in range(6))
    env = {
        "TESSERA_STORAGE_SEGMENT_SIZE": "1MiB",
        "TESSERA_STORAGE_CLASSES": '{"REDUCED_REDUNDANCY": "rep/n=2"}',
    }
    server = harness.start_server(root / "data", args=["--disks", disks], env=env)
    yield server
    server.stop()


def _disk_blocks(server: harness.Server, disk: int) -> list[Path]:
    assert server.data_dir is not None
    root = server.data_dir.parent / f"disk{disk}" / "blocks"
    return [p for p in root.glob("*/*") if p.is_file()]


def test_six_disks_default_to_erasure_coding(six_disk_server: harness.Server) -> None:
    s3 = harness.boto3_client(six_disk_server)
    s3.create_bucket(Bucket="ecb")
    data = os.urandom(5 * SEG + 12345)
    s3.put_object(Bucket="ecb", Key="obj", Body=data)
    counts = [len(_disk_blocks(six_disk_server, i)) for i in range(6)]
    assert counts == [6] * 6  # 6 segments x 6 fragments, one per disk each
    assert s3.get_object(Bucket="ecb", Key="obj")["Body"].read() == data
    # storage class mapped to rep/n=2: two copies of each segment
    s3.put_object(Bucket="ecb", Key="rr", Body=data[: 2 * SEG], StorageClass="REDUCED_REDUNDANCY")
    after = [len(_disk_blocks(six_disk_server, i)) for i in range(6)]
    assert sum(after) - sum(counts) == 4
    head = s3.head_object(Bucket="ecb", Key="rr")
    assert head["StorageClass"] == "REDUCED_REDUNDANCY"


def test_any_two_disks_lost_or_rotten(six_disk_server: harness.Server) -> None:
    s3 = harness.boto3_client(six_disk_server)
    s3.create_bucket(Bucket="loss")
    rng = random.Random(7)
    objects = {f"o{i}": os.urandom(rng.randint(SEG, 4 * SEG)) for i in range(4)}
    for key, data in objects.items():
        s3.put_object(Bucket="loss", Key=key, Body=data)
    assert six_disk_server.data_dir is not None
    # disk 1: every block file flipped in the middle; disk 4: wiped
    for path in _disk_blocks(six_disk_server, 1):
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 3] ^= 0x5A
        path.write_bytes(raw)
    shutil.rmtree(six_disk_server.data_dir.parent / "disk4" / "blocks")
    for key, data in objects.items():
        assert s3.get_object(Bucket="loss", Key=key)["Body"].read() == data
        for _ in range(5):
            a = rng.randrange(len(data))
            b = rng.randrange(a, len(data))
            got = s3.get_object(Bucket="loss", Key=key, Range=f"bytes={a}-{b}")["Body"].read()
            assert got == data[a : b + 1]
