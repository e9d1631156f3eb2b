"""FileSystemVolume: the volume contract, plus what only a local folder has."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tessera.sdk.volumes import (
    FileSystemVolume,
    InvalidVolumeConfig,
    StorageVolume,
    volume_from_dict,
)
from unit.sdk.volume_contract import VolumeContract, read


class TestFileSystemVolume(VolumeContract):
    @pytest.fixture
    def volume(self, tmp_path: Path) -> FileSystemVolume:
        return FileSystemVolume(tmp_path / "vol", identifier="fs-under-test")

    @pytest.fixture
    def target(self, tmp_path: Path) -> FileSystemVolume:
        return FileSystemVolume(tmp_path / "target")

    def rebuild(self, volume: StorageVolume, doc: dict[str, Any]) -> StorageVolume:
        return volume_from_dict(doc)


def test_files_are_where_the_keys_say(tmp_path: Path) -> None:
    vol = FileSystemVolume(tmp_path)
    vol.store(b"data", "a/b/c.txt")
    assert (tmp_path / "a" / "b" / "c.txt").read_bytes() == b"data"
    assert sorted(os.listdir(tmp_path / "a" / "b")) == ["c.txt"]  # no temporary left


def test_symlinks_are_not_listed_nor_loaded(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    base = tmp_path / "vol"
    vol = FileSystemVolume(base)
    vol.store(b"x", "real")
    os.symlink(outside, base / "linkdir")
    os.symlink(outside / "secret", base / "linkfile")
    assert vol.query("") == ["real"]
    assert vol.walk("linkdir") == []
    with pytest.raises(Exception, match="no file"):
        vol.load("linkfile")


def test_erase_removes_the_folder(tmp_path: Path) -> None:
    vol = FileSystemVolume(tmp_path / "vol")
    vol.store(b"x", "a/b")
    vol.erase()
    assert not (tmp_path / "vol").exists()
    vol.erase()  # idempotent


def test_fs_dict_schema_and_default_type(tmp_path: Path) -> None:
    vol = FileSystemVolume(tmp_path, identifier="v1")
    assert vol.to_dict() == {
        "type": "fs",
        "id": "v1",
        "args": [{"key": "basedir", "value": str(tmp_path)}],
    }
    doc = {"id": "v2", "args": [{"key": "basedir", "value": str(tmp_path)}]}
    again = volume_from_dict(doc)
    assert isinstance(again, FileSystemVolume)
    vol.store(b"shared", "f")
    assert read(again, "f") == b"shared"


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "gopher", "args": []},
        {"type": "fs", "args": []},
        {"type": "fs", "args": [{"value": 1}]},
        {"type": "tessera", "args": [{"key": "container", "value": "c"}]},
        {"type": "s3", "args": [{"key": "prefix", "value": "p"}]},
        {"type": "s3", "args": [{"key": "bucket", "value": "b"}, {"key": "x", "value": 1}]},
    ],
)
def test_bad_documents_are_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(InvalidVolumeConfig):
        volume_from_dict(doc)
