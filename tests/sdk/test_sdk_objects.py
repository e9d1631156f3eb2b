"""ObjectStorageApi contract, object data and metadata (both backends)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from sdk_support import payload, read_all, unique

from tessera.sdk import (
    BadRequest,
    EtagMismatch,
    NoSuchContainer,
    NoSuchObject,
    ObjectStorageApi,
    RangeNotSatisfiable,
)

MiB = 1 << 20


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def multipart_etag(data: bytes, part: int = 8 * MiB) -> str:
    digests = b"".join(hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part))
    return f"{hashlib.md5(digests).hexdigest()}-{(len(data) + part - 1) // part}"


# ------------------------------------------------------------------- create


def test_create_from_each_source(api: ObjectStorageApi, container: str, tmp_path: Path) -> None:
    data = payload(3 * MiB + 5, seed=1)
    path = tmp_path / "from-path.bin"
    path.write_bytes(data)
    infos = [
        api.object_create(container, data=data, obj_name="bytes"),
        api.object_create(container, data=iter([data[:7], b"", data[7:]]), obj_name="iter"),
        api.object_create(container, data=io.BytesIO(data), obj_name="fileobj"),
        api.object_create(container, path),
        api.object_create(container, str(path), obj_name="named-path"),
    ]
    with path.open("rb") as f:
        infos.append(api.object_create(container, f, obj_name="open-file"))
    for info in infos:
        assert (info.container, info.size, info.etag) == (container, len(data), md5(data))
        assert read_all(api, container, info.name) == data
    assert [i.name for i in infos][3] == "from-path.bin"
    text = api.object_create(container, data="héllo", obj_name="text")
    assert read_all(api, container, text.name) == "héllo".encode()
    empty = api.object_create(container, data=b"", obj_name="empty")
    assert (empty.size, empty.etag) == (0, md5(b""))
    assert read_all(api, container, "empty") == b""


def test_create_refuses_bad_arguments(api: ObjectStorageApi, container: str) -> None:
    with pytest.raises(BadRequest):
        api.object_create(container, data=b"x")  # no name
    with pytest.raises(BadRequest):
        api.object_create(container, io.BytesIO(b"x"), data=b"x", obj_name="k")
    with pytest.raises(BadRequest):
        api.object_create(container, obj_name="k")
    with pytest.raises(BadRequest):
        api.object_create(container, data=b"x", obj_name="k", append=True, etag=md5(b"x"))
    with pytest.raises(NoSuchContainer):
        api.object_create(unique(), data=b"x", obj_name="k")


def test_mime_type_and_properties(api: ObjectStorageApi, container: str) -> None:
    info = api.object_create(
        container,
        data=b"<p>hi</p>",
        obj_name="page.html",
        mime_type="text/html",
        properties={"color": "blue", "size": "small"},
    )
    assert info.mime_type == "text/html"
    assert info.properties == {"color": "blue", "size": "small"}
    head = api.object_head(container, "page.html")
    assert (head.mime_type, head.properties) == ("text/html", {"color": "blue", "size": "small"})
    fetched, stream = api.object_fetch(container, "page.html")
    stream.close()
    assert (fetched.mime_type, fetched.properties) == (head.mime_type, head.properties)
    plain = api.object_create(container, data=b"x", obj_name="plain")
    assert (plain.mime_type, plain.properties) == ("binary/octet-stream", {})


def test_policy_is_a_storage_class(api: ObjectStorageApi, container: str) -> None:
    info = api.object_create(container, data=payload(200_000), obj_name="ia", policy="STANDARD_IA")
    assert info.storage_class == "STANDARD_IA"
    assert info.policy == api.container_show(container).policy
    listed = api.object_list(container).objects
    assert [(o.name, o.storage_class) for o in listed] == [("ia", "STANDARD_IA")]
    with pytest.raises(BadRequest):
        api.object_create(container, data=b"x", obj_name="bad", policy="NO_SUCH_CLASS")
    with pytest.raises(NoSuchObject):
        api.object_head(container, "bad")


@pytest.mark.parametrize("size", [1000, 9 * MiB])
def test_etag_check(api: ObjectStorageApi, container: str, size: int) -> None:
    old = payload(100, seed=9)
    api.object_create(container, data=old, obj_name="kept")
    data = payload(size, seed=2)
    for name in ("new", "kept"):
        with pytest.raises(EtagMismatch):
            api.object_create(container, data=data, obj_name=name, etag=md5(b"something else"))
    with pytest.raises(NoSuchObject):
        api.object_head(container, "new")
    assert read_all(api, container, "kept") == old
    info = api.object_create(container, data=data, obj_name="new", etag=md5(data))
    assert info.etag == (md5(data) if size < 8 * MiB else multipart_etag(data))
    assert [o.name for o in api.object_list(container).objects] == ["kept", "new"]


@pytest.mark.parametrize("size", [8 * MiB - 1, 8 * MiB, 17 * MiB + 3])
def test_multipart_etag_rule(api: ObjectStorageApi, container: str, size: int) -> None:
    """Bodies of 8 MiB or more are multipart uploads with 8 MiB parts (Bucket
    sync compares local files by this rule)."""
    data = payload(size, seed=size)
    info = api.object_create(container, data=io.BytesIO(data), obj_name="big")
    expected = md5(data) if size < 8 * MiB else multipart_etag(data)
    assert (info.size, info.etag) == (size, expected)
    assert api.object_head(container, "big").etag == expected
    assert hashlib.md5(read_all(api, container, "big")).hexdigest() == md5(data)


# -------------------------------------------------------------------- fetch


def test_fetch_ranges(api: ObjectStorageApi, container: str) -> None:
    data = payload(300_000, seed=4)
    api.object_create(container, data=data, obj_name="r")

    def fetch(ranges: list[tuple[int | None, int | None]]) -> bytes:
        info, stream = api.object_fetch(container, "r", ranges=ranges)
        assert info.size == len(data)
        return stream.read()

    assert fetch([(0, 9)]) == data[:10]
    assert fetch([(299_990, None)]) == data[299_990:]
    assert fetch([(None, 5)]) == data[-5:]
    assert fetch([(100_000, 250_000)]) == data[100_000:250_001]
    assert fetch([(0, 1), (200_000, 200_002), (None, 2)]) == (
        data[:2] + data[200_000:200_003] + data[-2:]
    )
    assert fetch([(0, 10**9)]) == data
    with pytest.raises(RangeNotSatisfiable):
        api.object_fetch(container, "r", ranges=[(len(data), None)])


def test_fetch_missing(api: ObjectStorageApi, container: str) -> None:
    with pytest.raises(NoSuchObject):
        api.object_fetch(container, "nope")
    with pytest.raises(NoSuchContainer):
        api.object_fetch(unique(), "nope")
    with pytest.raises(NoSuchObject):
        api.object_head(container, "nope")


def test_fetch_closed_early(api: ObjectStorageApi, container: str) -> None:
    data = payload(5 * MiB, seed=5)
    api.object_create(container, data=data, obj_name="big")
    perf: dict[str, float] = {}
    for _ in range(12):  # more than the connection pool: closing must free connections
        _, stream = api.object_fetch(container, "big", perfdata=perf)
        first = next(stream)
        assert data.startswith(first) and 0 < len(first) < len(data)
        stream.close()
        assert list(stream) == []
    assert 0 < perf["bytes"] < len(data) and perf["total"] >= 0
    with api.object_fetch(container, "big")[1] as stream:
        assert next(stream)
    assert read_all(api, container, "big") == data


def test_perfdata(api: ObjectStorageApi, container: str) -> None:
    data = payload(2 * MiB + 1, seed=6)
    perf: dict[str, float] = {}
    api.object_create(container, data=data, obj_name="p", perfdata=perf)
    assert perf["bytes"] == len(data) and perf["total"] >= 0
    perf = {}
    _, stream = api.object_fetch(container, "p", perfdata=perf)
    assert stream.read() == data
    assert perf["bytes"] == len(data)
    perf = {}
    api.object_head(container, "p", trust_level=2, perfdata=perf)
    assert perf["bytes"] == len(data)


# ----------------------------------------------------------- head, trust


@pytest.mark.parametrize("size", [10, 300_000, 9 * MiB])
def test_head_trust_levels(api: ObjectStorageApi, container: str, size: int) -> None:
    data = payload(size, seed=7)
    created = api.object_create(container, data=data, obj_name="t")
    for level in (0, 1, 2):
        info = api.object_head(container, "t", trust_level=level)
        assert (info.size, info.etag, info.version) == (size, created.etag, created.version)
    with pytest.raises(BadRequest):
        api.object_head(container, "t", trust_level=3)


def test_locate(api: ObjectStorageApi, container: str) -> None:
    small = api.object_create(container, data=b"tiny", obj_name="small")
    loc = api.object_locate(container, "small")
    assert (loc.container, loc.name, loc.size, loc.version) == (
        container,
        "small",
        4,
        small.version,
    )
    assert loc.inline or sum(s.size for s in loc.segments) == 4
    data = payload(3 * MiB, seed=8)
    api.object_create(container, data=data, obj_name="large")
    loc = api.object_locate(container, "large")
    assert not loc.inline and loc.size == len(data)
    assert sum(s.size for s in loc.segments) == len(data)
    offset = 0
    for seg in loc.segments:
        assert seg.offset == offset and seg.hash and seg.policy and seg.fragments
        assert all(f.block and f.server and f.size > 0 for f in seg.fragments)
        offset += seg.size
    with pytest.raises(NoSuchObject):
        api.object_locate(container, "missing")


# -------------------------------------------------------------- properties


def test_object_properties(api: ObjectStorageApi, container: str) -> None:
    created = api.object_create(container, data=b"d", obj_name="o", properties={"a": "1"})
    info = api.object_set_properties(container, "o", {"b": "2"})
    assert info.properties == {"a": "1", "b": "2"}
    assert (info.version, info.etag) == (created.version, created.etag)
    assert api.object_get_properties(container, "o") == {"a": "1", "b": "2"}
    assert api.object_set_properties(container, "o", {"c": "3"}, clear=True).properties == {
        "c": "3"
    }
    assert api.object_del_properties(container, "o", ["c", "never"]).properties == {}
    assert api.object_get_properties(container, "o") == {}
    assert read_all(api, container, "o") == b"d"
    with pytest.raises(NoSuchObject):
        api.object_set_properties(container, "missing", {"a": "1"})
    with pytest.raises(NoSuchObject):
        api.object_get_properties(container, "missing")


def test_properties_of_a_version(api: ObjectStorageApi, versioned: str) -> None:
    v1 = api.object_create(versioned, data=b"1", obj_name="o", properties={"v": "1"})
    v2 = api.object_create(versioned, data=b"2", obj_name="o", properties={"v": "2"})
    api.object_set_properties(versioned, "o", {"x": "old"}, version=v1.version)
    assert api.object_get_properties(versioned, "o", version=v1.version) == {"v": "1", "x": "old"}
    assert api.object_get_properties(versioned, "o") == {"v": "2"}
    api.object_del_properties(versioned, "o", ["v"], version=v2.version)
    assert api.object_get_properties(versioned, "o") == {}


# ---------------------------------------------------------- delete, versions


def test_delete(api: ObjectStorageApi, container: str) -> None:
    created = api.object_create(container, data=b"abc", obj_name="a")
    gone = api.object_delete(container, "a")
    assert (gone.name, gone.etag, gone.size, gone.deleted) == ("a", created.etag, 3, False)
    with pytest.raises(NoSuchObject):
        api.object_delete(container, "a")
    with pytest.raises(NoSuchObject):
        api.object_fetch(container, "a")
    with pytest.raises(NoSuchContainer):
        api.object_delete(unique(), "a")


def test_delete_many(api: ObjectStorageApi, container: str) -> None:
    for name in ("a", "b", "c"):
        api.object_create(container, data=name.encode(), obj_name=name)
    result = api.object_delete_many(container, ["a", "missing", "c"])
    assert result == [("a", True), ("missing", False), ("c", True)]
    assert [o.name for o in api.object_list(container).objects] == ["b"]
    assert api.object_delete_many(container, []) == []


def test_versions_and_delete_markers(api: ObjectStorageApi, versioned: str) -> None:
    v1 = api.object_create(versioned, data=b"one", obj_name="k")
    v2 = api.object_create(versioned, data=b"two", obj_name="k")
    assert v1.version != v2.version and "null" not in (v1.version, v2.version)
    assert read_all(api, versioned, "k") == b"two"
    assert read_all(api, versioned, "k", version=v1.version) == b"one"
    assert api.object_head(versioned, "k", version=v1.version).etag == md5(b"one")
    page = api.object_list(versioned, versions=True)
    assert [(o.version, o.is_latest) for o in page.objects] == [
        (v2.version, True),
        (v1.version, False),
    ]

    marker = api.object_delete(versioned, "k")
    assert marker.deleted and marker.version not in (v1.version, v2.version)
    with pytest.raises(NoSuchObject):
        api.object_fetch(versioned, "k")
    with pytest.raises(NoSuchObject):
        api.object_delete(versioned, "k")
    assert api.object_list(versioned).objects == []
    assert len(api.object_list(versioned, versions=True).objects) == 2
    listed = api.object_list(versioned, versions=True, deleted=True).objects
    assert [(o.version, o.deleted) for o in listed] == [
        (marker.version, True),
        (v2.version, False),
        (v1.version, False),
    ]
    assert read_all(api, versioned, "k", version=v2.version) == b"two"

    api.object_delete(versioned, "k", version=marker.version)  # undelete
    assert read_all(api, versioned, "k") == b"two"
    removed = api.object_delete(versioned, "k", version=v1.version)
    assert (removed.version, removed.etag) == (v1.version, md5(b"one"))
    with pytest.raises(NoSuchObject):
        api.object_fetch(versioned, "k", version=v1.version)
    with pytest.raises(NoSuchObject):
        api.object_delete(versioned, "k", version=v1.version)


# ------------------------------------------------------------------ listing


def test_list_paging(api: ObjectStorageApi, container: str) -> None:
    names = ["a/1", "a/2", "b/1", "b/2/x", "c", "d"]
    for i, name in enumerate(names):
        api.object_create(container, data=bytes(i + 1), obj_name=name, properties={"i": str(i)})

    def names_of(**kw: object) -> list[str]:
        return [o.name for o in api.object_list(container, **kw).objects]  # type: ignore[arg-type]

    collected, marker, pages = [], "", 0
    while True:
        page = api.object_list(container, marker=marker, limit=4)
        collected += [o.name for o in page.objects]
        pages += 1
        if not page.truncated:
            assert page.next_marker == ""
            break
        assert page.next_marker == collected[-1]
        marker = page.next_marker
    assert (collected, pages) == (names, 2)

    page = api.object_list(container, delimiter="/")
    assert ([o.name for o in page.objects], page.prefixes) == (["c", "d"], ["a/", "b/"])
    page = api.object_list(container, prefix="b/", delimiter="/")
    assert ([o.name for o in page.objects], page.prefixes) == (["b/1"], ["b/2/"])
    assert names_of(prefix="a/") == ["a/1", "a/2"]
    assert names_of(marker="a/2") == names[2:]
    assert names_of(end_marker="b/2/x") == names[:3]
    assert names_of(marker="a/1", end_marker="c") == ["a/2", "b/1", "b/2/x"]
    page = api.object_list(container, limit=1, delimiter="/")
    assert (page.prefixes, page.truncated, page.next_marker) == (["a/"], True, "a/")
    page = api.object_list(container, delimiter="/", marker="a/")
    assert ([o.name for o in page.objects], page.prefixes) == (["c", "d"], ["b/"])

    sizes = {o.name: o.size for o in api.object_list(container).objects}
    assert sizes == {name: i + 1 for i, name in enumerate(names)}
    with_props = api.object_list(container, properties=True).objects
    assert [o.properties for o in with_props] == [{"i": str(i)} for i in range(len(names))]
    with pytest.raises(NoSuchContainer):
        api.object_list(unique())


def test_list_versions_paging(api: ObjectStorageApi, versioned: str) -> None:
    made = [api.object_create(versioned, data=b"%d" % i, obj_name="k") for i in range(3)]
    made.append(api.object_create(versioned, data=b"z", obj_name="z"))
    expected = [(m.name, m.version) for m in [*reversed(made[:3]), made[3]]]
    got: list[tuple[str, str]] = []
    marker = version_marker = ""
    for _ in range(10):
        page = api.object_list(
            versioned, versions=True, limit=2, marker=marker, version_marker=version_marker
        )
        got += [(o.name, o.version) for o in page.objects]
        if not page.truncated:
            break
        marker, version_marker = page.next_marker, page.next_version_marker
    assert got == expected
