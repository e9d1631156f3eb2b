"""Garbage collection against a real server: blocks of deleted or overwritten
objects are removed after the grace delay, never while another object (dedup)
still references them, and not before the delay has passed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import harness

SIZE = 3 << 20  # several segments at a 1 MiB segment size


def _wait_for_blocks(server: harness.Server, want: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while (n := harness.block_count(server)) != want and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


def test_unreferenced_blocks_are_collected(tmp_path: Path) -> None:
    env = {
        "TESSERA_STORAGE_GC_GRACE": "0",
        "TESSERA_STORAGE_GC_INTERVAL": "0.1",
        "TESSERA_STORAGE_SEGMENT_SIZE": "1MiB",
    }
    with harness.start_server(tmp_path / "data", env=env) as server:
        s3 = harness.boto3_client(server)
        s3.create_bucket(Bucket="gcb")
        shared, other = os.urandom(SIZE), os.urandom(SIZE)
        s3.put_object(Bucket="gcb", Key="a", Body=shared)
        s3.put_object(Bucket="gcb", Key="b", Body=shared)  # dedup: the same 3 blocks
        assert harness.block_count(server) == 3
        s3.delete_object(Bucket="gcb", Key="a")
        time.sleep(0.5)  # several passes
        assert harness.block_count(server) == 3
        assert s3.get_object(Bucket="gcb", Key="b")["Body"].read() == shared

        s3.put_object(Bucket="gcb", Key="b", Body=other)  # overwrite drops the old blocks
        assert _wait_for_blocks(server, 3) == 3
        assert s3.get_object(Bucket="gcb", Key="b")["Body"].read() == other

        upload = s3.create_multipart_upload(Bucket="gcb", Key="mp")["UploadId"]
        s3.upload_part(Bucket="gcb", Key="mp", UploadId=upload, PartNumber=1, Body=os.urandom(SIZE))
        assert harness.block_count(server) == 6
        s3.abort_multipart_upload(Bucket="gcb", Key="mp", UploadId=upload)
        s3.delete_object(Bucket="gcb", Key="b")
        assert _wait_for_blocks(server, 0) == 0


def test_blocks_wait_for_the_grace_delay(tmp_path: Path) -> None:
    env = {"TESSERA_STORAGE_GC_GRACE": "3600", "TESSERA_STORAGE_GC_INTERVAL": "0.1"}
    with harness.start_server(tmp_path / "data", env=env) as server:
        s3 = harness.boto3_client(server)
        s3.create_bucket(Bucket="gcb")
        s3.put_object(Bucket="gcb", Key="a", Body=os.urandom(SIZE))
        blocks = harness.block_count(server)
        assert blocks > 0
        s3.delete_object(Bucket="gcb", Key="a")
        time.sleep(0.5)
        assert harness.block_count(server) == blocks
