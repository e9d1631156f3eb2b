"""``tessera serve --workers 2``: several processes behind one port.

What matters is what a client sees: every connection, whichever process took
it, sees a bucket or key change at once (the shared cache epoch), and the node
starts, stops and dies as one.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness
import psutil
import pytest
from botocore.exceptions import ClientError

import tessera
from tessera.sdk.http import Endpoint, SignedClient

CLIENTS = 24
"""Separate connections, so that both workers take some (the kernel decides)."""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Server]:
    server = harness.start_server(
        tmp_path_factory.mktemp("workers") / "data", args=["--workers", "2"]
    )
    yield server
    assert harness.stop_process(server.proc) == 0


def workers(server: harness.Server) -> list[psutil.Process]:
    return psutil.Process(server.proc.pid).children()


def clients(server: harness.Server, **keys: str) -> list[Any]:
    """One boto3 client per connection (pools of one), each already connected."""
    made = [harness.boto3_client(server, max_pool_connections=1, **keys) for _ in range(CLIENTS)]
    for c in made:
        with pytest.raises(ClientError):
            c.head_bucket(Bucket=f"absent-{uuid.uuid4().hex[:8]}")
    return made


def code(call: Any, **kw: Any) -> str:
    try:
        call(**kw)
    except ClientError as e:
        return str(e.response["Error"]["Code"])
    return "OK"


def holders(server: harness.Server) -> set[int]:
    """Pids of the workers holding an established connection on the node's port."""
    return {
        p.pid
        for p in workers(server)
        for c in p.net_connections(kind="tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == server.port
    }


def test_two_workers_share_the_port(node: harness.Server) -> None:
    procs = workers(node)
    assert len(procs) == 2
    conns = clients(node)
    assert holders(node) == {p.pid for p in procs}, "one worker took every connection"
    del conns


def test_bucket_changes_are_seen_by_every_worker_at_once(node: harness.Server) -> None:
    conns = clients(node)
    bucket = f"wk-{uuid.uuid4().hex[:12]}"
    conns[0].create_bucket(Bucket=bucket)
    for c in conns:  # every worker caches the (unversioned) bucket record
        assert c.put_object(Bucket=bucket, Key="k", Body=b"x").get("VersionId") is None
    conns[0].put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for c in conns:
        assert c.put_object(Bucket=bucket, Key="k", Body=b"v").get("VersionId")
    harness.empty_and_delete_bucket(conns[0], bucket)
    for c in conns:
        assert code(c.put_object, Bucket=bucket, Key="k", Body=b"late") == "NoSuchBucket"
    assert code(conns[0].head_bucket, Bucket=bucket) == "404"


def test_deleted_keys_stop_working_on_every_worker_at_once(node: harness.Server) -> None:
    root = tessera.connect(node.endpoint, node.access_key, node.secret_key)
    account = f"acct{uuid.uuid4().hex[:10]}"
    root.account_create(account)
    key = root.access_key_create(account)
    conns = clients(node, access_key=key.access_key_id, secret_key=key.secret)
    for c in conns:  # every worker caches the key
        assert c.list_buckets()["Buckets"] == []
    root.account_delete(account)
    root.close()
    for c in conns:
        assert code(c.list_buckets) == "InvalidAccessKeyId"


def test_admin_status_is_the_same_from_every_worker(node: harness.Server) -> None:
    """The scrubber runs in worker 0 and a healing pass in whichever worker took
    the request; every worker answers their status (it used to answer its own,
    or 501 where it had no scrubber)."""
    ep = Endpoint(node.endpoint, node.access_key, node.secret_key)
    roots = [SignedClient(ep, pool=1) for _ in range(CLIENTS)]
    try:
        for r in roots:  # each opens its connection; the kernel spreads them
            assert isinstance(r.ext("GET", "admin/scrub"), dict)
        assert holders(node) == {p.pid for p in workers(node)}, "one worker took every connection"
        ran = roots[0].ext("POST", "admin/heal", query={"mode": "verify", "wait": "1"})
        answers = [r.ext("GET", "admin/heal") for r in roots]
        assert {(a["started"], a["passes"], a["holder"], a["running"]) for a in answers} == {
            (ran["started"], ran["passes"], answers[0]["holder"], False)
        }
        assert answers[0]["holder"].endswith(tuple(f":{p.pid}" for p in workers(node)))
    finally:
        for r in roots:
            r.close()


def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    server = harness.start_server(tmp_path / "data", args=["--workers", "2"])
    procs = workers(server)
    assert harness.stop_process(server.proc, signal.SIGTERM) == 0
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs)


def test_kill_9_of_the_supervisor_takes_the_workers_down(tmp_path: Path) -> None:
    server = harness.start_server(tmp_path / "data", args=["--workers", "2"])
    procs = workers(server)
    harness.stop_process(server.proc, signal.SIGKILL)
    _, alive = psutil.wait_procs(procs, timeout=20)
    assert alive == []
    # The data directory is free again: a new node starts on it and has the data.
    again = harness.start_server(tmp_path / "data", args=["--workers", "2"])
    assert harness.stop_process(again.proc) == 0


def test_a_dying_worker_stops_the_node(tmp_path: Path) -> None:
    server = harness.start_server(tmp_path / "data", args=["--workers", "2"])
    victim, other = workers(server)
    victim.kill()
    deadline = time.monotonic() + 30
    while server.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.proc.returncode == 1
    assert "exited with code -9" in server.stderr_path.read_text()
    _, alive = psutil.wait_procs([other], timeout=20)
    assert alive == []
