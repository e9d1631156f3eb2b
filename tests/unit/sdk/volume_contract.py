"""One test suite for every storage volume kind (inherited by the unit tests
of FileSystemVolume and the integration tests of S3Volume and TesseraVolume).

A subclass provides the fixtures ``volume`` (a fresh, empty volume) and
``target`` (another fresh volume, for copies), and implements
:meth:`VolumeContract.rebuild` (``volume_from_dict`` with what the kind needs).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tessera.sdk.errors import NoSuchObject
from tessera.sdk.volumes import InvalidKey, IOBuffer, StorageVolume

BAD_KEYS = ["/a", "a/../b", "..", "a//b", "./a", "a/.", ""]


def read(volume: StorageVolume, key: str) -> bytes:
    with volume.load(key).open() as f:
        return f.read()


def fill(volume: StorageVolume) -> None:
    for key in ("a/b/x", "a/b/y/z", "a/bc", "a/b.txt", "top"):
        volume.store(key.encode(), key)


class VolumeContract:
    def rebuild(self, volume: StorageVolume, doc: dict[str, Any]) -> StorageVolume:
        raise NotImplementedError

    def test_store_and_load_from_bytes_path_and_handle(
        self, volume: StorageVolume, tmp_path: Path
    ) -> None:
        volume.store(b"from bytes", "one")
        src = tmp_path / "src.bin"
        src.write_bytes(b"from a path" * 1000)
        volume.store(str(src), "dir/two")
        volume.store(IOBuffer(io.BytesIO(b"from a handle")), "dir/sub/three")
        assert read(volume, "one") == b"from bytes"
        assert read(volume, "dir/two") == b"from a path" * 1000
        assert read(volume, "dir/sub/three") == b"from a handle"
        assert volume.load("dir/two").size() == 11000

    def test_open_gives_a_new_stream_each_time_and_partial_reads(
        self, volume: StorageVolume
    ) -> None:
        data = bytes(range(256)) * 5000
        volume.store(data, "blob")
        handle = volume.load("blob")
        with handle.open() as f:
            assert f.read(10) == data[:10]
            assert f.read(300) == data[10:310]
            assert f.read() == data[310:]
            assert f.read() == b""
        with handle.open() as f:
            assert f.read() == data

    def test_store_replaces(self, volume: StorageVolume) -> None:
        volume.store(b"old", "k")
        volume.store(b"new content", "k")
        assert read(volume, "k") == b"new content"
        assert volume.query("") == ["k"]

    def test_load_missing_raises(self, volume: StorageVolume) -> None:
        with pytest.raises(NoSuchObject):
            volume.load("missing")
        volume.store(b"x", "a/file")
        with pytest.raises(NoSuchObject):
            volume.load("a")

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_bad_keys_are_refused(self, volume: StorageVolume, key: str) -> None:
        with pytest.raises(InvalidKey):
            volume.store(b"x", key)
        with pytest.raises(InvalidKey):
            volume.load(key)
        with pytest.raises(InvalidKey):
            volume.delete(key)

    def test_walk_folder_file_and_missing(self, volume: StorageVolume) -> None:
        fill(volume)
        walked = volume.walk("a/b")
        assert [k for k, _ in walked] == ["a/b/x", "a/b/y/z"]
        assert [h.size() for _, h in walked] == [5, 7]
        with walked[1][1].open() as f:
            assert f.read() == b"a/b/y/z"
        single = volume.walk("a/bc")
        assert [k for k, _ in single] == ["a/bc"]
        assert [k for k, _ in volume.walk("a/b/")] == ["a/b/x", "a/b/y/z"]
        assert volume.walk("nothing/here") == []
        assert [k for k, _ in volume.walk(None)] == ["a/b.txt", "a/b/x", "a/b/y/z", "a/bc", "top"]

    def test_query_matches_whole_segments(self, volume: StorageVolume) -> None:
        fill(volume)
        assert volume.query("a/b") == ["a/b/x", "a/b/y/z"]
        assert volume.query("a/b/y") == ["a/b/y/z"]
        assert volume.query("a") == ["a/b.txt", "a/b/x", "a/b/y/z", "a/bc"]
        assert volume.query("a/bc") == ["a/bc"]
        assert volume.query("to") == []

    def test_delete_matches_whole_segments(self, volume: StorageVolume) -> None:
        fill(volume)
        assert volume.delete("a/b") == 2
        assert volume.query("") == ["a/b.txt", "a/bc", "top"]
        assert volume.delete("a/bc") == 1
        assert volume.delete("a/bc") == 0
        assert volume.delete("t") == 0
        assert volume.query("") == ["a/b.txt", "top"]

    def test_erase(self, volume: StorageVolume) -> None:
        fill(volume)
        volume.erase()
        assert volume.query("") == []
        volume.store(b"again", "x")
        assert volume.query("") == ["x"]

    def test_mkdir_then_store_inside(self, volume: StorageVolume) -> None:
        volume.mkdir("made/here")
        volume.store(b"x", "made/here/f")
        assert volume.query("made") == ["made/here/f"]
        with pytest.raises(InvalidKey):
            volume.mkdir("../out")

    def test_store_for_folder(self, volume: StorageVolume) -> None:
        fill(volume)
        child = volume.get_store_for_folder("a/b", identifier="child")
        assert child.identifier == "child"
        assert child.query("") == ["x", "y/z"]
        assert read(child, "y/z") == b"a/b/y/z"
        child.store(b"written by child", "new")
        assert read(volume, "a/b/new") == b"written by child"
        assert child.delete("y") == 1
        assert volume.query("a") == ["a/b.txt", "a/b/new", "a/b/x", "a/bc"]
        child.close()
        assert read(volume, "top") == b"top"

    def test_copy_to_another_volume(self, volume: StorageVolume, target: StorageVolume) -> None:
        fill(volume)
        assert volume.copy("a/b", target, "copied") == ["copied/x", "copied/y/z"]
        assert volume.copy("top", target) == ["top"]
        assert volume.copy("top", target, "renamed") == ["renamed"]
        assert target.query("") == ["copied/x", "copied/y/z", "renamed", "top"]
        assert read(target, "copied/y/z") == b"a/b/y/z"

    def test_dict_round_trip(self, volume: StorageVolume) -> None:
        fill(volume)
        doc = volume.to_dict()
        assert doc["type"] == volume.kind
        assert doc["id"] == volume.identifier
        assert all(set(arg) == {"key", "value"} for arg in doc["args"])
        again = self.rebuild(volume, doc)
        try:
            assert type(again) is type(volume)
            assert again.identifier == volume.identifier
            assert again.describe() == volume.describe()
            assert again.query("") == volume.query("")
            assert read(again, "a/bc") == b"a/bc"
            assert again.to_dict() == doc
        finally:
            again.close()
