"""The cluster form on PostgreSQL, the production metadata store: six chunk server
processes and two gateways on 127.0.0.1 sharing one PostgreSQL database (a fresh
database per test on a throwaway server per module; skipped when the PostgreSQL
binaries are absent).

* what one gateway writes the other reads byte-exact (ranges too) and lists; the
  ec/k=4,m=2 fragments are spread over every chunk server;
* two chunk servers killed: reads through both gateways stay right, writes answer
  503; after a restart, ``heal run`` and ``verify`` report full redundancy;
* eight threads PUT, GET and DELETE through both gateways at once: the listing is
  exactly what remains.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness
import pytest
from botocore.exceptions import ClientError
from cluster import Cluster, admin_cli, check_reads, put_many

import pgserver

SEG = 1 << 20
NO_RETRY = {"retries": {"total_max_attempts": 1}}


@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    try:
        with pgserver.postgres() as url:
            yield url
    except pgserver.Unavailable as e:
        pytest.skip(str(e))


@pytest.fixture
def cluster(tmp_path: Path, pg: str) -> Iterator[Cluster]:
    """Gateway A, six chunk servers, gateway B (``c.gateways``), all up."""
    c = Cluster(
        tmp_path,
        meta=pgserver.fresh_database(pg),
        env={"TESSERA_STORAGE_SEGMENT_SIZE": "1MiB", "TESSERA_STORAGE_HEAL_INTERVAL": "3600"},
    )
    try:
        c.start_gateway("gw-a")  # creates the schema
        c.start_chunkservers(list(range(6)))
        c.start_gateway("gw-b")
        for gw in c.gateways:
            c.wait_for_servers(6, gateway=gw)
        yield c
    finally:
        c.stop()
        for gw in c.gateways:
            if gw.stderr().strip():
                print(f"--- {gw.data_dir.name} stderr ---\n{gw.stderr()}")


def _clients(c: Cluster, **config: Any) -> tuple[Any, Any]:
    a, b = c.gateways
    return harness.boto3_client(a, **config), harness.boto3_client(b, **config)


def _put_many(s3: Any, bucket: str, n: int = 4, seed: int = 1) -> dict[str, bytes]:
    return put_many(s3, bucket, n=n, seed=seed, sizes=(2 * SEG, 4 * SEG + 7))


def _listing(s3: Any, bucket: str) -> dict[str, int]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def test_two_gateways_share_one_postgres_database(cluster: Cluster) -> None:
    s3a, s3b = _clients(cluster)
    s3a.create_bucket(Bucket="shared")
    assert "shared" in {b["Name"] for b in s3b.list_buckets()["Buckets"]}
    objects = _put_many(s3a, "shared", n=4)
    check_reads(s3b, "shared", objects)
    assert _listing(s3b, "shared") == {k: len(v) for k, v in objects.items()}
    head = s3b.head_object(Bucket="shared", Key="obj1-0")
    assert head["ContentLength"] == len(objects["obj1-0"])
    counts = [len(cs.blocks()) for cs in cluster.servers]
    assert all(counts), f"ec/k=4,m=2 over 6 servers leaves a server empty: {counts}"
    segments = sum(-(-len(v) // SEG) for v in objects.values())
    assert sum(counts) == 6 * segments, (counts, segments)  # k+m fragments per segment
    # cluster-wide background work: exactly one of the two gateways holds the lease
    holders = [gw for gw in cluster.gateways if "lease background taken" in gw.stderr()]
    assert len(holders) == 1, [gw.data_dir for gw in holders]


def test_two_servers_killed_then_healed(cluster: Cluster) -> None:
    s3a, s3b = _clients(cluster)
    gw_b = cluster.gateways[1]
    s3a.create_bucket(Bucket="faults")
    objects = _put_many(s3a, "faults", n=4)

    cluster.kill(1)
    cluster.kill(4)
    check_reads(s3a, "faults", objects)  # at once, before the gateways notice
    check_reads(s3b, "faults", objects, seed=3)
    for gw in cluster.gateways:
        cluster.wait_for_servers(2, up=False, gateway=gw)
    check_reads(s3a, "faults", objects, seed=4)
    check_reads(s3b, "faults", objects, seed=5)
    for s3 in _clients(cluster, **NO_RETRY):  # 4 servers up, k+1 = 5 needed
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket="faults", Key="new", Body=os.urandom(2 * SEG))
        assert info.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert "new" not in _listing(s3b, "faults")

    cluster.start_chunkservers([1, 4])
    for gw in cluster.gateways:
        cluster.wait_for_servers(6, gateway=gw)
    heal = admin_cli(gw_b, "heal", "run", "--json")
    assert heal.returncode == 0, heal.stdout + heal.stderr
    verify = admin_cli(gw_b, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "full redundancy: yes" in verify.stdout
    check_reads(s3b, "faults", objects, seed=6)
    check_reads(s3a, "faults", objects, seed=7)


def test_concurrent_clients_on_both_gateways(cluster: Cluster) -> None:
    clients = [_clients(cluster, **NO_RETRY) for _ in range(8)]
    clients[0][0].create_bucket(Bucket="busy")
    kept: dict[str, bytes] = {}
    contended: dict[str, set[bytes]] = {"shared/0": set(), "shared/1": set()}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        rng = random.Random(100 + t)
        try:
            for i in range(20):
                key = f"t{t}/o{i:02d}"
                data = rng.randbytes(rng.choice([0, 1, 1000, 70_000, SEG // 2, SEG + 13]))
                put, get = clients[t][i % 2], clients[t][(i + 1) % 2]
                put.put_object(Bucket="busy", Key=key, Body=data)
                assert get.get_object(Bucket="busy", Key=key)["Body"].read() == data, key
                if i % 3 == 0:
                    get.delete_object(Bucket="busy", Key=key)
                    with pytest.raises(ClientError) as info:
                        put.head_object(Bucket="busy", Key=key)
                    assert info.value.response["Error"]["Code"] == "404", key
                else:
                    with lock:
                        kept[key] = data
                if i % 5 == 0:  # every thread overwrites the same two keys too
                    shared = f"shared/{i // 5 % 2}"
                    with lock:
                        contended[shared].add(data)
                    put.put_object(Bucket="busy", Key=shared, Body=data)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not any(th.is_alive() for th in threads)
    assert not errors, errors
    s3a, s3b = clients[0]
    for key, candidates in contended.items():  # the last writer's bytes, whole
        kept[key] = s3b.get_object(Bucket="busy", Key=key)["Body"].read()
        assert kept[key] in candidates, key
    expected = {k: len(v) for k, v in kept.items()}
    assert _listing(s3a, "busy") == expected
    assert _listing(s3b, "busy") == expected
    for i, (key, data) in enumerate(sorted(kept.items())):
        assert clients[0][i % 2].get_object(Bucket="busy", Key=key)["Body"].read() == data, key
    verify = admin_cli(cluster.gateways[0], "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "full redundancy: yes" in verify.stdout
