"""A storage volume in a local folder (flowserv's ``FStore``).

Key ``a/b`` is the file ``basedir/a/b``. Writes go through a temporary file in
the target folder renamed over the target, so readers see the old or the new
content. Symbolic links inside the folder are neither followed by
:meth:`FileSystemVolume.walk` nor listed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import suppress
from typing import Any

from tessera.sdk.errors import NoSuchObject
from tessera.sdk.volumes.base import (
    FileHandle,
    InvalidVolumeConfig,
    IOHandle,
    StorageVolume,
    as_handle,
    check_key,
    join,
    kv_args,
)

COPY_SIZE = 1 << 20


class FileSystemVolume(StorageVolume):
    """Files under ``basedir`` (created on first write)."""

    kind = "fs"

    def __init__(self, basedir: str | os.PathLike[str], identifier: str | None = None) -> None:
        super().__init__(identifier)
        self.basedir = os.path.abspath(os.fspath(basedir))

    def _path(self, key: str) -> str:
        return os.path.join(self.basedir, *key.split("/")) if key else self.basedir

    def describe(self) -> str:
        return f"file system volume at {self.basedir}"

    def load(self, key: str) -> IOHandle:
        path = self._path(check_key(key))
        if not os.path.isfile(path) or os.path.islink(path):
            raise NoSuchObject(f"no file {key!r} in {self.describe()}")
        return FileHandle(path)

    def store(self, file: str | IOHandle | bytes, dst: str) -> None:
        path = self._path(check_key(dst))
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tessera-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, as_handle(file).open() as src:
                shutil.copyfileobj(src, out, COPY_SIZE)
            os.replace(tmp, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise

    def _files(self, folder: str) -> list[str]:
        top = self._path(folder)
        if os.path.islink(top):
            return []
        if os.path.isfile(top):
            return [folder]
        found = []
        for here, dirs, files in os.walk(top, followlinks=False):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(here, d))]
            rel = os.path.relpath(here, self.basedir).replace(os.sep, "/")
            for f in files:
                path = os.path.join(here, f)
                if f.startswith(".tessera-") or os.path.islink(path) or not os.path.isfile(path):
                    continue
                found.append(join("" if rel == "." else rel, f))
        return sorted(found)

    def walk(self, src: str | None = None) -> list[tuple[str, IOHandle]]:
        folder = check_key(src or "", folder=True)
        return [(key, FileHandle(self._path(key))) for key in self._files(folder)]

    def query(self, prefix: str = "") -> list[str]:
        return self._files(check_key(prefix, folder=True))

    def delete(self, key: str) -> int:
        key = check_key(key)
        path = self._path(key)
        count = len(self._files(key))
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)
        return count

    def erase(self) -> None:
        """Remove ``basedir`` and everything in it."""
        with suppress(FileNotFoundError):
            shutil.rmtree(self.basedir)

    def mkdir(self, path: str) -> None:
        os.makedirs(self._path(check_key(path)), exist_ok=True)

    def get_store_for_folder(self, key: str, identifier: str | None = None) -> FileSystemVolume:
        return FileSystemVolume(self._path(check_key(key)), identifier)

    def args(self, include_secrets: bool = False) -> dict[str, Any]:
        return {"basedir": self.basedir}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> FileSystemVolume:
        args = kv_args(doc)
        if "basedir" not in args:
            raise InvalidVolumeConfig("a file system volume needs 'basedir'")
        return cls(str(args["basedir"]), doc.get("id"))
