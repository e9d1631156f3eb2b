"""The flowserv-style storage volume contract, its file handles and key rules.

Keys are relative to the volume: '/'-separated, never starting with '/',
with no empty, ``.`` or ``..`` segment and no NUL byte (:func:`check_key`
raises :class:`InvalidKey`, a BadRequest, otherwise). A *folder* is a key
prefix ending at a segment boundary: folder ``a/b`` holds ``a/b/x`` and never
``a/bc`` (:func:`under`). Keys returned by a volume never include the
volume's own base (folder, bucket prefix) — flowserv's S3 volume leaked it.

Missing things: :meth:`StorageVolume.load` raises NoSuchObject; ``walk``,
``query`` and ``delete`` of a missing key or folder return empty results.
"""

from __future__ import annotations

import io
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import IO, Any

from tessera.sdk.errors import BadRequest


class InvalidKey(BadRequest):
    """A key that is not a clean relative '/'-separated path."""

    code = "InvalidKey"


class InvalidVolumeConfig(ValueError):
    """A volume document :func:`~tessera.sdk.volumes.volume_from_dict` cannot build."""


def check_key(key: str, *, folder: bool = False) -> str:
    """``key`` when it is a valid key; with ``folder``, also "" (the whole
    volume) and a trailing '/' (stripped). Raises InvalidKey otherwise."""
    if folder:
        if key in ("", "/"):
            return ""
        key = key[:-1] if key.endswith("/") else key
    if not key or key.startswith("/") or "\0" in key:
        raise InvalidKey(f"invalid key {key!r}: keys are relative '/'-separated paths")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKey(f"invalid key {key!r}: empty, '.' or '..' segment")
    return key


def under(key: str, folder: str) -> bool:
    """True when ``key`` is ``folder`` itself or inside it (whole segments)."""
    return not folder or key == folder or key.startswith(folder + "/")


def join(*parts: str) -> str:
    """Join key parts with '/', skipping empty ones."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


class IOHandle(ABC):
    """A file to read: :meth:`open` gives a new binary file object each call
    (the caller closes it); :meth:`size` its length in bytes."""

    @abstractmethod
    def open(self) -> IO[bytes]: ...

    @abstractmethod
    def size(self) -> int: ...


class IOBuffer(IOHandle):
    """Bytes in memory as a handle."""

    def __init__(self, data: bytes | bytearray | memoryview | io.BytesIO) -> None:
        self.data = data.getvalue() if isinstance(data, io.BytesIO) else bytes(data)

    def open(self) -> IO[bytes]:
        return io.BytesIO(self.data)

    def size(self) -> int:
        return len(self.data)


class FileHandle(IOHandle):
    """A local file as a handle (read when opened, not before)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def open(self) -> IO[bytes]:
        return open(self.path, "rb")

    def size(self) -> int:
        return os.path.getsize(self.path)


class IteratorReader(io.RawIOBase):
    """A read-only raw stream over an iterator of byte pieces; ``closer`` is
    called once on close (releases the connection behind the iterator)."""

    def __init__(self, pieces: Iterator[bytes], closer: Callable[[], object]) -> None:
        self._pieces = pieces
        self._closer: Callable[[], object] | None = closer
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._left = piece
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._left))
        view[:n] = self._left[:n]
        self._left = self._left[n:]
        return n

    def close(self) -> None:
        if self._closer is not None:
            closer, self._closer = self._closer, None
            closer()
        super().close()


def as_handle(file: str | IOHandle | bytes) -> IOHandle:
    """A path, bytes or a handle, as a handle."""
    if isinstance(file, IOHandle):
        return file
    if isinstance(file, bytes | bytearray | memoryview):
        return IOBuffer(file)
    return FileHandle(str(file))


def kv_args(doc: dict[str, Any]) -> dict[str, Any]:
    """flowserv's ``args`` list of ``{'key', 'value'}`` as a dict."""
    args = doc.get("args") or []
    try:
        return {str(a["key"]): a["value"] for a in args}
    except (KeyError, TypeError) as e:
        raise InvalidVolumeConfig(f"bad volume args {args!r}") from e


class StorageVolume(ABC):
    """A place that stores files under keys (see the module docstring for
    key rules). ``identifier`` names the volume in a volume manager (a
    random one by default)."""

    kind = ""
    """The ``type`` of :meth:`to_dict`."""

    def __init__(self, identifier: str | None = None) -> None:
        self.identifier = identifier or uuid.uuid4().hex

    def close(self) -> None:
        """Release connections this volume owns (none by default). Idempotent."""
        return None

    @abstractmethod
    def describe(self) -> str:
        """One line saying what and where the volume is."""

    @abstractmethod
    def load(self, key: str) -> IOHandle:
        """The file ``key`` (NoSuchObject when there is none)."""

    @abstractmethod
    def store(self, file: str | IOHandle | bytes, dst: str) -> None:
        """Write ``file`` (a local path, bytes or a handle) as ``dst``,
        replacing it atomically (readers see the old or the new content)."""

    @abstractmethod
    def walk(self, src: str | None = None) -> list[tuple[str, IOHandle]]:
        """(key, handle) of every file that is ``src`` or under folder ``src``
        (None or "": the whole volume), sorted by key."""

    def query(self, prefix: str = "") -> list[str]:
        """The sorted keys that are ``prefix`` or under folder ``prefix``."""
        return [key for key, _ in self.walk(prefix)]

    @abstractmethod
    def delete(self, key: str) -> int:
        """Delete file ``key`` and everything under folder ``key`` (never
        ``key`` + other characters). Returns the number of files deleted."""

    @abstractmethod
    def erase(self) -> None:
        """Delete everything in the volume."""

    @abstractmethod
    def mkdir(self, path: str) -> None:
        """Make folder ``path`` exist (a no-op on object stores)."""

    @abstractmethod
    def get_store_for_folder(self, key: str, identifier: str | None = None) -> StorageVolume:
        """A volume of the same kind rooted at folder ``key`` of this one
        (sharing this one's connection)."""

    @abstractmethod
    def args(self, include_secrets: bool = False) -> dict[str, Any]:
        """Constructor arguments that :meth:`to_dict` records."""

    def to_dict(self, include_secrets: bool = False) -> dict[str, Any]:
        """flowserv's document ``{'type', 'id', 'args': [{'key','value'}...]}``.
        Secrets (S3 keys) are left out unless ``include_secrets``."""
        args = self.args(include_secrets)
        return {
            "type": self.kind,
            "id": self.identifier,
            "args": [{"key": k, "value": v} for k, v in args.items() if v is not None],
        }

    def copy(
        self,
        src: str | None,
        store: StorageVolume,
        dst: str | None = None,
        verbose: bool = False,
    ) -> list[str]:
        """Copy ``src`` (a file, or every file under a folder; None: all) into
        ``store``: a file goes to ``dst`` (default: same key), a folder's files
        to ``dst/<path inside src>``. Returns the destination keys."""
        folder = check_key(src or "", folder=True)
        files = self.walk(folder)
        copied = []
        for key, handle in files:
            if key == folder:
                target = dst or key
            else:
                target = join(dst or "", key[len(folder) :] if folder else key)
            if verbose:
                print(f"copy {self.identifier}:{key} to {store.identifier}:{target}")
            store.store(handle, target)
            copied.append(target)
        return copied

    def __enter__(self) -> StorageVolume:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
