"""Where Bucket downloads may land, name tidying and the local file walk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.sdk.bucket import local_files, tidy_name
from tessera.sdk.downloads import UnsafeName, safe_local_path, write_atomically
from tessera.sdk.errors import BadRequest


@pytest.mark.parametrize("name", ["a", "a/b/c.txt", "dir/.hidden", "x..y/z"])
def test_safe_names_land_inside(tmp_path: Path, name: str) -> None:
    assert safe_local_path(tmp_path, name) == os.path.join(tmp_path, *name.split("/"))


@pytest.mark.parametrize(
    "name", ["", "..", "../x", "a/../../x", "/etc/passwd", "a/./b", "a/", "a\0b", "a/.."]
)
def test_tricks_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeName, match="refusing remote name"):
        safe_local_path(tmp_path, name)


def test_existing_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "link")
    with pytest.raises(UnsafeName, match="leads outside"):
        safe_local_path(out, "link/file")


def test_tidy_name() -> None:
    assert tidy_name("//a//b/c") == "a/b/c"
    with pytest.raises(BadRequest):
        tidy_name("///")


def test_local_files_skip_links_and_prefix(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"f")
    (tmp_path / "top").write_bytes(b"t")
    os.symlink(tmp_path / "top", tmp_path / "d" / "link")
    os.symlink(tmp_path / "d", tmp_path / "dirlink")
    assert local_files(tmp_path) == {"d/f": str(tmp_path / "d" / "f"), "top": str(tmp_path / "top")}
    assert sorted(local_files(tmp_path, "/up/")) == ["up/d/f", "up/top"]


def test_write_atomically_leaves_old_content_on_error(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def pieces() -> Iterator[bytes]:
        yield b"new "
        raise OSError("connection lost")

    with pytest.raises(OSError, match="connection lost"):
        write_atomically(pieces(), str(target), 10, "f", None)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]
