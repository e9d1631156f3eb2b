"""S3-style ETags of local files and the pure sync planner (tessera.sdk.sync)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tessera.sdk import remote
from tessera.sdk.sync import (
    MULTIPART_THRESHOLD,
    PART_SIZE,
    LocalFile,
    file_etags,
    in_scope,
    plan_sync,
    s3_etag,
)


def md5(data: bytes) -> hashlib._Hash:
    return hashlib.md5(data, usedforsecurity=False)


def local(path: str, content: bytes) -> LocalFile:
    """A LocalFile as file_etags would compute it, without touching disk."""
    parts = [content[i : i + PART_SIZE] for i in range(0, len(content), PART_SIZE)]
    multi = md5(b"".join(md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"
    return LocalFile(path, len(content), md5(content).hexdigest(), multi if parts else "")


def test_thresholds_are_the_remote_backends() -> None:
    assert MULTIPART_THRESHOLD == remote.MULTIPART_THRESHOLD == 8 << 20
    assert PART_SIZE == remote.PART_SIZE == 8 << 20


def test_small_file_etag_is_plain_md5(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"hello")
    assert s3_etag(f) == "5d41402abc4b2a76b9719d911017c592"
    got = file_etags(f)
    assert got.size == 5
    assert got.multipart == md5(md5(b"hello").digest()).hexdigest() + "-1"


def test_multipart_etag_over_small_parts(tmp_path: Path) -> None:
    data = bytes(range(10)) * 3  # 30 bytes -> parts of 8, 8, 8, 6
    f = tmp_path / "f"
    f.write_bytes(data)
    got = file_etags(f, part_size=8)
    digests = [md5(data[i : i + 8]).digest() for i in (0, 8, 16, 24)]
    assert got.multipart == md5(b"".join(digests)).hexdigest() + "-4"
    assert got.md5 == md5(data).hexdigest()


def test_large_file_etag_is_multipart(tmp_path: Path) -> None:
    data = b"x" * (MULTIPART_THRESHOLD + 5)
    f = tmp_path / "big"
    f.write_bytes(data)
    expected = md5(md5(data[:PART_SIZE]).digest() + md5(data[PART_SIZE:]).digest()).hexdigest()
    assert s3_etag(f) == expected + "-2"
    assert file_etags(f).matches(f'"{expected}-2"')
    assert file_etags(f).matches(md5(data).hexdigest())


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "empty"
    f.write_bytes(b"")
    got = file_etags(f)
    assert got.etag == "d41d8cd98f00b204e9800998ecf8427e"
    assert got.multipart == ""
    assert not got.matches("")


@pytest.mark.parametrize(
    ("name", "scope", "inside"),
    [
        ("data/x", "data", True),
        ("data", "data", True),
        ("data2/x", "data", False),
        ("datax", "data/", False),
        ("anything", None, True),
        ("anything", "", True),
    ],
)
def test_scope_is_whole_segments(name: str, scope: str | None, inside: bool) -> None:
    assert in_scope(name, scope) is inside


def test_new_changed_unchanged_and_extras() -> None:
    a, b, c = local("/l/a", b"A"), local("/l/b", b"B2"), local("/l/c", b"C")
    remote_side = {"a": a.md5, "b": md5(b"B1").hexdigest(), "old": md5(b"O").hexdigest()}
    plan = plan_sync({"a": a, "b": b, "c": c}, remote_side)
    assert plan.unchanged == ["a"]
    assert plan.uploads == [("b", "/l/b"), ("c", "/l/c")]
    assert plan.upload_bytes == 3
    assert plan.copies == [] and plan.copies_after == []
    assert plan.deletes == ["old"]


def test_rename_is_a_copy_then_a_delete() -> None:
    f = local("/l/new", b"content")
    plan = plan_sync({"new": f}, {"old": f.md5})
    assert plan.copies == [("old", "new")]
    assert plan.uploads == [] and plan.upload_bytes == 0
    assert plan.deletes == ["old"]


def test_rename_of_multipart_content_matches_the_multipart_etag() -> None:
    f = local("/l/big2", b"z" * (PART_SIZE + 1))
    plan = plan_sync({"big2": f}, {"big": f'"{f.multipart}"'})
    assert plan.copies == [("big", "big2")]
    assert plan.uploads == []


def test_duplicates_upload_once_then_copy() -> None:
    one, two, three = local("/l/1", b"same"), local("/l/2", b"same"), local("/l/3", b"same")
    plan = plan_sync({"x/1": one, "x/2": two, "x/3": three}, {})
    assert plan.uploads == [("x/1", "/l/1")]
    assert plan.copies_after == [("x/1", "x/2"), ("x/1", "x/3")]


def test_content_already_remote_under_an_unchanged_name_is_copied() -> None:
    keep, dup = local("/l/keep", b"K"), local("/l/dup", b"K")
    plan = plan_sync({"keep": keep, "dup": dup}, {"keep": keep.md5})
    assert plan.unchanged == ["keep"]
    assert plan.copies == [("keep", "dup")]
    assert plan.deletes == []


def test_swap_never_copies_from_a_name_being_overwritten() -> None:
    a, b = local("/l/a", b"Y"), local("/l/b", b"X")
    plan = plan_sync({"a": a, "b": b}, {"a": b.md5, "b": a.md5})
    assert plan.copies == [] and plan.copies_after == []
    assert sorted(plan.uploads) == [("a", "/l/a"), ("b", "/l/b")]


def test_scope_limits_deletes_not_copy_sources() -> None:
    f = local("/l/f", b"F")
    remote_side = {"data2/x": f.md5, "data/gone": "e1", "other": "e2"}
    plan = plan_sync({"data/f": f}, remote_side, scope="data")
    assert plan.copies == [("data2/x", "data/f")]
    assert plan.deletes == ["data/gone"]


def test_in_sync_plan_is_empty() -> None:
    a = local("/l/a", b"A")
    plan = plan_sync({"a": a}, {"a": f'"{a.md5}"'})
    assert plan.empty
    assert not plan_sync({"a": a}, {}).empty
