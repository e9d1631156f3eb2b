"""What the object-store volumes (S3, Tessera) share: keys live under a
``prefix`` of one bucket, folders do not exist (``mkdir`` is a no-op), and
walking, querying and deleting are one prefix listing filtered to whole
segments (a raw listing of ``a/b`` also returns ``a/bc``, dropped here).
Keys ending with '/' (folder markers made by other tools) are not files and
are never returned.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence

from tessera.sdk.volumes.base import IOHandle, StorageVolume, check_key, join, under

DELETE_BATCH = 1000


class ObjectStoreVolume(StorageVolume):
    """A volume over a flat key space; subclasses list, delete and read raw keys."""

    def __init__(self, prefix: str = "", identifier: str | None = None) -> None:
        super().__init__(identifier)
        self.prefix = check_key(prefix, folder=True)

    def _full(self, key: str) -> str:
        return join(self.prefix, key)

    @abstractmethod
    def _list_raw(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(full key, size) of every object whose key starts with ``prefix``."""

    @abstractmethod
    def _delete_raw(self, keys: Sequence[str]) -> None:
        """Delete these full keys (at most DELETE_BATCH; missing ones ignored)."""

    @abstractmethod
    def _handle(self, full_key: str, size: int) -> IOHandle: ...

    def _matching(self, folder: str) -> list[tuple[str, str, int]]:
        """(key, full key, size) of the files that are ``folder`` or under it."""
        base = self.prefix + "/" if self.prefix else ""
        found = []
        for full, size in self._list_raw(self._full(folder) if folder else base):
            if full.endswith("/") or not full.startswith(base):
                continue
            key = full[len(base) :]
            if under(key, folder):
                found.append((key, full, size))
        return sorted(found)

    def walk(self, src: str | None = None) -> list[tuple[str, IOHandle]]:
        folder = check_key(src or "", folder=True)
        return [(key, self._handle(full, size)) for key, full, size in self._matching(folder)]

    def query(self, prefix: str = "") -> list[str]:
        return [key for key, _, _ in self._matching(check_key(prefix, folder=True))]

    def _delete_folder(self, folder: str) -> int:
        fulls = [full for _, full, _ in self._matching(folder)]
        for i in range(0, len(fulls), DELETE_BATCH):
            self._delete_raw(fulls[i : i + DELETE_BATCH])
        return len(fulls)

    def delete(self, key: str) -> int:
        return self._delete_folder(check_key(key))

    def erase(self) -> None:
        """Delete every object under the volume's prefix (the bucket stays)."""
        self._delete_folder("")

    def mkdir(self, path: str) -> None:
        """Nothing to do on an object store (the key is still checked)."""
        check_key(path)
