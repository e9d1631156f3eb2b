"""The Qarnot-style Bucket against a real ``tessera serve`` (http and https)
and, once it exists, an embedded ``tessera.open`` store.

Uploads and copies are counted by :class:`CountingApi`, an ObjectStorageApi
on the same backend that tallies what each call stored, so "no re-upload"
is observed on the wire side, not taken from the sync plan.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import harness
import pytest

import tessera
from tessera.sdk import NoSuchContainer, NoSuchObject, ObjectInfo, ObjectStorageApi
from tessera.sdk.bucket import Bucket, UnsafeName
from tessera.sdk.sync import file_etags

EMBEDDED = importlib.util.find_spec("tessera.server.embedded") is not None


class CountingApi(ObjectStorageApi):
    """The same API, counting bytes stored by object_create and the copies."""

    def __init__(self, inner: ObjectStorageApi) -> None:
        super().__init__(inner.backend)
        self.uploaded_bytes = 0
        self.uploads: list[str] = []
        self.copies: list[tuple[str, str]] = []

    def object_create(self, container: str, *args: Any, **kw: Any) -> ObjectInfo:
        info = super().object_create(container, *args, **kw)
        self.uploaded_bytes += info.size
        self.uploads.append(info.name)
        return info

    def object_copy(
        self, container: str, obj: str, dst_container: str, dst_obj: str, **kw: Any
    ) -> ObjectInfo:
        self.copies.append((obj, dst_obj))
        return super().object_copy(container, obj, dst_container, dst_obj, **kw)

    def reset(self) -> None:
        self.uploaded_bytes = 0
        self.uploads.clear()
        self.copies.clear()


@pytest.fixture(scope="module", params=["http", "https", "embedded"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "embedded" and not EMBEDDED:
        pytest.skip("tessera.server.embedded does not exist yet (no tessera.open)")
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def base_conn(
    kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ObjectStorageApi]:
    if kind == "embedded":
        api: ObjectStorageApi = tessera.open(tmp_path_factory.mktemp("emb") / "data")
    else:
        server: harness.Server = request.getfixturevalue(f"{kind}_server")
        api = tessera.connect(
            server.endpoint, server.access_key, server.secret_key, verify=server.verify
        )
    yield api
    api.close()


@pytest.fixture
def conn(base_conn: ObjectStorageApi) -> CountingApi:
    return CountingApi(base_conn)


@pytest.fixture
def bkt(conn: CountingApi) -> Iterator[Bucket]:
    b = Bucket(conn, f"bkt-{uuid.uuid4().hex[:16]}")
    yield b
    with suppress(NoSuchContainer):
        b.delete()


def put_raw(
    kind: str,
    request: pytest.FixtureRequest,
    conn: ObjectStorageApi,
    bucket: str,
    key: str,
    data: bytes,
) -> None:
    """Store ``key`` as is (names the SDK's extension calls cannot address,
    such as ``../x``, go through boto3 on a server)."""
    if kind == "embedded":
        conn.object_create(bucket, data=data, obj_name=key)
    else:
        server: harness.Server = request.getfixturevalue(f"{kind}_server")
        harness.boto3_client(server).put_object(Bucket=bucket, Key=key, Body=data)


def tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def remote_state(b: Bucket) -> dict[str, bytes]:
    out = {}
    for info in b.list_files():
        _, stream = b.conn.object_fetch(b.name, info.name)
        out[info.name] = stream.read()
    return out


def local_state(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_sync_new_changed_deleted_renamed_duplicated(
    bkt: Bucket, conn: CountingApi, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    big = os.urandom(300_000)
    tree(src, {"a.txt": b"alpha", "sub/b.bin": big, "c.txt": b"gamma", "sub/deep/d": b"delta"})
    plan = bkt.sync_directory(src)
    assert remote_state(bkt) == local_state(src)
    assert conn.uploaded_bytes == 5 + len(big) + 5 + 5 and not plan.copies

    conn.reset()
    assert bkt.sync_directory(src).empty
    assert conn.uploads == [] and conn.copies == []

    (src / "a.txt").write_bytes(b"alpha, changed")
    (src / "c.txt").unlink()
    (src / "sub" / "b.bin").rename(src / "sub" / "renamed.bin")
    (src / "dup.txt").write_bytes(b"delta")  # same content as sub/deep/d
    conn.reset()
    plan = bkt.sync_directory(src)
    assert conn.uploads == ["a.txt"] and conn.uploaded_bytes == len(b"alpha, changed")
    assert sorted(conn.copies) == [("sub/b.bin", "sub/renamed.bin"), ("sub/deep/d", "dup.txt")]
    assert plan.deletes == ["c.txt", "sub/b.bin"]
    assert remote_state(bkt) == local_state(src)
    conn.reset()
    assert bkt.sync_directory(src).empty and conn.uploads == []


def test_sync_of_duplicates_uploads_once(bkt: Bucket, conn: CountingApi, tmp_path: Path) -> None:
    src = tmp_path / "src"
    tree(src, {"x/1": b"same bytes", "x/2": b"same bytes", "y/3": b"same bytes"})
    bkt.sync_directory(src)
    assert conn.uploaded_bytes == len(b"same bytes")
    assert len(conn.copies) == 2
    assert remote_state(bkt) == local_state(src)


def test_multipart_etag_match_20mib(
    bkt: Bucket, conn: CountingApi, tmp_path: Path, kind: str
) -> None:
    src = tmp_path / "src"
    data = os.urandom(20 << 20)
    tree(src, {"big.bin": data, "small": b"s"})
    bkt.sync_directory(src)
    info = bkt.conn.object_head(bkt.name, "big.bin")
    local = file_etags(src / "big.bin")
    if kind != "embedded":
        assert info.etag == local.multipart and info.etag.endswith("-3")
    assert local.matches(info.etag)
    conn.reset()
    assert bkt.sync_directory(src).empty
    assert conn.uploads == [] and conn.uploaded_bytes == 0
    (src / "big.bin").rename(src / "moved.bin")
    bkt.sync_directory(src)
    assert conn.uploads == [] and conn.copies == [("big.bin", "moved.bin")]
    assert [o.name for o in bkt.list_files()] == ["moved.bin", "small"]


def test_sync_remote_folder_deletes_only_inside(bkt: Bucket, tmp_path: Path) -> None:
    for name in ("data/old", "data2/keep", "datax", "other"):
        bkt.add_string(name, name)
    src = tmp_path / "src"
    tree(src, {"f": b"F", "g/h": b"H"})
    plan = bkt.sync_directory(src, remote="data")
    assert plan.deletes == ["data/old"]
    assert sorted(bkt) == ["data/f", "data/g/h", "data2/keep", "datax", "other"]


def test_add_get_copy_delete(bkt: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "file.txt"
    f.write_bytes(b"file body")
    assert bkt.add_file(f).name == "file.txt"
    with open(f, "rb") as fo:
        bkt.add_file(fo, "/nested//from-object.txt")
    bkt["mapped"] = str(f)
    bkt.add_string("héllo", "s.txt")
    assert sorted(bkt) == ["file.txt", "mapped", "nested/from-object.txt", "s.txt"]
    assert "mapped" in bkt and "nope" not in bkt
    assert bkt.copy_file("s.txt", "copy/s2.txt").name == "copy/s2.txt"
    assert [o.name for o in bkt.directory("copy")] == ["copy/s2.txt"]
    assert [o.name for o in bkt.directory("nested/")] == ["nested/from-object.txt"]

    calls: list[tuple[int, int, str]] = []
    out = bkt.get_file(
        "copy/s2.txt", tmp_path / "dl" / "x.txt", progress=lambda *a: calls.append(a)
    )
    assert Path(out).read_text() == "héllo"
    assert calls[0] == (0, 6, "copy/s2.txt") and calls[-1] == (6, 6, "copy/s2.txt")
    (tmp_path / "into").mkdir()
    assert bkt.get_file("nested/from-object.txt", tmp_path / "into") == str(
        tmp_path / "into" / "from-object.txt"
    )
    monkeypatch.chdir(tmp_path / "into")
    assert Path(bkt.get_file("mapped")).read_bytes() == b"file body"

    bkt.delete_file("mapped")
    del bkt["file.txt"]
    with pytest.raises(NoSuchObject):
        bkt.delete_file("mapped")
    with pytest.raises(NoSuchObject):
        bkt.get_file("mapped", tmp_path / "never")
    assert not (tmp_path / "never").exists()
    assert sorted(bkt) == ["copy/s2.txt", "nested/from-object.txt", "s.txt"]
    bkt.delete()
    with pytest.raises(NoSuchContainer):
        bkt.conn.container_show(bkt.name)


def test_add_directory_skips_symlinks(bkt: Bucket, tmp_path: Path) -> None:
    src = tmp_path / "src"
    tree(src, {"a": b"A", "d/b": b"B"})
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "s").write_bytes(b"S")
    os.symlink(secret, src / "linkdir")
    os.symlink(secret / "s", src / "linkfile")
    assert bkt.add_directory(src, "up") == ["up/a", "up/d/b"]
    assert sorted(bkt) == ["up/a", "up/d/b"]


def test_get_all_files_with_progress(bkt: Bucket, tmp_path: Path) -> None:
    src = tmp_path / "src"
    tree(src, {"a": b"A" * 3000, "d/b": b"B" * 10, "d/e/same": b"A" * 3000})
    bkt.add_directory(src)
    seen: dict[str, tuple[int, int]] = {}
    written = bkt.get_all_files(
        tmp_path / "out", progress=lambda r, t, n: seen.__setitem__(n, (r, t))
    )
    assert sorted(written) == sorted(str(tmp_path / "out" / n) for n in ("a", "d/b", "d/e/same"))
    assert local_state(tmp_path / "out") == local_state(src)
    assert seen["a"] == (3000, 3000) and seen["d/b"] == (10, 10)
    assert "d/e/same" not in seen  # same ETag as "a": copied locally, not downloaded
    bkt.get_all_files(tmp_path / "out2", progress=True)
    assert local_state(tmp_path / "out2") == local_state(src)


def test_path_tricks_are_refused(
    bkt: Bucket, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    bkt.add_string("fine", "ok/fine")
    for key in ("../evil", "a/../../evil2", "link/escaped"):
        put_raw(kind, request, bkt.conn, bkt.name, key, b"evil")
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", out / "link")
    with pytest.raises(UnsafeName) as err:
        bkt.get_all_files(out)
    for key in ("../evil", "a/../../evil2", "link/escaped"):
        assert repr(key) in str(err.value)
    assert (out / "ok" / "fine").read_text() == "fine"
    assert not (tmp_path / "evil").exists() and not (tmp_path / "evil2").exists()
    assert list((tmp_path / "elsewhere").iterdir()) == []
    with pytest.raises(UnsafeName):
        bkt.get_file("..", out)


def test_views_filtering_transformation_and_json(bkt: Bucket, conn: CountingApi) -> None:
    for name in ("in/a", "in/sub/b", "input/c", "out/d"):
        bkt.add_string(name, name)
    filtered = bkt.with_filtering("in/")
    assert sorted(filtered) == ["in/a", "in/sub/b"]
    moved = bkt.with_resource_transformation("in/")
    assert sorted(moved) == ["a", "sub/b"]
    moved.add_string("new", "c")
    assert "in/c" in bkt and "c" in moved and "out/d" not in moved
    assert moved.copy_file("a", "a2").name == "a2"
    assert sorted(bkt.with_filtering("in/")) == ["in/a", "in/a2", "in/c", "in/sub/b"]
    both = bkt.with_filtering("in/sub").with_resource_transformation("in/")
    assert list(both) == ["sub/b"]

    doc = both.with_cache_ttl(30).to_json()
    assert doc == {
        "bucketName": bkt.name,
        "filtering": {"prefixFiltering": {"prefix": "in/sub"}},
        "resourcesTransformation": {"stripPrefix": {"prefix": "in/"}},
        "cacheTTLSec": 30,
    }
    again = Bucket.from_json(doc, conn)
    assert again.to_json() == doc and list(again) == ["sub/b"]
    assert Bucket.from_json({"bucketName": bkt.name}, conn).to_json() == {"bucketName": bkt.name}


def test_sync_through_a_transformed_view(bkt: Bucket, tmp_path: Path) -> None:
    bkt.add_string("outside", "keep/me")
    bkt.add_string("stale", "in/stale")
    src = tmp_path / "src"
    tree(src, {"x": b"X"})
    plan = bkt.with_resource_transformation("in/").sync_directory(src)
    assert plan.deletes == ["stale"]
    assert sorted(bkt) == ["in/x", "keep/me"]


def test_cache_ttl(bkt: Bucket, conn: CountingApi) -> None:
    now = [100.0]
    cached = Bucket(conn, bkt.name, create=False, cache_ttl=10, clock=lambda: now[0])
    bkt.add_string("1", "one")
    assert list(cached) == ["one"]
    bkt.add_string("2", "two")  # another writer: not seen until the TTL passes
    assert list(cached) == ["one"]
    now[0] += 10.5
    assert list(cached) == ["one", "two"]
    cached.add_string("3", "three")  # its own write drops its cache
    assert list(cached) == ["one", "three", "two"]
