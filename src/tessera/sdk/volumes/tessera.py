"""A storage volume in a Tessera container, through
:class:`~tessera.sdk.api.ObjectStorageApi` (remote or embedded alike).

The connection is not part of :meth:`TesseraVolume.to_dict` (it holds
credentials or an open store): :func:`~tessera.sdk.volumes.volume_from_dict`
takes it as an argument. The volume never closes it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import IO, Any

from tessera.sdk.api import ObjectStorageApi
from tessera.sdk.errors import NoSuchObject
from tessera.sdk.volumes.base import (
    InvalidVolumeConfig,
    IOHandle,
    IteratorReader,
    as_handle,
    check_key,
    join,
    kv_args,
)
from tessera.sdk.volumes.objects import ObjectStoreVolume

PAGE = 1000


class TesseraObjectHandle(IOHandle):
    def __init__(self, conn: ObjectStorageApi, container: str, name: str, size: int) -> None:
        self.conn, self.container, self.name, self._size = conn, container, name, size

    def open(self) -> IO[bytes]:
        _, stream = self.conn.object_fetch(self.container, self.name)
        return io.BufferedReader(IteratorReader(stream, stream.close))

    def size(self) -> int:
        return self._size


class TesseraVolume(ObjectStoreVolume):
    """Files under ``prefix`` in ``container`` (which must exist)."""

    kind = "tessera"

    def __init__(
        self,
        conn: ObjectStorageApi,
        container: str,
        prefix: str = "",
        identifier: str | None = None,
    ) -> None:
        super().__init__(prefix, identifier)
        self.conn = conn
        self.container = container

    def describe(self) -> str:
        return f"Tessera volume {join(self.container, self.prefix)} (account {self.conn.account})"

    def _list_raw(self, prefix: str) -> Iterator[tuple[str, int]]:
        marker = ""
        for _ in range(1 << 40):
            page = self.conn.object_list(self.container, prefix=prefix, marker=marker, limit=PAGE)
            for o in page.objects:
                if not o.deleted:
                    yield o.name, o.size
            if not page.truncated:
                return
            marker = page.next_marker

    def _delete_raw(self, keys: Sequence[str]) -> None:
        self.conn.object_delete_many(self.container, list(keys))

    def _handle(self, full_key: str, size: int) -> IOHandle:
        return TesseraObjectHandle(self.conn, self.container, full_key, size)

    def load(self, key: str) -> IOHandle:
        full = self._full(check_key(key))
        try:
            info = self.conn.object_head(self.container, full)
        except NoSuchObject as e:
            raise NoSuchObject(f"no file {key!r} in {self.describe()}") from e
        if info.deleted:
            raise NoSuchObject(f"no file {key!r} in {self.describe()}")
        return self._handle(full, info.size)

    def store(self, file: str | IOHandle | bytes, dst: str) -> None:
        full = self._full(check_key(dst))
        with as_handle(file).open() as src:
            self.conn.object_create(self.container, src, obj_name=full)

    def get_store_for_folder(self, key: str, identifier: str | None = None) -> TesseraVolume:
        return TesseraVolume(
            self.conn, self.container, join(self.prefix, check_key(key)), identifier
        )

    def args(self, include_secrets: bool = False) -> dict[str, Any]:
        return {"container": self.container, "prefix": self.prefix}

    @classmethod
    def from_dict(cls, doc: dict[str, Any], conn: ObjectStorageApi | None = None) -> TesseraVolume:
        args = kv_args(doc)
        if conn is None:
            raise InvalidVolumeConfig("a Tessera volume needs a connection (conn=...)")
        if "container" not in args:
            raise InvalidVolumeConfig("a Tessera volume needs 'container'")
        return cls(conn, str(args["container"]), str(args.get("prefix", "")), doc.get("id"))
