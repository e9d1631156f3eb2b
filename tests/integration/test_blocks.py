"""The content-addressed block API and BlockClient against a real
``tessera serve --disks d1,d2,d3``: placement in probe order, verified reads
that fall back on a corrupt copy, signatures, write errors with their causes,
blocks surviving the orphan GC, and the ``tessera block`` commands."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import harness
import pytest

from tessera.data.volume import LocalVolume, content_block_name
from tessera.protocol.blocks import Locator, derive_key, sign
from tessera.sdk.blocks import BlockClient, BlockNotFound, BlockReadError, BlockWriteError
from tessera.sdk.errors import BadRequest, Forbidden, NotFound, Unauthorized
from tessera.sdk.http import EXT_PREFIX, Endpoint, SignedClient, quote_path

FAST = (0.01, 0.02)
"""Backoff (start, cap): retry rounds without waiting seconds."""
CLI_TIMEOUT = 120.0


class Store:
    """The server and where each of its volumes lives on disk."""

    def __init__(self, server: harness.Server, disks: list[Path]) -> None:
        self.server = server
        self.disks = {
            tomllib.loads((d / "tessera-volume.toml").read_text())["id"]: d for d in disks
        }

    def endpoint(self, account: dict[str, str] | None = None) -> Endpoint:
        if account is None:
            return Endpoint(self.server.endpoint, self.server.access_key, self.server.secret_key)
        return Endpoint(self.server.endpoint, account["access_key"], account["secret_key"])

    def client(self, account: dict[str, str] | None = None) -> BlockClient:
        """A new client (so an empty cache)."""
        return BlockClient(self.endpoint(account), retries=2, backoff=FAST)

    def block_file(self, volume: str, md5: str) -> Path:
        name = content_block_name(md5)
        return self.disks[volume] / "blocks" / name[:3] / name


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    base = tmp_path_factory.mktemp("blocks")
    disks = [base / f"d{i}" for i in (1, 2, 3)]
    env = {
        "TESSERA_AUTH_ACCOUNTS": json.dumps([harness.ALT_ACCOUNT]),
        "TESSERA_STORAGE_GC_GRACE": "0",
        "TESSERA_STORAGE_GC_INTERVAL": "0.1",
        "TESSERA_STORAGE_ORPHAN_INTERVAL": "0.2",
    }
    args = ["--disks", ",".join(str(d) for d in disks)]
    with harness.start_server(base / "data", args=args, env=env) as server:
        yield Store(server, disks)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_put_stores_copies_on_distinct_volumes_in_probe_order(store: Store) -> None:
    with store.client() as client:
        services = client.services()
        assert sorted(s.id for s in services) == sorted(store.disks)
        assert all(not s.read_only for s in services)
        data = os.urandom(300_000)
        locator = client.put(data, copies=2)
        loc = Locator.parse(locator)
        assert (loc.md5, loc.size) == (_md5(data), len(data))
        assert loc.signature is not None and not loc.expired(time.time() + 86400)
        order = client.probe_order(loc.md5, writable=True)
        holders = [v for v in store.disks if store.block_file(v, loc.md5).exists()]
        assert sorted(holders) == sorted(order[:2])
        assert client.get(locator) == data
        assert client.get(f"{locator},{locator}") == data + data
        assert client.head(locator) is True
        fresh = Locator.parse(client.refresh_signature(locator))
        assert (
            fresh.md5 == loc.md5 and fresh.expiry is not None and fresh.expiry >= (loc.expiry or 0)
        )


def test_get_falls_back_on_a_corrupt_copy(store: Store) -> None:
    data = os.urandom(200_000)
    with store.client() as writer:
        locator = writer.put(data, copies=2)
        first = writer.probe_order(_md5(data), writable=True)[0]
    path = store.block_file(first, _md5(data))
    raw = bytearray(path.read_bytes())
    raw[1234] ^= 0x55
    path.write_bytes(bytes(raw))
    with store.client() as reader:
        assert reader.get(locator) == data
    # The corrupt copy was quarantined: that service now says it has no block.
    signed = SignedClient(store.endpoint())
    try:
        with pytest.raises(NotFound):
            signed.request("GET", f"{EXT_PREFIX}blocks/{quote_path(first)}/{quote_path(locator)}")
    finally:
        signed.close()


def _get(client: SignedClient, service: str, locator: str) -> bytes:
    path = f"{EXT_PREFIX}blocks/{quote_path(service)}/{quote_path(locator)}"
    return bytes(client.request("GET", path).data)


def test_signatures_are_enforced(store: Store) -> None:
    data = b"signed content"
    with store.client() as client:
        locator = client.put(data, copies=1)
        service = client.probe_order(_md5(data), writable=True)[0]
    assert store.server.data_dir is not None
    key = derive_key((store.server.data_dir / "block-signing.key").read_text().strip())
    expired = str(sign(key, _md5(data), len(data), "root", int(time.time()) - 10))
    loc = Locator.parse(locator)
    assert loc.signature is not None
    bad_sig = loc.signature[:-1] + ("0" if loc.signature[-1] != "0" else "1")
    bad = f"{loc.stripped()}+A{bad_sig}@{loc.expiry:08x}"
    signed, alt = SignedClient(store.endpoint()), SignedClient(store.endpoint(harness.ALT_ACCOUNT))
    try:
        assert _get(signed, service, locator) == data
        with pytest.raises(Unauthorized) as e401:
            _get(signed, service, expired)
        assert e401.value.status == 401 and e401.value.code == "ExpiredSignature"
        with pytest.raises(Unauthorized):
            _get(signed, service, loc.stripped())  # unsigned
        with pytest.raises(BadRequest) as e400:
            _get(signed, service, bad)
        assert e400.value.status == 400 and e400.value.code == "InvalidSignature"
        with pytest.raises(BadRequest):
            _get(alt, service, locator)  # signed for root, not for alt
        with pytest.raises(Forbidden):  # delete is for root only
            alt.request("DELETE", f"{EXT_PREFIX}blocks/{quote_path(service)}/{loc.md5}")
    finally:
        signed.close()
        alt.close()
    with store.client() as client:
        with pytest.raises(BlockReadError) as read_error:
            client.get(expired)
        assert read_error.value.status == 401


def test_put_refuses_a_wrong_digest(store: Store) -> None:
    with store.client() as client:
        service = client.services()[0].id
    signed = SignedClient(store.endpoint())
    try:
        with pytest.raises(BadRequest) as e:
            signed.request(
                "PUT", f"{EXT_PREFIX}blocks/{quote_path(service)}/{_md5(b'x')}", data=b"y"
            )
        assert e.value.code == "BadDigest"
    finally:
        signed.close()
    assert not store.block_file(service, _md5(b"x")).exists()
    assert not store.block_file(service, _md5(b"y")).exists()


def test_write_errors_list_each_cause(store: Store) -> None:
    data = os.urandom(1000)
    with store.client() as client:
        with pytest.raises(BlockWriteError) as too_many:
            client.put(data, copies=4)
        assert sorted(too_many.value.stored) == sorted(store.disks)
        assert "wanted 4 copies, 3 confirmed" in str(too_many.value)

        # Break one volume (its tmp/ directory becomes a file): its puts fail (500).
        other = os.urandom(1000)
        broken = client.probe_order(_md5(other), writable=True)[0]
        tmp = store.disks[broken] / "tmp"
        tmp.rename(tmp.with_name("tmp.saved"))
        tmp.write_bytes(b"")
        try:
            with pytest.raises(BlockWriteError) as failing:
                client.put(other, copies=3)
            assert sorted(failing.value.stored) == sorted(set(store.disks) - {broken})
            assert list(failing.value.causes) == [broken]
            assert "500" in failing.value.causes[broken]
            locator = client.put(other, copies=2)  # the next services make up for it
            assert client.get(locator) == other
        finally:
            tmp.unlink()
            tmp.with_name("tmp.saved").rename(tmp)


def test_blocks_survive_orphan_collection(store: Store) -> None:
    data = os.urandom(50_000)
    with store.client() as client:
        locator = client.put(data, copies=3)
    # Plant a segment-style orphan (no metadata row) stored long ago.
    disk = next(iter(store.disks.values()))
    orphan = "ab" * 32

    async def plant() -> None:
        vol = LocalVolume(disk, "planter", threads=1)
        try:
            await vol.put(orphan, b"orphan fragment")
        finally:
            await vol.close()

    asyncio.run(plant())
    path = disk / "blocks" / orphan[:3] / orphan
    os.utime(path, (time.time() - 600, time.time() - 600))
    deadline = time.monotonic() + 30
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not path.exists(), "no orphan scan ran"
    for vid in store.disks:
        assert store.block_file(vid, _md5(data)).exists()
    with store.client() as client:
        assert client.get(locator) == data


def test_delete_by_root(store: Store) -> None:
    data = b"to be deleted"
    with store.client() as client:
        locator = client.put(data, copies=1)
        service = client.probe_order(_md5(data), writable=True)[0]
    signed = SignedClient(store.endpoint())
    try:
        path = f"{EXT_PREFIX}blocks/{quote_path(service)}/{_md5(data)}"
        assert json.loads(signed.request("DELETE", path).data) == {"deleted": True}
    finally:
        signed.close()
    with store.client() as client:
        with pytest.raises(BlockNotFound):
            client.get(locator)
        with pytest.raises(BlockNotFound):  # a HEAD answering 404 ...
            client.head(locator)
        assert client.get(client.put(data, copies=1)) == data  # ... leaves the pool usable


def _cli(store: Store, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(
        os.environ,
        TESSERA_ENDPOINT=store.server.endpoint,
        TESSERA_ACCESS_KEY=store.server.access_key,
        TESSERA_SECRET_KEY=store.server.secret_key,
    )
    return subprocess.run(
        [sys.executable, "-m", "tessera.cli.main", "block", *args],
        capture_output=True,
        env=env,
        timeout=CLI_TIMEOUT,
    )


def test_cli_round_trip(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(123_456))
    put = _cli(store, "put", str(src), "--copies", "2")
    assert put.returncode == 0, put.stderr
    locator = put.stdout.decode().strip()
    assert Locator.parse(locator).md5 == _md5(src.read_bytes())
    out = tmp_path / "out.bin"
    get = _cli(store, "get", locator, "-o", str(out))
    assert get.returncode == 0, get.stderr
    assert out.read_bytes() == src.read_bytes()
    cat = _cli(store, "get", locator)
    assert cat.stdout == src.read_bytes()
    head = _cli(store, "head", locator)
    assert head.returncode == 0 and Locator.parse(head.stdout.decode().strip()).md5
    missing = _cli(store, "get", f"{_md5(b'none')}+4+A{'0' * 64}@ffffffff")
    assert missing.returncode == 1 and b"tessera:" in missing.stderr
    assert _cli(store, "put", str(tmp_path / "absent")).returncode == 1


def test_blocks_in_a_cluster(tmp_path: Path) -> None:
    """Chunk servers' disks are block services; copies land on distinct servers;
    a second gateway (same cluster key) honours the first one's locators; a
    killed server's copy is skipped."""
    from cluster import Cluster

    c = Cluster(tmp_path)
    try:
        first = c.start(3)
        second = c.start_gateway("gateway2")
        c.wait_for_servers(3, gateway=second)
        root = Endpoint(first.endpoint, first.access_key, first.secret_key)
        data = os.urandom(100_000)
        with BlockClient(root, retries=1, backoff=FAST) as client:
            services = client.services()
            assert len({s.server for s in services}) == 3
            locator = client.put(data, copies=2)
            order = client.probe_order(_md5(data), writable=True)
        by_id = {cs.id: cs for cs in c.servers}
        server_of = {s.id: s.server for s in services}
        holders = {cs.id for cs in c.servers if any(p.name.endswith(".cas") for p in cs.blocks())}
        assert holders == {server_of[v] for v in order[:2]}
        other = Endpoint(second.endpoint, second.access_key, second.secret_key)
        with BlockClient(other, retries=1, backoff=FAST) as client:
            assert client.get(locator) == data
        c.kill(by_id[server_of[order[0]]].index)
        with BlockClient(root, retries=1, backoff=FAST) as client:
            assert client.get(locator) == data
    finally:
        c.stop()
