"""Fault tests of a real cluster: six chunk server processes and a gateway on
127.0.0.1, one SQLite metadata file. For ec/k=4,m=2 (the default with six
servers) and rep/n=3 (storage class REDUCED_REDUNDANCY here):

* two servers killed: every object still reads byte-exact, ranges included;
* a third killed: EC writes answer 503 and store nothing; reads fail clearly,
  never with wrong bytes;
* servers restarted and a heal pass run: ``tessera admin verify`` reports full
  redundancy;
* bytes flipped inside a fragment file: reads stay right; the scrubber
  quarantines it and healing rewrites it;
* a server killed during an upload: the upload completes with quorum or fails,
  never visible half-written;
* ``kill -9`` of the gateway mid-upload: no partial object after restart;
* a full disk: writes go to other servers.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness
import pytest
from botocore.exceptions import ClientError
from cluster import Cluster, admin_cli, check_reads, put_many, wait_until

SEG = 1 << 20
POLICIES = {"ec": "STANDARD", "rep": "REDUCED_REDUNDANCY"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(
        tmp_path,
        env={
            "TESSERA_STORAGE_SEGMENT_SIZE": "1MiB",
            "TESSERA_STORAGE_CLASSES": '{"REDUCED_REDUNDANCY": "rep/n=3"}',
            "TESSERA_STORAGE_HEAL_INTERVAL": "3600",
        },
    )
    try:
        yield c
    finally:
        c.stop()


def _client(c: Cluster) -> Any:
    assert c.gateway is not None
    return harness.boto3_client(c.gateway)


def _read_or_fail(s3: Any, bucket: str, key: str, data: bytes) -> bool:
    """True if the object read right; False if the read failed. Never wrong bytes."""
    try:
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception:  # an S3 error, or the connection cut mid-body
        return False
    assert got == data, (
        f"{key}: wrong bytes returned ({len(got)} of {len(data)}; prefix ok: {data.startswith(got)})"
    )
    return True


def _admin_cli(c: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    assert c.gateway is not None
    return admin_cli(c.gateway, *args)


@pytest.mark.parametrize("policy", ["ec", "rep"])
def test_kill_two_then_three_then_heal(cluster: Cluster, policy: str) -> None:
    cluster.start(6)
    s3 = _client(cluster)
    s3.create_bucket(Bucket="faults")
    sc = POLICIES[policy]
    objects = put_many(s3, "faults", storage_class=sc)

    cluster.kill(1)
    cluster.kill(4)
    check_reads(s3, "faults", objects)  # at once, before the gateway notices
    cluster.wait_for_servers(2, up=False)
    check_reads(s3, "faults", objects)
    more = put_many(s3, "faults", storage_class=sc, n=2, seed=3) if policy == "rep" else {}
    if policy == "ec":  # 4 servers up, k+1 = 5 needed
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket="faults", Key="new", Body=os.urandom(2 * SEG), StorageClass=sc)
        assert info.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert (
            "needs 5 disk(s) on up servers, 4 available" in info.value.response["Error"]["Message"]
        )
        listed = s3.list_objects_v2(Bucket="faults").get("Contents", [])
        assert "new" not in {o["Key"] for o in listed}

    cluster.kill(2)
    cluster.wait_for_servers(3, up=False)
    readable = [_read_or_fail(s3, "faults", k, v) for k, v in objects.items()]
    if policy == "ec":
        assert not any(readable)  # 3 of 6 fragments left, 4 needed: errors, never bytes

    cluster.start_chunkservers([1, 2, 4])
    cluster.wait_for_servers(6)
    check_reads(s3, "faults", {**objects, **more})
    result = _admin_cli(cluster, "heal", "run", "--json")
    assert result.returncode == 0, result.stderr
    verify = _admin_cli(cluster, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "full redundancy: yes" in verify.stdout


@pytest.mark.parametrize("policy", ["ec", "rep"])
def test_flipped_bytes_are_read_around_scrubbed_and_healed(cluster: Cluster, policy: str) -> None:
    cluster.start(6)
    s3 = _client(cluster)
    s3.create_bucket(Bucket="rot")
    objects = put_many(
        s3, "rot", storage_class=POLICIES[policy], n=2, sizes=(SEG // 2, 3 * SEG + 7)
    )
    victims = cluster.servers[0].blocks() + cluster.servers[3].blocks()
    for path in victims:
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 4] ^= 0xFF
        path.write_bytes(raw)
    check_reads(s3, "rot", objects)
    # the scrubber of a restarted server (fast schedule) quarantines the rotten blocks
    cluster.kill(0)
    cluster.start_chunkserver(
        0, {"TESSERA_STORAGE_SCRUB_INTERVAL": "0.5", "TESSERA_STORAGE_SCRUB_RATE": "1GiB"}
    )
    quarantine = cluster.servers[0].disk / "quarantine"
    expected = len(cluster.servers[0].blocks())
    wait_until("the scrubber quarantines", lambda: len(list(quarantine.glob("*"))) >= expected)
    cluster.wait_for_servers(6)
    assert _admin_cli(cluster, "verify", "--deep").returncode == 1  # cs3's rot, cs0's holes
    assert _admin_cli(cluster, "heal", "run").returncode == 0
    verify = _admin_cli(cluster, "verify", "--deep")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    check_reads(s3, "rot", objects)


@pytest.mark.parametrize(
    ("policy", "size"),
    [
        ("ec", 64 * SEG),
        ("rep", 64 * SEG),
        pytest.param("ec", 1024 * SEG, marks=pytest.mark.slow),
        pytest.param("rep", 1024 * SEG, marks=pytest.mark.slow),
    ],
)
def test_server_killed_during_an_upload(cluster: Cluster, policy: str, size: int) -> None:
    cluster.start(6)
    s3 = _client(cluster)
    s3.create_bucket(Bucket="mid")
    data = os.urandom(size)
    outcome: dict[str, Any] = {}

    def upload() -> None:
        try:
            s3.put_object(Bucket="mid", Key="big", Body=data, StorageClass=POLICIES[policy])
            outcome["ok"] = True
        except Exception as e:
            outcome["error"] = e

    t = threading.Thread(target=upload)
    t.start()
    wait_until("fragments written", lambda: sum(len(s.blocks()) for s in cluster.servers) > 12)
    cluster.kill(3)
    t.join(600)
    assert not t.is_alive()
    if outcome.get("ok"):
        assert s3.get_object(Bucket="mid", Key="big")["Body"].read() == data
    else:
        with pytest.raises(ClientError):
            s3.head_object(Bucket="mid", Key="big")


def test_gateway_killed_mid_upload_leaves_no_object(cluster: Cluster) -> None:
    cluster.env["TESSERA_STORAGE_GC_GRACE"] = "1"
    cluster.env["TESSERA_STORAGE_GC_INTERVAL"] = "0.2"
    cluster.env["TESSERA_STORAGE_ORPHAN_INTERVAL"] = "0.5"
    cluster.start(6)
    s3 = _client(cluster)
    s3.create_bucket(Bucket="gwb")
    assert cluster.gateway is not None

    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": "gwb", "Key": "half"}, ExpiresIn=600
    )
    conn = http.client.HTTPConnection(cluster.gateway.host, cluster.gateway.port, timeout=60)
    conn.putrequest("PUT", url.split(str(cluster.gateway.port), 1)[1], skip_accept_encoding=True)
    conn.putheader("Content-Length", str(40 * SEG))
    conn.endheaders()

    def send_slowly() -> None:
        with contextlib.suppress(OSError):
            for _ in range(40):
                conn.send(os.urandom(SEG))
                time.sleep(0.05)

    t = threading.Thread(target=send_slowly)
    t.start()
    wait_until("fragments written", lambda: sum(len(s.blocks()) for s in cluster.servers) > 6)
    assert cluster.gateway is not None
    cluster.gateway.stop(9)
    t.join(60)
    cluster.start_gateway()
    s3 = _client(cluster)
    with pytest.raises(ClientError):
        s3.head_object(Bucket="gwb", Key="half")
    assert "Contents" not in s3.list_objects_v2(Bucket="gwb")
    # the fragments the dead gateway wrote are orphans: collected after the grace
    wait_until(
        "orphans collected",
        lambda: sum(len(s.blocks()) for s in cluster.servers) == 0,
        timeout=30,
    )


@pytest.mark.parametrize("policy", ["ec", "rep"])
def test_full_server_is_skipped(cluster: Cluster, policy: str) -> None:
    cluster.start_gateway()
    cluster.start_chunkservers(list(range(6)))
    cluster.start_chunkserver(6, {"TESSERA_STORAGE_MIN_FREE": "1000000GiB"})  # always full
    cluster.wait_for_servers(7)
    s3 = _client(cluster)
    s3.create_bucket(Bucket="full")
    objects = put_many(
        s3, "full", storage_class=POLICIES[policy], n=6, seed=9, sizes=(SEG // 2, 3 * SEG + 7)
    )
    assert cluster.servers[6].blocks() == []
    check_reads(s3, "full", objects)
    verify = _admin_cli(cluster, "verify")
    assert verify.returncode == 0, verify.stdout


def test_a_server_gone_for_good_is_healed_around(cluster: Cluster) -> None:
    cluster.env["TESSERA_CLUSTER_DOWN_OUT"] = "3"
    cluster.start(7)
    s3 = _client(cluster)
    s3.create_bucket(Bucket="gone")
    objects = put_many(
        s3, "gone", storage_class="STANDARD", n=3, seed=5, sizes=(SEG // 2, 3 * SEG + 7)
    )
    victim = max(range(7), key=lambda i: len(cluster.servers[i].blocks()))
    cluster.kill(victim)
    time.sleep(4)  # past down_out: its fragments count as lost
    result = _admin_cli(cluster, "heal", "run", "--json")
    assert result.returncode == 0, result.stderr
    verify = _admin_cli(cluster, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    check_reads(s3, "gone", objects)


def test_a_hung_server_is_read_around(cluster: Cluster) -> None:
    cluster.env["TESSERA_CLUSTER_IO_TIMEOUT"] = "1"
    cluster.start(6)
    s3 = _client(cluster)
    s3.create_bucket(Bucket="hung")
    objects = put_many(
        s3, "hung", storage_class="STANDARD", n=2, seed=8, sizes=(SEG // 2, 3 * SEG + 7)
    )
    proc = cluster.servers[2].proc
    assert proc is not None
    proc.send_signal(signal.SIGSTOP)  # alive, accepts connections, answers nothing
    try:
        check_reads(s3, "hung", objects)
    finally:
        proc.send_signal(signal.SIGCONT)
