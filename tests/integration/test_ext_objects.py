"""The ObjectStorageApi routes of the extension API (``/_tessera/v1/``) over a
real ``tessera serve`` on 127.0.0.1, signed with ``SignedClient`` as the root
account and as the alternate account; S3 (boto3) where the two meet."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness
import pytest
from botocore.exceptions import ClientError

from tessera.sdk.errors import (
    BadRequest,
    Conflict,
    ContainerNotEmpty,
    Forbidden,
    NoSuchAccount,
    NoSuchContainer,
    NoSuchObject,
    TesseraClientError,
)
from tessera.sdk.http import Endpoint, SignedClient, quote_path


def _client(server: harness.Server, access_key: str, secret_key: str) -> SignedClient:
    return SignedClient(Endpoint(server.endpoint, access_key, secret_key, verify=server.verify))


@pytest.fixture(scope="module")
def root(http_server: harness.Server) -> Iterator[SignedClient]:
    client = _client(http_server, http_server.access_key, http_server.secret_key)
    yield client
    client.close()


@pytest.fixture(scope="module")
def alt(http_server: harness.Server) -> Iterator[SignedClient]:
    a = harness.ALT_ACCOUNT
    client = _client(http_server, a["access_key"], a["secret_key"])
    yield client
    client.close()


@pytest.fixture(scope="module")
def s3(http_server: harness.Server) -> Any:
    return harness.boto3_client(http_server)


@pytest.fixture
def container(root: SignedClient) -> Iterator[str]:
    name = f"ext-{uuid.uuid4().hex[:12]}"
    assert root.ext("PUT", f"containers/{name}", json_body={"versioning": True}) == {
        "created": True
    }
    yield name
    for n in (name, name + "-snap"):
        with contextlib.suppress(NoSuchContainer):
            root.ext("DELETE", f"containers/{n}", query={"force": "1"})


def _obj(route: str, container: str, name: str) -> str:
    return f"{route}/{quote_path(container)}/{quote_path(name)}"


def _code(err: pytest.ExceptionInfo[TesseraClientError]) -> tuple[str, int]:
    return err.value.code, err.value.status


def test_openapi_lists_every_route(root: SignedClient) -> None:
    from tessera.gateway import ext_objects

    doc = root.ext("GET", "openapi.json")
    for route in ext_objects.ROUTES:
        path = "/_tessera/v1/" + route.path.replace("+}", "}")
        assert route.method.lower() in doc["paths"][path], (route.method, path)


def test_accounts(root: SignedClient, alt: SignedClient) -> None:
    name = f"acct-{uuid.uuid4().hex[:8]}"
    assert root.ext("PUT", f"accounts/{name}", json_body={"display_name": "New"}) == {
        "created": True
    }
    assert root.ext("PUT", f"accounts/{name}", json_body={}) == {"created": False}
    assert name in root.ext("GET", "accounts")["accounts"]
    info = root.ext("GET", f"accounts/{name}")
    assert (info["id"], info["display_name"], info["containers"], info["bytes"]) == (
        name,
        "New",
        0,
        0,
    )
    root.ext("POST", f"accounts/{name}/properties", json_body={"set": {"a": "1", "b": "2"}})
    root.ext("POST", f"accounts/{name}/properties", json_body={"delete": ["a"]})
    assert root.ext("GET", f"accounts/{name}")["properties"] == {"b": "2"}
    key = root.ext("POST", f"accounts/{name}/keys")
    assert key["account"] == name and key["secret"]
    # the new key acts as the new account
    server_url = root.endpoint.url
    newbie = SignedClient(Endpoint(server_url, key["access_key_id"], key["secret"]))
    try:
        assert newbie.ext("GET", "whoami") == {"account": name}
        newbie.ext("PUT", f"containers/{name}-box", json_body={})
        assert newbie.ext("GET", f"accounts/{name}")["containers"] == 1
        with pytest.raises(Conflict) as e:
            root.ext("DELETE", f"accounts/{name}")
        assert _code(e) == ("AccountNotEmpty", 409)
        newbie.ext("DELETE", f"containers/{name}-box")
    finally:
        newbie.close()
    # non-root: only its own account, never the administration routes
    for method, path in [
        ("GET", "accounts"),
        ("PUT", f"accounts/{name}x"),
        ("DELETE", f"accounts/{name}"),
        ("GET", f"accounts/{name}"),
        ("POST", f"accounts/{name}/keys"),
    ]:
        with pytest.raises(Forbidden) as e:
            alt.ext(method, path, json_body={} if method == "PUT" else None)
        assert _code(e) == ("AccessDenied", 403)
    with pytest.raises(Forbidden):
        alt.ext("POST", f"accounts/{name}/properties", json_body={"clear": True})
    assert alt.ext("GET", "accounts/alt")["id"] == "alt"
    root.ext("DELETE", f"accounts/{name}")
    with pytest.raises(NoSuchAccount) as e:
        root.ext("GET", f"accounts/{name}")
    assert _code(e) == ("NoSuchAccount", 404)
    with pytest.raises(NoSuchAccount):
        root.ext("DELETE", f"accounts/{name}")


def test_containers(root: SignedClient, alt: SignedClient, container: str, s3: Any) -> None:
    assert root.ext("PUT", f"containers/{container}", json_body={}) == {"created": False}
    with pytest.raises(Conflict) as e:
        alt.ext("PUT", f"containers/{container}", json_body={})
    assert _code(e) == ("BucketAlreadyExists", 409)
    s3.put_object(Bucket=container, Key="a", Body=b"12345", Metadata={"k": "v"})
    s3.put_object(Bucket=container, Key="b", Body=b"123")
    info = root.ext("GET", f"containers/{container}")
    assert (info["objects"], info["bytes"], info["versioning"], info["frozen"]) == (
        2,
        8,
        "enabled",
        False,
    )
    root.ext(
        "POST",
        f"containers/{container}/properties",
        json_body={"set": {"x": "1", "y": "2"}, "delete": ["none"]},
    )
    root.ext("POST", f"containers/{container}/properties", json_body={"delete": ["x"]})
    assert root.ext("GET", f"containers/{container}")["properties"] == {"y": "2"}
    names = [c["name"] for c in root.ext("GET", "containers")["containers"]]
    assert container in names
    assert container not in [c["name"] for c in alt.ext("GET", "containers")["containers"]]
    # another account's container: AccessDenied everywhere
    for method, path in [
        ("GET", f"containers/{container}"),
        ("DELETE", f"containers/{container}"),
        ("GET", f"list/{container}"),
        ("GET", _obj("objects", container, "a")),
        ("GET", _obj("locate", container, "a")),
        ("POST", _obj("touch", container, "a")),
        ("POST", _obj("drain", container, "a")),
    ]:
        with pytest.raises(Forbidden):
            alt.ext(method, path)
    with pytest.raises(Forbidden):
        alt.ext("POST", f"containers/{container}/properties", json_body={"clear": True})
    with pytest.raises(Forbidden):
        alt.ext("POST", f"containers/{container}/snapshot", json_body={"snapshot": "x-stolen"})
    with pytest.raises(Forbidden):
        alt.ext("PUT", _obj("append", container, "a"), data=b"more")
    # missing things
    with pytest.raises(NoSuchContainer) as e:
        root.ext("GET", "containers/no-such-container-here")
    assert _code(e) == ("NoSuchBucket", 404)
    with pytest.raises(NoSuchObject) as e:
        root.ext("GET", _obj("objects", container, "missing"))
    assert _code(e) == ("NoSuchKey", 404)
    # not empty unless forced
    with pytest.raises(ContainerNotEmpty) as e:
        root.ext("DELETE", f"containers/{container}")
    assert _code(e) == ("BucketNotEmpty", 409)
    root.ext("DELETE", f"containers/{container}", query={"force": "1"})
    with pytest.raises(NoSuchContainer):
        root.ext("GET", f"containers/{container}")


def test_objects(root: SignedClient, container: str, s3: Any) -> None:
    body = os.urandom(200_000)
    s3.put_object(Bucket=container, Key="dir/src", Body=body, Metadata={"color": "red"})
    info = root.ext("GET", _obj("objects", container, "dir/src"))
    assert (info["size"], info["etag"], info["properties"]) == (
        200_000,
        hashlib.md5(body).hexdigest(),
        {"color": "red"},
    )
    upd = root.ext(
        "POST",
        _obj("props", container, "dir/src"),
        json_body={"set": {"shape": "round"}, "delete": ["color"]},
    )
    assert upd["properties"] == {"shape": "round"} and upd["version"] == info["version"]
    head = s3.head_object(Bucket=container, Key="dir/src")
    assert head["Metadata"] == {"shape": "round"}
    link = root.ext(
        "POST",
        _obj("link", container, "copy/link"),
        json_body={"source_container": container, "source_name": "dir/src", "version": None},
    )
    assert (link["etag"], link["properties"]) == (info["etag"], {"shape": "round"})
    assert s3.get_object(Bucket=container, Key="copy/link")["Body"].read() == body
    loc = root.ext("GET", _obj("locate", container, "copy/link"))
    assert loc["size"] == 200_000 and not loc["inline"]
    assert sum(s["size"] for s in loc["segments"]) == 200_000
    assert all(f["server"] and f["block"] for s in loc["segments"] for f in s["fragments"])
    # truncate
    t = root.ext("POST", _obj("truncate", container, "dir/src"), json_body={"size": 1000})
    assert t["size"] == 1000 and t["version"] != info["version"]
    assert s3.get_object(Bucket=container, Key="dir/src")["Body"].read() == body[:1000]
    with pytest.raises(BadRequest) as e:
        root.ext("POST", _obj("truncate", container, "dir/src"), json_body={"size": 1001})
    assert _code(e) == ("InvalidArgument", 400)
    # append (a body signed with its SHA-256) and append creating an object
    more = os.urandom(70_000)
    a = root.ext("PUT", _obj("append", container, "dir/src"), data=more)
    assert a["size"] == 71_000
    assert s3.get_object(Bucket=container, Key="dir/src")["Body"].read() == body[:1000] + more
    created = root.ext("PUT", _obj("append", container, "fresh"), data=b"hello")
    assert (created["size"], created["etag"]) == (5, hashlib.md5(b"hello").hexdigest())
    # touch
    before = root.ext("GET", _obj("objects", container, "fresh"))
    touched = root.ext("POST", _obj("touch", container, "fresh"))
    assert touched["version"] == before["version"] and touched["mtime"] >= before["mtime"]
    # listings
    page = root.ext("GET", f"list/{container}", query={"limit": "2"})
    assert [o["name"] for o in page["objects"]] == ["copy/link", "dir/src"]
    assert page["truncated"] and page["next_marker"] == "dir/src"
    page = root.ext("GET", f"list/{container}", query={"delimiter": "/", "properties": "1"})
    assert page["prefixes"] == ["copy/", "dir/"] and [o["name"] for o in page["objects"]] == [
        "fresh"
    ]
    page = root.ext("GET", f"list/{container}", query={"end_marker": "dir/", "limit": "10"})
    assert [o["name"] for o in page["objects"]] == ["copy/link"] and not page["truncated"]
    page = root.ext(
        "GET", f"list/{container}", query={"versions": "1", "prefix": "dir/src", "limit": "10"}
    )
    assert len(page["objects"]) == 3 and [o["is_latest"] for o in page["objects"]] == [
        True,
        False,
        False,
    ]


def test_drained_object_is_not_readable(root: SignedClient, container: str, s3: Any) -> None:
    s3.put_object(Bucket=container, Key="d", Body=b"x" * 100_000)
    root.ext("POST", _obj("drain", container, "d"))
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=container, Key="d")
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ObjectDrained",
        404,
    )
    assert s3.head_object(Bucket=container, Key="d")["ContentLength"] == 100_000
    info = root.ext("GET", _obj("objects", container, "d"))
    assert info["size"] == 100_000
    assert root.ext("GET", _obj("locate", container, "d"))["segments"] == []
    with pytest.raises(NoSuchObject) as e2:
        root.ext(
            "POST",
            _obj("link", container, "d2"),
            json_body={"source_container": container, "source_name": "d"},
        )
    assert _code(e2) == ("ObjectDrained", 404)
    listed = root.ext("GET", f"list/{container}")
    assert [o["name"] for o in listed["objects"]] == ["d"]


def test_snapshot_refuses_writes(root: SignedClient, container: str, s3: Any) -> None:
    s3.put_object(Bucket=container, Key="k", Body=b"snapshot me")
    snap = container + "-snap"
    info = root.ext("POST", f"containers/{container}/snapshot", json_body={"snapshot": snap})
    assert (info["name"], info["frozen"], info["objects"], info["bytes"]) == (snap, True, 1, 11)
    s3.put_object(Bucket=container, Key="k", Body=b"changed")
    assert s3.get_object(Bucket=snap, Key="k")["Body"].read() == b"snapshot me"
    for call in (
        lambda: s3.put_object(Bucket=snap, Key="new", Body=b"1"),
        lambda: s3.delete_object(Bucket=snap, Key="k"),
        lambda: s3.copy_object(Bucket=snap, Key="c", CopySource={"Bucket": container, "Key": "k"}),
    ):
        with pytest.raises(ClientError) as e:
            call()
        err = e.value.response
        assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (
            "FrozenContainer",
            409,
        )
    for method, route, kwargs in [
        ("PUT", "append", {"data": b"x"}),
        ("POST", "truncate", {"json_body": {"size": 1}}),
        ("POST", "touch", {}),
        ("POST", "drain", {}),
        ("POST", "props", {"json_body": {"set": {"a": "b"}}}),
    ]:
        with pytest.raises(Conflict) as ce:
            root.ext(method, _obj(route, snap, "k"), **kwargs)
        assert _code(ce) == ("FrozenContainer", 409)
    with pytest.raises(Conflict):
        root.ext(
            "POST",
            _obj("link", snap, "l"),
            json_body={"source_container": container, "source_name": "k"},
        )
    root.ext("DELETE", f"containers/{snap}", query={"force": "1"})
    with pytest.raises(NoSuchContainer):
        root.ext("GET", f"containers/{snap}")


def test_malformed_bodies(root: SignedClient, container: str) -> None:
    with pytest.raises(BadRequest):
        root.ext("POST", f"containers/{container}/properties", json_body={"set": {"a": 1}})
    with pytest.raises(BadRequest):
        root.ext("PUT", f"containers/{container}", json_body={"versioning": "yes"})
    with pytest.raises(BadRequest):
        root.ext("POST", f"containers/{container}/snapshot", json_body={})
    with pytest.raises(BadRequest):
        root.ext("GET", f"list/{container}", query={"limit": "0"})


def test_streamed_append(http_server: harness.Server, container: str, s3: Any) -> None:
    """An unsigned, chunked body (as the SDK's remote backend streams appends)."""
    from tessera.sdk.remote import RemoteBackend

    backend = RemoteBackend(http_server.endpoint, http_server.access_key, http_server.secret_key)
    try:
        pieces = [os.urandom(50_000) for _ in range(5)]
        info = backend.object_put(container, "streamed", iter(pieces), append=True)
        assert info.size == 250_000
        info = backend.object_put(container, "streamed", iter(pieces[:1]), append=True)
        assert info.size == 300_000
    finally:
        backend.close()
    got = s3.get_object(Bucket=container, Key="streamed")["Body"].read()
    assert got == b"".join(pieces) + pieces[0]


def test_embedded_directory_serves(tmp_path: Path) -> None:
    """What ``tessera.open`` wrote is served by ``tessera serve`` on the same directory."""
    import tessera
    from tessera.server.embedded import open_embedded

    data_dir = tmp_path / "data"
    body = os.urandom(300_000)
    with open_embedded(data_dir) as local:
        local.container_create("made-offline", properties={"origin": "embedded"})
        local.object_put("made-offline", "obj", [body], properties={"k": "v"})
    server = harness.start_server(data_dir)
    try:
        client = harness.boto3_client(server)
        got = client.get_object(Bucket="made-offline", Key="obj")
        assert got["Body"].read() == body and got["Metadata"] == {"k": "v"}
        root = _client(server, server.access_key, server.secret_key)
        try:
            info = root.ext("GET", "containers/made-offline")
            assert info["properties"] == {"origin": "embedded"} and info["objects"] == 1
        finally:
            root.close()
        with pytest.raises(Conflict) as e:
            tessera.open(data_dir)  # held by the server now
        assert e.value.code == "DataDirectoryInUse"
    finally:
        assert server.stop() == 0
