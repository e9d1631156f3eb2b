"""The one interface under the SDK: what a backend must do.

:class:`~tessera.sdk.api.ObjectStorageApi` (and everything built on it) talks
only to a :class:`Backend`. Two implement it with the same behaviour, checked by
one contract suite (``tests/sdk``):

* :class:`tessera.sdk.remote.RemoteBackend` — a Tessera server over HTTP (S3
  through botocore/s3transfer, the rest through the JSON extension API);
* ``tessera.server.embedded.EmbeddedBackend`` — the core and data path in this
  process (``tessera.open(path)``), no server.

Contracts shared by every method:

* The backend acts for one account (the connection's credentials; embedded:
  the root account unless another was chosen). Another account's container
  raises :class:`~tessera.sdk.errors.Forbidden`.
* Missing things raise :class:`~tessera.sdk.errors.NoSuchContainer`,
  :class:`~tessera.sdk.errors.NoSuchObject` or
  :class:`~tessera.sdk.errors.NoSuchAccount`; nothing returns None for "missing".
* ``version=None`` means the latest version.
* Every write is atomic: an interrupted ``object_put`` leaves no object and the
  previous version (if any) intact.
* Bodies stream: ``object_put`` reads ``data`` piecewise and never needs it
  whole; ``object_get`` yields pieces as they arrive. Closing the returned
  iterator early releases the connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from tessera.sdk.records import (
    AccessKeyInfo,
    AccountInfo,
    ContainerInfo,
    ObjectInfo,
    ObjectList,
    ObjectLocation,
)


class Backend(Protocol):
    @property
    def account(self) -> str:
        """The account this backend acts for."""
        ...

    def close(self) -> None:
        """Release connections (and, embedded, the stores). Idempotent."""
        ...

    # -- accounts (creating, deleting and listing accounts needs the root account)

    def account_create(self, account: str, display_name: str = "") -> bool:
        """Create ``account``; False when it already existed."""
        ...

    def account_delete(self, account: str) -> None:
        """Delete an account that owns no container (Conflict otherwise)."""
        ...

    def account_list(self) -> list[str]: ...

    def account_show(self, account: str) -> AccountInfo:
        """With totals over its containers. Forbidden for another account unless root."""
        ...

    def account_update(
        self, account: str, set_: dict[str, str], delete: Sequence[str], clear: bool
    ) -> None:
        """Change properties: drop all first when ``clear``, then delete ``delete``,
        then set ``set_`` (one atomic update)."""
        ...

    def access_key_create(self, account: str) -> AccessKeyInfo:
        """A new key pair for ``account`` (itself, or any account for root)."""
        ...

    # -- containers

    def container_create(
        self,
        container: str,
        properties: dict[str, str] | None = None,
        policy: str | None = None,
        versioning: bool = False,
    ) -> bool:
        """Create ``container``; False when this account already owns it.
        Conflict when another account does."""
        ...

    def container_delete(self, container: str, force: bool = False) -> None:
        """Delete an empty container (ContainerNotEmpty otherwise); with ``force``,
        every object version is deleted first."""
        ...

    def container_list(self) -> list[ContainerInfo]:
        """This account's containers, by name (counters may be zero: use show)."""
        ...

    def container_show(self, container: str) -> ContainerInfo: ...

    def container_update(
        self, container: str, set_: dict[str, str], delete: Sequence[str], clear: bool
    ) -> None:
        """Container properties, as :meth:`account_update`."""
        ...

    def container_snapshot(self, container: str, snapshot: str) -> ContainerInfo:
        """A frozen copy of ``container`` named ``snapshot``: every latest object
        linked (no data copied). The snapshot refuses writes."""
        ...

    # -- objects

    def object_put(
        self,
        container: str,
        name: str,
        data: Iterable[bytes],
        *,
        size: int | None = None,
        mime_type: str | None = None,
        properties: dict[str, str] | None = None,
        policy: str | None = None,
        etag: str | None = None,
        append: bool = False,
    ) -> ObjectInfo:
        """Store ``data`` as the new version of ``name``. ``etag`` (hex MD5): refuse
        (EtagMismatch, nothing stored) when the content's differs. ``append``: the
        new version is the current content followed by ``data`` (segments shared,
        nothing re-read); a missing object is created."""
        ...

    def object_get(
        self,
        container: str,
        name: str,
        *,
        version: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> tuple[ObjectInfo, Iterator[bytes]]:
        """Metadata and a stream of the bytes ``[start, end]`` (inclusive, like an
        HTTP range; ``start=None, end=N`` is the last N bytes; both None: all)."""
        ...

    def object_head(
        self, container: str, name: str, *, version: str | None = None
    ) -> ObjectInfo: ...

    def object_delete(self, container: str, name: str, *, version: str | None = None) -> ObjectInfo:
        """Delete ``name`` (a delete marker on a versioned container) or one version.
        Returns what was removed or the marker created. NoSuchObject when missing
        (unlike S3, which answers 204)."""
        ...

    def object_delete_many(self, container: str, names: Sequence[str]) -> list[tuple[str, bool]]:
        """(name, deleted) for each name; missing names are (name, False)."""
        ...

    def object_list(
        self,
        container: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        marker: str = "",
        end_marker: str = "",
        limit: int = 1000,
        versions: bool = False,
        version_marker: str = "",
        deleted: bool = False,
        properties: bool = False,
    ) -> ObjectList:
        """One page in key order, strictly after ``marker`` and before
        ``end_marker``. ``versions``: every version (newest first per key);
        ``deleted``: include delete markers (with ``versions``) ; ``properties``:
        fill each object's properties (one more read per object)."""
        ...

    def object_update(
        self,
        container: str,
        name: str,
        set_: dict[str, str],
        delete: Sequence[str],
        clear: bool,
        *,
        version: str | None = None,
    ) -> ObjectInfo:
        """Change an object version's properties in place (no data copied)."""
        ...

    def object_copy(
        self,
        src_container: str,
        src_name: str,
        dst_container: str,
        dst_name: str,
        *,
        version: str | None = None,
        properties: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Server-side copy: the new object shares the source's segments.
        ``properties`` replace the source's when given."""
        ...

    def object_link(
        self,
        src_container: str,
        src_name: str,
        dst_container: str,
        dst_name: str,
        *,
        version: str | None = None,
    ) -> ObjectInfo:
        """A shallow link: the new object shares the source's segments and keeps
        its properties; no data is copied or re-read."""
        ...

    def object_locate(
        self, container: str, name: str, *, version: str | None = None
    ) -> ObjectLocation: ...

    def object_truncate(
        self, container: str, name: str, size: int, *, version: str | None = None
    ) -> ObjectInfo:
        """A new version holding the first ``size`` bytes (BadRequest when
        ``size`` exceeds the object's)."""
        ...

    def object_touch(self, container: str, name: str) -> ObjectInfo:
        """Set the latest version's modification time to now (same version, same
        data; lifecycle rules and ``If-Modified-Since`` then see it as new)."""
        ...

    def object_drain(self, container: str, name: str, *, version: str | None = None) -> None:
        """Drop the object's data but keep its record: reads then raise NoSuchObject
        with code ``ObjectDrained`` while listings still show it."""
        ...
