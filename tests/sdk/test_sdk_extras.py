"""ObjectStorageApi contract: link, copy, truncate, append, touch, drain,
deadlines, and the connection itself (both backends unless marked)."""

from __future__ import annotations

import hashlib
import time
import urllib.request
from collections.abc import Iterator

import pytest
from sdk_support import payload, read_all, unique

import tessera
from integration import harness
from tessera.sdk import (
    BadRequest,
    DeadlineReached,
    EtagMismatch,
    Forbidden,
    NoSuchContainer,
    NoSuchObject,
    ObjectStorageApi,
    TesseraClientError,
    Unauthorized,
)

MiB = 1 << 20


def test_link_shares_data(api: ObjectStorageApi, container: str, cleanup: list[str]) -> None:
    data = payload(2 * MiB, seed=11)
    src = api.object_create(container, data=data, obj_name="src", properties={"p": "1"})
    other = unique()
    cleanup.append(other)
    api.container_create(other)
    link = api.object_link(container, "src", other, "dir/link")
    assert (link.container, link.name, link.size, link.etag) == (
        other,
        "dir/link",
        len(data),
        src.etag,
    )
    assert link.properties == {"p": "1"}
    src_loc, link_loc = api.object_locate(container, "src"), api.object_locate(other, "dir/link")
    assert [s.hash for s in link_loc.segments] == [s.hash for s in src_loc.segments]
    assert [[f.block for f in s.fragments] for s in link_loc.segments] == [
        [f.block for f in s.fragments] for s in src_loc.segments
    ]
    api.object_delete(container, "src")
    assert read_all(api, other, "dir/link") == data
    with pytest.raises(NoSuchObject):
        api.object_link(container, "src", other, "again")
    with pytest.raises(NoSuchContainer):
        api.object_link(container, "src", unique(), "x")


def test_link_of_a_version(api: ObjectStorageApi, versioned: str) -> None:
    v1 = api.object_create(versioned, data=b"first", obj_name="k")
    api.object_create(versioned, data=b"second", obj_name="k")
    link = api.object_link(versioned, "k", versioned, "old", version=v1.version)
    assert link.etag == v1.etag
    assert read_all(api, versioned, "old") == b"first"


def test_copy(api: ObjectStorageApi, versioned: str, container: str) -> None:
    v1 = api.object_create(
        versioned, data=b"first", obj_name="k", mime_type="text/plain", properties={"a": "1"}
    )
    api.object_create(versioned, data=b"second", obj_name="k", properties={"a": "2"})
    same = api.object_copy(versioned, "k", container, "copy")
    assert (same.container, same.name, same.size) == (container, "copy", 6)
    assert same.properties == {"a": "2"}
    assert read_all(api, container, "copy") == b"second"
    old = api.object_copy(
        versioned, "k", container, "old", version=v1.version, properties={"b": "x"}
    )
    assert (old.etag, old.properties, old.mime_type) == (v1.etag, {"b": "x"}, "text/plain")
    assert read_all(api, container, "old") == b"first"
    big = payload(9 * MiB, seed=12)
    made = api.object_create(container, data=big, obj_name="big")
    assert api.object_copy(container, "big", container, "big2").size == len(big)
    assert hashlib.md5(read_all(api, container, "big2")).hexdigest() == hashlib.md5(big).hexdigest()
    assert api.object_head(container, "big2").etag == made.etag
    with pytest.raises(NoSuchObject):
        api.object_copy(container, "missing", container, "x")
    with pytest.raises(NoSuchContainer):
        api.object_copy(container, "big", unique(), "x")


@pytest.mark.parametrize("size", [100, 3 * MiB])
def test_truncate(api: ObjectStorageApi, versioned: str, size: int) -> None:
    data = payload(size, seed=13)
    before = api.object_create(versioned, data=data, obj_name="t")
    cut = size // 2 + 1
    info = api.object_truncate(versioned, "t", cut)
    assert info.size == cut and info.version != before.version
    assert info.etag != before.etag
    assert api.object_head(versioned, "t", trust_level=2).etag == info.etag
    assert read_all(api, versioned, "t") == data[:cut]
    assert read_all(api, versioned, "t", version=before.version) == data
    assert api.object_truncate(versioned, "t", 0).size == 0
    assert read_all(api, versioned, "t") == b""
    with pytest.raises(BadRequest):
        api.object_truncate(versioned, "t", 1)
    with pytest.raises(BadRequest):
        api.object_truncate(versioned, "t", size + 1, version=before.version)
    with pytest.raises(NoSuchObject):
        api.object_truncate(versioned, "missing", 0)


def test_append(api: ObjectStorageApi, container: str) -> None:
    first = api.object_create(container, data=b"hello", obj_name="log", append=True)
    assert (first.size, read_all(api, container, "log")) == (5, b"hello")
    big = payload(2 * MiB, seed=14)
    second = api.object_create(container, data=iter([b", ", big]), obj_name="log", append=True)
    whole = b"hello, " + big
    assert second.size == len(whole)
    assert read_all(api, container, "log") == whole
    assert api.object_head(container, "log", trust_level=2).size == len(whole)
    with pytest.raises(NoSuchContainer):
        api.object_create(unique(), data=b"x", obj_name="log", append=True)


def test_touch(api: ObjectStorageApi, container: str) -> None:
    made = api.object_create(container, data=b"t", obj_name="t")
    touched = api.object_touch(container, "t")
    assert (touched.version, touched.etag, touched.size) == (made.version, made.etag, 1)
    assert touched.mtime >= made.mtime
    assert api.object_head(container, "t").mtime == touched.mtime
    assert read_all(api, container, "t") == b"t"
    with pytest.raises(NoSuchObject):
        api.object_touch(container, "missing")


def test_drain(api: ObjectStorageApi, container: str) -> None:
    data = payload(500_000, seed=15)
    api.object_create(container, data=data, obj_name="d")
    api.object_create(container, data=b"keep", obj_name="e")
    api.object_drain(container, "d")
    with pytest.raises(NoSuchObject) as e:
        api.object_fetch(container, "d")
    assert e.value.code == "ObjectDrained"
    assert api.object_head(container, "d").size == len(data)
    with pytest.raises(NoSuchObject) as e:
        api.object_head(container, "d", trust_level=1)
    assert e.value.code == "ObjectDrained"
    assert [o.name for o in api.object_list(container).objects] == ["d", "e"]
    assert read_all(api, container, "e") == b"keep"
    with pytest.raises(NoSuchObject):
        api.object_drain(container, "missing")
    api.object_create(container, data=b"new", obj_name="d")
    assert read_all(api, container, "d") == b"new"


# ----------------------------------------------------------------- deadlines


def test_deadline_already_passed(api: ObjectStorageApi, container: str) -> None:
    api.object_create(container, data=b"x", obj_name="x")
    past = time.time() - 1
    with pytest.raises(DeadlineReached):
        api.object_create(container, data=b"y", obj_name="y", deadline=past)
    with pytest.raises(DeadlineReached):
        api.object_fetch(container, "x", deadline=past)
    with pytest.raises(DeadlineReached):
        api.object_head(container, "x", trust_level=2, deadline=past)
    with pytest.raises(NoSuchObject):
        api.object_head(container, "y")


def _slow(pieces: list[bytes], stall_after: int, deadline: float) -> Iterator[bytes]:
    """Yield ``pieces``, waiting for ``deadline`` to pass after the first ``stall_after``."""
    for i, piece in enumerate(pieces):
        if i == stall_after:
            time.sleep(max(0.0, deadline - time.time()) + 0.01)
        yield piece


@pytest.mark.parametrize("size", [2 * MiB, 10 * MiB])
def test_deadline_during_upload(api: ObjectStorageApi, container: str, size: int) -> None:
    data = payload(size, seed=16)
    pieces = [data[i : i + MiB] for i in range(0, size, MiB)]
    deadline = time.time() + 0.5
    with pytest.raises(DeadlineReached):
        api.object_create(
            container,
            data=_slow(pieces, len(pieces) - 1, deadline),
            obj_name="late",
            deadline=deadline,
        )
    with pytest.raises(NoSuchObject):
        api.object_head(container, "late")


def test_deadline_during_fetch(api: ObjectStorageApi, container: str) -> None:
    api.object_create(container, data=payload(3 * MiB, seed=17), obj_name="f")
    deadline = time.time() + 1
    _, stream = api.object_fetch(container, "f", deadline=deadline)
    with pytest.raises(DeadlineReached):
        for _piece in stream:  # the reader stalls past the deadline after each piece
            time.sleep(max(0.0, deadline - time.time()) + 0.01)
    assert list(stream) == []


# -------------------------------------------------------- the connection


def test_context_manager_closes(
    api: ObjectStorageApi, backend_kind: str, request: pytest.FixtureRequest
) -> None:
    if backend_kind != "remote":
        pytest.skip("tessera.connect only")
    server: harness.Server = request.getfixturevalue("sdk_server")
    with tessera.connect(server.endpoint, server.access_key, server.secret_key) as conn:
        assert conn.account == "root"
        assert isinstance(conn.container_list(), list)


def test_bad_credentials(backend_kind: str, request: pytest.FixtureRequest) -> None:
    if backend_kind != "remote":
        pytest.skip("tessera.connect only")
    server: harness.Server = request.getfixturevalue("sdk_server")
    with pytest.raises((Unauthorized, Forbidden)):
        tessera.connect(server.endpoint, "NOSUCHKEY00000000000", "wrong-secret")
    with pytest.raises(TesseraClientError) as e:
        tessera.connect(server.endpoint, server.access_key, "wrong-secret")
    assert e.value.status in (401, 403)
    with pytest.raises(TesseraClientError) as e:
        tessera.connect(f"http://127.0.0.1:{harness.free_port()}", "a", "b")
    assert e.value.code == "ConnectionError"


def test_remote_over_https(backend_kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Over TLS botocore signs bodies differently (unsigned payloads, checksum
    trailers): uploads of each kind, append and a ranged fetch still work."""
    if backend_kind != "remote":
        pytest.skip("tessera.connect only")
    base = tmp_path_factory.mktemp("sdk-https")
    tls = harness.make_tls(base / "tls")
    with harness.start_server(base / "data", tls=tls) as server:
        with tessera.connect(
            server.endpoint, server.access_key, server.secret_key, verify=str(tls.ca_cert)
        ) as conn:
            c = unique()
            conn.container_create(c)
            small, big = payload(1000, seed=20), payload(9 * MiB, seed=21)
            assert conn.object_create(c, data=small, obj_name="s").size == len(small)
            assert conn.object_create(c, data=big, obj_name="b").etag.endswith("-2")
            conn.object_create(c, data=iter([b"more"]), obj_name="s", append=True)
            assert read_all(conn, c, "s") == small + b"more"
            _, stream = conn.object_fetch(c, "b", ranges=[(None, 10)])
            assert stream.read() == big[-10:]
            conn.container_delete(c, force=True)
        with pytest.raises(TesseraClientError) as e:
            tessera.connect(server.endpoint, server.access_key, server.secret_key)
        assert e.value.code == "ConnectionError"


def test_failed_multipart_uploads_are_aborted(
    api: ObjectStorageApi, container: str, backend_kind: str, request: pytest.FixtureRequest
) -> None:
    """A refused or abandoned large upload leaves no multipart upload behind."""
    if backend_kind != "remote":
        pytest.skip("multipart uploads are the remote backend's transport")
    server: harness.Server = request.getfixturevalue("sdk_server")
    s3 = harness.boto3_client(server)
    data = payload(9 * MiB, seed=22)
    with pytest.raises(EtagMismatch):
        api.object_create(container, data=data, obj_name="m", etag="0" * 32)
    deadline = time.time() + 0.5
    pieces = [data[i : i + MiB] for i in range(0, len(data), MiB)]
    with pytest.raises(DeadlineReached):
        api.object_create(
            container, data=_slow(pieces, 8, deadline), obj_name="m", deadline=deadline
        )
    with pytest.raises(BadRequest):
        api.object_create(container, data=data, obj_name="m", etag="not-hex")
    assert s3.list_multipart_uploads(Bucket=container).get("Uploads", []) == []
    assert api.object_list(container).objects == []


def test_par_and_blocks_from_the_api(
    api: ObjectStorageApi, container: str, backend_kind: str
) -> None:
    """A connection hands out PARs and block clients on its own server and
    credentials; an embedded store, which has no URL to give, refuses both."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    api.object_create(container, obj_name="shared.txt", data=b"via a link")
    if backend_kind == "embedded":
        with pytest.raises(BadRequest) as refused:
            api.create_par(container, "shared.txt", encrypt_key=key.public_key())
        assert refused.value.code == "NotSupportedEmbedded"
        with pytest.raises(BadRequest):
            api.block_client()
        return
    par = api.create_par(container, "shared.txt", encrypt_key=key.public_key(), ttl=120)
    with urllib.request.urlopen(par.url(key), timeout=30) as resp:
        assert resp.read() == b"via a link"
    par.close(key)
    with api.block_client() as blocks:
        locator = blocks.put(b"block bytes", copies=1)
        assert blocks.get(locator) == b"block bytes"
