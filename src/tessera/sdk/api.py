"""The OpenIO-style object storage API (issue 4): accounts, containers, objects.

:class:`ObjectStorageApi` is what ``tessera.connect(...)`` and
``tessera.open(path)`` return. It is written once, over a
:class:`~tessera.sdk.backend.Backend` (remote or embedded), and adds what is
backend-independent: argument normalisation (bytes, iterators, file objects,
paths), multi-range fetches, ``trust_level`` checks, deadlines and perfdata,
and the container-wide helpers (flush, purge, create_many) built from single
calls.

Deviation from OpenIO's signatures: OpenIO takes an ``account`` first on every
container and object call; here a connection acts for one account (its access
key decides, embedded: the account it was opened for), so container and object
calls drop that argument. ``account_*`` calls still take the account id.

Data calls (:meth:`~ObjectStorageApi.object_create`,
:meth:`~ObjectStorageApi.object_fetch`, :meth:`~ObjectStorageApi.object_head`
with ``trust_level=2``) take:

* ``deadline``: an absolute ``time.time()``. When it has passed before the
  call starts, or between two pieces of the transfer, the call raises
  :class:`~tessera.sdk.errors.DeadlineReached` (an upload is then abandoned and
  stores nothing). A single blocked network read is not interrupted; the
  connection's own timeouts bound it.
* ``perfdata``: a dict the call fills with ``total`` (seconds, for a fetch:
  until the stream ended or was closed) and ``bytes`` (bytes moved).

Errors are :mod:`tessera.sdk.errors`; nothing returns None for "missing".
"""

from __future__ import annotations

import hashlib
import itertools
import os
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, closing
from typing import IO, TYPE_CHECKING, Any

from tessera.sdk.backend import Backend
from tessera.sdk.errors import (
    BadRequest,
    DeadlineReached,
    EtagMismatch,
    NoSuchObject,
    PreconditionFailed,
    ServiceUnavailable,
)
from tessera.sdk.http import SignedClient
from tessera.sdk.records import (
    AccessKeyInfo,
    AccountInfo,
    ContainerInfo,
    ObjectInfo,
    ObjectList,
    ObjectLocation,
)

PIECE_SIZE = 1 << 20
"""Bytes read at a time from a file object or path given to object_create."""
PAGE_SIZE = 1000
"""Listing page size of the container-wide helpers (flush, purge)."""

Data = bytes | bytearray | memoryview | str | Iterable[bytes] | IO[bytes]
Range = tuple[int | None, int | None]

if TYPE_CHECKING:
    from tessera.sdk.blocks import BlockClient
    from tessera.sdk.par import PAR


class ContainerList(list[ContainerInfo]):
    """One page of :meth:`ObjectStorageApi.container_list`: a list of
    containers, plus the common prefixes rolled up by ``delimiter`` and the
    paging fields (``next_marker`` is "" when ``truncated`` is False)."""

    def __init__(
        self,
        containers: Iterable[ContainerInfo] = (),
        prefixes: Sequence[str] = (),
        truncated: bool = False,
        next_marker: str = "",
    ) -> None:
        super().__init__(containers)
        self.prefixes = list(prefixes)
        self.truncated = truncated
        self.next_marker = next_marker


def check_deadline(deadline: float | None) -> None:
    """Raise DeadlineReached when ``deadline`` (absolute ``time.time()``) has passed."""
    if deadline is not None and time.time() >= deadline:
        raise DeadlineReached(f"deadline passed {time.time() - deadline:.3f} s ago")


class _Meter:
    """Counts bytes through an iterator and checks the deadline between pieces."""

    def __init__(self, deadline: float | None, perfdata: dict[str, Any] | None) -> None:
        self.deadline = deadline
        self.perfdata = perfdata
        self.started = time.monotonic()
        self.bytes = 0

    def through(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            check_deadline(self.deadline)
            self.bytes += len(piece)
            yield piece

    def done(self) -> None:
        if self.perfdata is not None:
            self.perfdata["total"] = time.monotonic() - self.started
            self.perfdata["bytes"] = self.bytes


def _file_pieces(f: IO[bytes]) -> Iterator[bytes]:
    while piece := f.read(PIECE_SIZE):
        yield piece


def _remaining_size(f: IO[bytes]) -> int | None:
    """Bytes left in a regular file from its position, or None (pipes, sockets...)."""
    try:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        return max(0, st.st_size - f.tell())
    except (AttributeError, OSError, ValueError):
        return None


def _close(it: Iterator[bytes] | None) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        close()


class ObjectStream(Iterator[bytes]):
    """The bytes :meth:`ObjectStorageApi.object_fetch` returns: iterate it, or
    :meth:`read` it whole. :meth:`close` (or leaving a ``with`` block) stops
    early and releases the connection; reaching the end closes it too."""

    def __init__(self, first: Iterator[bytes], meter: _Meter) -> None:
        self._current: Iterator[bytes] | None = first
        self._meter = meter
        self._pieces: Iterator[bytes] = meter.through(first)
        self._closed = False

    def then(self, rest: Iterator[bytes]) -> None:
        """Continue with ``rest`` once the first range is exhausted."""
        self._pieces = itertools.chain(self._pieces, rest)

    def switch_to(self, stream: Iterator[bytes]) -> Iterator[bytes]:
        """Make ``stream`` the one :meth:`close` closes, and pass its pieces on."""
        _close(self._current)
        self._current = stream
        return self._meter.through(stream)

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        try:
            return next(self._pieces)
        except BaseException:
            self.close()
            raise

    def read(self) -> bytes:
        """Every remaining byte (for small objects)."""
        with self:
            return b"".join(self)

    def close(self) -> None:
        """Stop and release the connection. Idempotent."""
        if not self._closed:
            self._closed = True
            try:
                _close(self._current)
            finally:
                self._meter.done()

    def __enter__(self) -> ObjectStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ObjectStorageApi:
    """Accounts -> containers -> objects, bound to one backend and its account.

    Thread-safe as far as the backend is (both backends are). Use it as a
    context manager or call :meth:`close`.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def account(self) -> str:
        """The account this API acts for."""
        return self.backend.account

    def close(self) -> None:
        """Release the backend (connections, embedded stores). Idempotent."""
        self.backend.close()

    def __enter__(self) -> ObjectStorageApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ links and blocks

    def _signed_client(self, what: str) -> SignedClient:
        client = getattr(self.backend, "signed_client", None)
        if not isinstance(client, SignedClient):
            raise BadRequest(
                f"{what} need a Tessera server (tessera.connect): an embedded store "
                "has no URL to hand out",
                code="NotSupportedEmbedded",
            )
        return client

    def create_par(self, container: str, obj: str | None = None, **kw: Any) -> PAR:
        """A pre-authenticated link to ``container`` (or its one object ``obj``),
        encrypted to ``encrypt_key``; ``kw`` as :func:`tessera.sdk.par.create_par`
        (``readable``, ``writeable``, ``listable``, ``ttl``/``expires``, ``job``).
        Raises BadRequest on an embedded store."""
        from tessera.sdk.par import create_par

        return create_par(self._signed_client("Pre-authenticated links"), container, obj, **kw)

    def block_client(self, **kw: Any) -> BlockClient:
        """A :class:`~tessera.sdk.blocks.BlockClient` on the same server and
        credentials (``kw``: its options). Raises BadRequest on an embedded store
        (use ``BlockClient(local_store=DIR)`` there)."""
        from tessera.sdk.blocks import BlockClient

        return BlockClient(self._signed_client("Block clients"), **kw)

    # ------------------------------------------------------------ accounts

    def account_create(self, account: str, display_name: str = "") -> bool:
        """Create ``account`` (root only); False when it already existed."""
        return self.backend.account_create(account, display_name)

    def account_delete(self, account: str) -> None:
        """Delete an account owning no container (root only). Raises Conflict
        (``AccountNotEmpty``) otherwise, NoSuchAccount when missing."""
        self.backend.account_delete(account)

    def account_list(self) -> list[str]:
        """Every account id (root only)."""
        return self.backend.account_list()

    def account_show(self, account: str) -> AccountInfo:
        """The account with its container, object and byte totals (computed live)."""
        return self.backend.account_show(account)

    def account_set_properties(self, account: str, properties: dict[str, str]) -> None:
        """Set (add or replace) account properties atomically."""
        self.backend.account_update(account, dict(properties), [], False)

    def account_del_properties(self, account: str, keys: Sequence[str]) -> None:
        """Remove account properties (missing keys are ignored)."""
        self.backend.account_update(account, {}, list(keys), False)

    def account_flush(self, account: str) -> None:
        """OpenIO drops the account service's cached container list and stats
        here. Tessera keeps no such cache (totals are computed from the
        container records at each read), so this only checks that ``account``
        exists (NoSuchAccount) and may be read by the caller (Forbidden)."""
        self.backend.account_show(account)

    def account_refresh(self, account: str) -> AccountInfo:
        """Recompute the account's totals: they are computed live, so this is
        :meth:`account_show` (returned for convenience)."""
        return self.backend.account_show(account)

    def access_key_create(self, account: str) -> AccessKeyInfo:
        """A new access key pair for ``account`` (itself, or any account for root)."""
        return self.backend.access_key_create(account)

    # ---------------------------------------------------------- containers

    def container_create(
        self,
        container: str,
        properties: dict[str, str] | None = None,
        *,
        policy: str | None = None,
        versioning: bool = False,
    ) -> bool:
        """Create ``container``; False when this account already owns it.
        Raises Conflict when another account does."""
        return self.backend.container_create(container, properties, policy, versioning)

    def container_create_many(
        self,
        containers: Iterable[str],
        properties: dict[str, str] | None = None,
        *,
        policy: str | None = None,
        versioning: bool = False,
    ) -> list[tuple[str, bool]]:
        """Create each container in turn: ``(name, created)`` for each. Not
        atomic: the first error propagates and the containers created before it
        stay."""
        return [
            (name, self.container_create(name, properties, policy=policy, versioning=versioning))
            for name in containers
        ]

    def container_delete(self, container: str, *, force: bool = False) -> None:
        """Delete an empty container (ContainerNotEmpty otherwise); ``force``
        deletes every object version first."""
        self.backend.container_delete(container, force=force)

    def container_list(
        self,
        prefix: str = "",
        delimiter: str = "",
        marker: str = "",
        end_marker: str = "",
        limit: int | None = None,
    ) -> ContainerList:
        """This account's containers in name order, strictly after ``marker``
        and before ``end_marker``, starting with ``prefix``; with ``delimiter``,
        names holding it after the prefix roll up into ``prefixes`` (each counts
        as one entry towards ``limit``). Counters may be zero: use
        :meth:`container_show`. Filtering is done here over the account's whole
        list (an account holds at most a few thousand containers)."""
        entries: list[ContainerInfo | str] = []
        seen: set[str] = set()
        for c in sorted(self.backend.container_list(), key=lambda c: c.name):
            if not c.name.startswith(prefix) or (end_marker and c.name >= end_marker):
                continue
            entry: ContainerInfo | str = c
            key = c.name
            if delimiter:
                cut = c.name.find(delimiter, len(prefix))
                if cut >= 0:
                    key = entry = c.name[: cut + len(delimiter)]
            if key <= marker or key in seen:
                continue
            seen.add(key)
            entries.append(entry)
        truncated = limit is not None and len(entries) > limit
        page = entries[:limit] if limit is not None else entries
        last = page[-1] if page else ""
        return ContainerList(
            [e for e in page if isinstance(e, ContainerInfo)],
            [e for e in page if isinstance(e, str)],
            truncated,
            (last if isinstance(last, str) else last.name) if truncated else "",
        )

    def container_show(self, container: str) -> ContainerInfo:
        """The container with its live object/byte counters and properties."""
        return self.backend.container_show(container)

    def container_get_properties(self, container: str) -> dict[str, str]:
        return self.backend.container_show(container).properties

    def container_set_properties(
        self, container: str, properties: dict[str, str], *, clear: bool = False
    ) -> None:
        """Set properties; ``clear`` first drops every existing one (atomically)."""
        self.backend.container_update(container, dict(properties), [], clear)

    def container_del_properties(self, container: str, keys: Sequence[str]) -> None:
        """Remove properties (missing keys are ignored)."""
        self.backend.container_update(container, {}, list(keys), False)

    def container_flush(self, container: str) -> int:
        """Delete every object of the container (every version and delete
        marker on a versioned one) and keep the container, its properties and
        settings. Not atomic: objects written meanwhile may survive. Returns
        the number of versions deleted."""
        deleted = 0
        if self.backend.container_show(container).versioning == "unversioned":
            marker = ""
            for _ in range(1 << 40):
                page = self.backend.object_list(container, marker=marker, limit=PAGE_SIZE)
                names = [o.name for o in page.objects]
                deleted += sum(ok for _, ok in self.backend.object_delete_many(container, names))
                if not page.truncated:
                    break
                marker = page.next_marker
            return deleted
        for o in self._all_versions(container):
            self.backend.object_delete(container, o.name, version=o.version)
            deleted += 1
        return deleted

    def container_purge(self, container: str, maxvers: int = 1) -> int:
        """Delete every version but the ``maxvers`` newest of each object
        (delete markers count as versions). A no-op on an unversioned container.
        Returns the number of versions deleted."""
        if maxvers < 1:
            raise BadRequest("maxvers must be at least 1")
        deleted, current, kept = 0, None, 0
        for o in self._all_versions(container):
            if o.name != current:
                current, kept = o.name, 0
            kept += 1
            if kept > maxvers:
                self.backend.object_delete(container, o.name, version=o.version)
                deleted += 1
        return deleted

    def _all_versions(self, container: str) -> Iterator[ObjectInfo]:
        """Every version and delete marker, by name then newest first, page by page."""
        marker = version_marker = ""
        for _ in range(1 << 40):
            page = self.backend.object_list(
                container,
                marker=marker,
                version_marker=version_marker,
                versions=True,
                deleted=True,
                limit=PAGE_SIZE,
            )
            yield from page.objects
            if not page.truncated:
                return
            marker, version_marker = page.next_marker, page.next_version_marker

    def container_snapshot(self, container: str, snapshot: str) -> ContainerInfo:
        """A frozen copy named ``snapshot`` of every latest object (links, no
        data copied). The snapshot refuses writes (Conflict ``FrozenContainer``)."""
        return self.backend.container_snapshot(container, snapshot)

    def container_touch(self, container: str) -> None:
        """OpenIO re-announces the container's counters to its account service
        here. Tessera's account totals read the container records directly, so
        there is nothing to announce: this checks that the container exists and
        is this account's (NoSuchContainer / Forbidden)."""
        self.backend.container_show(container)

    def container_refresh(self, container: str) -> ContainerInfo:
        """Recompute the container's counters: they are maintained with every
        write and read live, so this is :meth:`container_show`."""
        return self.backend.container_show(container)

    # ------------------------------------------------------------- objects

    def object_create(
        self,
        container: str,
        file_or_path: str | os.PathLike[str] | IO[bytes] | None = None,
        *,
        data: Data | None = None,
        obj_name: str | None = None,
        etag: str | None = None,
        mime_type: str | None = None,
        properties: dict[str, str] | None = None,
        policy: str | None = None,
        append: bool = False,
        perfdata: dict[str, Any] | None = None,
        deadline: float | None = None,
    ) -> ObjectInfo:
        """Store an object from ``data`` (bytes, str as UTF-8, an iterable of
        bytes or a binary file object) or ``file_or_path`` (a path or a binary
        file object). The name is ``obj_name``, else the file's base name.

        ``etag`` (hex MD5 of the content): nothing is stored (EtagMismatch)
        when it differs. ``policy`` is a storage class name (the server maps
        classes to storage policies, as OpenIO's S3 layer maps them to its
        policies). ``append``: the content is added after the current one (a
        missing object is created); it takes no etag, mime_type, properties or
        policy. The new version is atomic: readers see the old or the new one.
        """
        if (data is None) == (file_or_path is None):
            raise BadRequest("give exactly one of data and file_or_path")
        if append and (etag or mime_type or properties or policy):
            raise BadRequest("append takes no etag, mime_type, properties or policy")
        check_deadline(deadline)
        meter = _Meter(deadline, perfdata)
        with ExitStack() as stack:
            source = file_or_path if data is None else data
            if isinstance(source, str | os.PathLike) and data is None:
                path = os.fspath(source)
                obj_name = obj_name or os.path.basename(path)
                f = stack.enter_context(open(path, "rb"))
                pieces, size = _file_pieces(f), _remaining_size(f)
            elif isinstance(source, bytes | bytearray | memoryview | str):
                blob = source.encode() if isinstance(source, str) else bytes(source)
                pieces, size = iter([blob] if blob else []), len(blob)
            elif hasattr(source, "read"):
                f = source  # type: ignore[assignment]
                file_name = getattr(f, "name", None)  # "<stdin>" and fds are no names
                if not obj_name and isinstance(file_name, str) and not file_name.startswith("<"):
                    obj_name = os.path.basename(file_name)
                pieces, size = _file_pieces(f), _remaining_size(f)
            else:
                pieces, size = iter(source), None  # type: ignore[arg-type]
            if not obj_name:
                raise BadRequest("no object name: pass obj_name")
            info = self.backend.object_put(
                container,
                obj_name,
                meter.through(pieces),
                size=size,
                mime_type=mime_type,
                properties=properties,
                policy=policy,
                etag=etag,
                append=append,
            )
        meter.done()
        return info

    def object_fetch(
        self,
        container: str,
        obj: str,
        ranges: Sequence[Range] | None = None,
        *,
        version: str | None = None,
        perfdata: dict[str, Any] | None = None,
        deadline: float | None = None,
    ) -> tuple[ObjectInfo, ObjectStream]:
        """The object's metadata and a stream of its bytes.

        ``ranges``: ``(start, end)`` pairs, inclusive like HTTP ranges
        (``(None, n)``: the last n bytes, ``(start, None)``: to the end); the
        stream is each range's bytes in turn. Every range reads the version
        the first one read; an object replaced in between (unversioned
        container) raises PreconditionFailed. Close the stream to stop early
        (it releases the connection).
        """
        check_deadline(deadline)
        meter = _Meter(deadline, perfdata)
        spans: list[Range] = list(ranges) if ranges else [(None, None)]
        info, first = self.backend.object_get(
            container, obj, version=version, start=spans[0][0], end=spans[0][1]
        )
        pinned = version or (info.version if info.version != "null" else None)
        out = ObjectStream(first, meter)

        def more() -> Iterator[bytes]:
            for start, end in spans[1:]:
                got, piece_stream = self.backend.object_get(
                    container, obj, version=pinned, start=start, end=end
                )
                if got.etag != info.etag:
                    _close(piece_stream)
                    raise PreconditionFailed(f"{container}/{obj} changed during the fetch")
                yield from out.switch_to(piece_stream)

        out.then(more())
        return info, out

    def object_head(
        self,
        container: str,
        obj: str,
        *,
        version: str | None = None,
        trust_level: int = 0,
        perfdata: dict[str, Any] | None = None,
        deadline: float | None = None,
    ) -> ObjectInfo:
        """The object's metadata, with as much trust as asked for:

        * 0: the metadata record only;
        * 1: also locate its data (:meth:`object_locate`): every segment must
          have at least one fragment and the segments must cover the size
          (ServiceUnavailable otherwise; an object with no data at all, as a
          drained one, raises NoSuchObject with code ``ObjectDrained``);
        * 2: also read every byte back: the size must match and, for an object
          not uploaded in parts (ETag without ``-N``), the MD5 must equal the
          ETag (EtagMismatch otherwise). ``perfdata``/``deadline`` apply to
          this read.
        """
        if trust_level not in (0, 1, 2):
            raise BadRequest("trust_level is 0, 1 or 2")
        info = self.backend.object_head(container, obj, version=version)
        if trust_level >= 1:
            self._check_locatable(info)
        if trust_level == 2:
            self._check_content(info, perfdata, deadline)
        return info

    def _check_locatable(self, info: ObjectInfo) -> None:
        loc = self.backend.object_locate(info.container, info.name, version=info.version)
        if loc.inline:
            return
        if not loc.segments and info.size > 0:
            raise NoSuchObject(
                f"{info.container}/{info.name} has no data (drained)", code="ObjectDrained"
            )
        covered = sum(s.size for s in loc.segments)
        empty = [s.offset for s in loc.segments if not s.fragments]
        if covered != info.size or empty:
            raise ServiceUnavailable(
                f"{info.container}/{info.name}: segments cover {covered} of {info.size} bytes"
                + (f"; no fragment at offsets {empty}" if empty else "")
            )

    def _check_content(
        self, info: ObjectInfo, perfdata: dict[str, Any] | None, deadline: float | None
    ) -> None:
        got, stream = self.object_fetch(
            info.container, info.name, version=info.version, perfdata=perfdata, deadline=deadline
        )
        md5, size = hashlib.md5(usedforsecurity=False), 0
        with closing(stream):
            for piece in stream:
                md5.update(piece)
                size += len(piece)
        if got.etag != info.etag:
            raise PreconditionFailed(f"{info.container}/{info.name} changed during the check")
        if size != info.size:
            raise EtagMismatch(f"{info.container}/{info.name}: read {size} of {info.size} bytes")
        if "-" not in info.etag and md5.hexdigest() != info.etag:
            raise EtagMismatch(
                f"{info.container}/{info.name}: content MD5 {md5.hexdigest()} != ETag {info.etag}"
            )

    def object_get_properties(
        self, container: str, obj: str, *, version: str | None = None
    ) -> dict[str, str]:
        return self.backend.object_head(container, obj, version=version).properties

    def object_set_properties(
        self,
        container: str,
        obj: str,
        properties: dict[str, str],
        *,
        version: str | None = None,
        clear: bool = False,
    ) -> ObjectInfo:
        """Set properties in place (no data copied, same version); ``clear``
        first drops every existing one. Atomic."""
        return self.backend.object_update(
            container, obj, dict(properties), [], clear, version=version
        )

    def object_del_properties(
        self, container: str, obj: str, keys: Sequence[str], *, version: str | None = None
    ) -> ObjectInfo:
        """Remove properties in place (missing keys are ignored)."""
        return self.backend.object_update(container, obj, {}, list(keys), False, version=version)

    def object_delete(self, container: str, obj: str, *, version: str | None = None) -> ObjectInfo:
        """Delete the object (a delete marker on a versioned container) or one
        version. Returns what was removed, or the marker created. NoSuchObject
        when missing."""
        return self.backend.object_delete(container, obj, version=version)

    def object_delete_many(self, container: str, objs: Sequence[str]) -> list[tuple[str, bool]]:
        """``(name, deleted)`` for each name; missing names give False."""
        return self.backend.object_delete_many(container, list(objs))

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
        """One page in name order, strictly after ``marker`` and before
        ``end_marker``; pass ``next_marker`` (and ``next_version_marker`` with
        ``versions``) back while ``truncated``. ``versions``: every version,
        newest first per name; ``deleted``: with it, delete markers too;
        ``properties``: fill each object's properties."""
        return self.backend.object_list(
            container,
            prefix=prefix,
            delimiter=delimiter,
            marker=marker,
            end_marker=end_marker,
            limit=limit,
            versions=versions,
            version_marker=version_marker,
            deleted=deleted,
            properties=properties,
        )

    def object_link(
        self,
        container: str,
        obj: str,
        link_container: str,
        link_obj: str,
        *,
        version: str | None = None,
    ) -> ObjectInfo:
        """Make ``link_container/link_obj`` a shallow link of ``container/obj``:
        it shares the source's data (no byte copied or re-read) and keeps its
        properties. Returns the new object."""
        return self.backend.object_link(container, obj, link_container, link_obj, version=version)

    def object_copy(
        self,
        container: str,
        obj: str,
        dst_container: str,
        dst_obj: str,
        *,
        version: str | None = None,
        properties: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Server-side copy (shares segments); ``properties`` replace the
        source's when given. Returns the new object."""
        return self.backend.object_copy(
            container, obj, dst_container, dst_obj, version=version, properties=properties
        )

    def object_locate(
        self, container: str, obj: str, *, version: str | None = None
    ) -> ObjectLocation:
        """Where the bytes are: segments, their fragments and servers."""
        return self.backend.object_locate(container, obj, version=version)

    def object_drain(self, container: str, obj: str, *, version: str | None = None) -> None:
        """Drop the data, keep the record: reads then raise NoSuchObject (code
        ``ObjectDrained``) while listings still show the object."""
        self.backend.object_drain(container, obj, version=version)

    def object_truncate(
        self, container: str, obj: str, size: int, *, version: str | None = None
    ) -> ObjectInfo:
        """A new version holding the first ``size`` bytes (BadRequest beyond the size)."""
        return self.backend.object_truncate(container, obj, size, version=version)

    def object_touch(self, container: str, obj: str) -> ObjectInfo:
        """Set the latest version's modification time to now (same data, same version)."""
        return self.backend.object_touch(container, obj)
