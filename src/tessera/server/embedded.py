"""The embedded SDK backend: ``tessera.open(path)`` runs the core and the data
path in this process, over a data directory laid out as ``tessera serve``
lays it out (``meta.db``, ``disk0/``, ``root-credentials.toml``), with no server.

Theory of operation:

* :func:`open_embedded` takes the data directory's ``LOCK`` (a running server
  on the same directory makes it fail, and the reverse), ensures the root
  credentials and account exactly as the server does, and builds the metadata
  store, the volumes and the :class:`~tessera.core.service.ObjectService` with
  the server's own construction functions and default configuration.
* The service lives on an asyncio event loop in a daemon thread; each sync
  method submits one coroutine with :func:`asyncio.run_coroutine_threadsafe`
  and waits for it. Calls from several threads are safe (they interleave on
  the loop as concurrent requests would).
* Bodies stream. ``object_put`` pulls the caller's iterable one piece at a time
  (``next`` runs in a worker thread, so the loop never blocks) while the data
  path consumes them (:mod:`tessera.server.embedded_uploads`); ``object_get``
  returns an iterator that fetches one piece per ``next`` from the loop, and
  closing it early closes the read on the loop.
* Domain errors become :mod:`tessera.sdk.errors` through the gateway's one
  error table (same codes and statuses as over HTTP); a missing account is
  ``NoSuchAccount``.
* Background work: garbage collection of released blocks (after the configured
  grace delay) and trash emptying run on the loop, as in the server; healing
  and scrubbing do not (``tessera serve`` on the directory does them).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tessera.common.ranges import RangeSpec
from tessera.common.streams import ByteSource
from tessera.core.gc import GarbageCollector
from tessera.core.properties import PropertyUpdate
from tessera.core.requests import (
    CopyRequest,
    DeleteError,
    DeleteTarget,
    GetRequest,
    ObjectAttributes,
    Principal,
)
from tessera.core.service import ObjectService
from tessera.gateway import ext_objects as docs
from tessera.gateway.errors import to_s3_error
from tessera.gateway.metadata import STORAGE_CLASSES
from tessera.meta.sql.store import SqlMetadataStore
from tessera.model.errors import AccountNotFound, TesseraError
from tessera.model.records import ObjectVersion
from tessera.protocol.s3.errors import S3Error
from tessera.sdk import errors as sdk_errors
from tessera.sdk.records import (
    AccessKeyInfo,
    AccountInfo,
    ContainerInfo,
    FragmentLocation,
    ObjectInfo,
    ObjectList,
    ObjectLocation,
    SegmentLocation,
)
from tessera.server.config import ROOT_ACCOUNT_ID, Config, load_config
from tessera.server.embedded_uploads import Body, Feed, store_body
from tessera.server.node import (
    LOCK_FILE,
    DataDirLock,
    NodeError,
    cancel_task,
    core_options,
    empty_trash,
    ensure_root_credentials,
    segment_store,
)

T = TypeVar("T")
_END = object()
CLOSE_TIMEOUT = 30.0
"""Seconds :meth:`EmbeddedBackend.close` waits for the stores to close."""


def sdk_error(err: BaseException) -> BaseException:
    """The SDK error for a domain or S3 error (other exceptions unchanged)."""
    if isinstance(err, AccountNotFound):
        return sdk_errors.NoSuchAccount(err.message, code="NoSuchAccount", status=404)
    if isinstance(err, TesseraError):
        err = to_s3_error(err)
    if isinstance(err, S3Error):
        return sdk_errors.error_for(err.code, err.message, err.status)
    return err


class EmbeddedBackend:
    """The SDK :class:`~tessera.sdk.backend.Backend` over an in-process service
    (see the module docstring). Build it with :func:`open_embedded`."""

    def __init__(
        self,
        service: ObjectService,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
        lock: DataDirLock,
        account: str,
        tasks: Sequence[asyncio.Task[None]] = (),
    ) -> None:
        self._service = service
        self._tasks = list(tasks)
        self._loop = loop
        self._thread = thread
        self._lock = lock
        self._account = account
        self._who = Principal(account)
        self._closed = False

    # -- plumbing -------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise sdk_errors.TesseraClientError("the embedded store is closed", code="Closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except (TesseraError, S3Error) as e:
            raise sdk_error(e) from e

    @property
    def account(self) -> str:
        return self._account

    def close(self) -> None:
        """Close the stores, stop the loop thread, release the data directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            future.result(CLOSE_TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CLOSE_TIMEOUT)
            if not self._thread.is_alive():
                self._loop.close()
            self._lock.release()

    async def _shutdown(self) -> None:
        for task in self._tasks:
            await cancel_task(task)
        await self._service.close()

    def __enter__(self) -> EmbeddedBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _info(v: ObjectVersion) -> ObjectInfo:
        return ObjectInfo(**docs.object_doc(v))

    # -- accounts -------------------------------------------------------------------------
    def account_create(self, account: str, display_name: str = "") -> bool:
        return self._run(self._service.create_account_as(self._who, account, display_name))

    def account_delete(self, account: str) -> None:
        self._run(self._service.delete_account_as(self._who, account))

    def account_list(self) -> list[str]:
        return self._run(self._service.list_account_ids(self._who))

    def account_show(self, account: str) -> AccountInfo:
        stats = self._run(self._service.account_stats(self._who, account))
        return AccountInfo(**docs.account_doc(stats))

    def account_update(
        self, account: str, set_: dict[str, str], delete: Sequence[str], clear: bool
    ) -> None:
        update = PropertyUpdate(set=dict(set_), delete=tuple(delete), clear=clear)
        self._run(self._service.update_account_properties(self._who, account, update))

    def access_key_create(self, account: str) -> AccessKeyInfo:
        key = self._run(self._service.create_access_key_as(self._who, account))
        return AccessKeyInfo(**docs.key_doc(key))

    # -- containers -----------------------------------------------------------------------
    def container_create(
        self,
        container: str,
        properties: dict[str, str] | None = None,
        policy: str | None = None,
        versioning: bool = False,
    ) -> bool:
        return self._run(
            self._service.create_container(
                self._who,
                container,
                properties=properties,
                policy=policy,
                versioning=versioning,
            )
        )

    def container_delete(self, container: str, force: bool = False) -> None:
        self._run(self._service.delete_container(self._who, container, force=force))

    def container_list(self) -> list[ContainerInfo]:
        buckets = self._run(self._service.list_buckets(self._who))
        return [ContainerInfo(**docs.container_doc(b)) for b in buckets]

    def container_show(self, container: str) -> ContainerInfo:
        stats = self._run(self._service.container_stats(self._who, container))
        return ContainerInfo(**docs.container_doc(stats.bucket, stats.objects, stats.bytes))

    def container_update(
        self, container: str, set_: dict[str, str], delete: Sequence[str], clear: bool
    ) -> None:
        update = PropertyUpdate(set=dict(set_), delete=tuple(delete), clear=clear)
        self._run(self._service.update_bucket_properties(self._who, container, update))

    def container_snapshot(self, container: str, snapshot: str) -> ContainerInfo:
        self._run(self._service.snapshot_container(self._who, container, snapshot))
        return self.container_show(snapshot)

    # -- object data ------------------------------------------------------------------------
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
        """See the protocol and :mod:`tessera.server.embedded_uploads` (same
        single-PUT / multipart shapes, hence ETags, as the remote backend).
        ``policy`` is the storage class (as over S3: an S3 class name, else
        BadRequest); ``size``, when given, must be the body's (BadRequest,
        nothing stored)."""
        if append:
            source = Feed(data).part(1 << 62)
            v = self._run(
                self._service.append_object(
                    self._who, container, name, source, content_type=mime_type
                )
            )
            return self._info(v)
        if policy is not None and policy not in STORAGE_CLASSES:
            raise sdk_errors.BadRequest(
                f"The storage class {policy!r} is not valid", code="InvalidStorageClass"
            )
        attrs = ObjectAttributes(
            content_type=mime_type,
            user_metadata={k.lower(): v for k, v in (properties or {}).items()},
            storage_class=policy or "STANDARD",
        )
        body = Body(container, name, attrs, size=size, etag=etag)
        return self._info(self._run(store_body(self._service, self._who, body, data)))

    def object_get(
        self,
        container: str,
        name: str,
        *,
        version: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> tuple[ObjectInfo, Iterator[bytes]]:
        byte_range = None if start is None and end is None else RangeSpec(start, end)
        req = GetRequest(container, name, version_id=version, range=byte_range)
        read = self._run(self._service.get_object(self._who, req))
        assert read.body is not None  # a GET (not HEAD) always has a body
        return self._info(read.version), self._stream(read.body)

    def _stream(self, body: ByteSource) -> Iterator[bytes]:
        """Pieces of ``body``, each fetched on the loop when asked for; closing
        the iterator early closes ``body`` there."""

        async def step() -> Any:
            try:
                return await body.__anext__()
            except StopAsyncIteration:
                return _END

        async def close() -> None:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()

        try:
            while True:
                piece = self._run(step())
                if piece is _END:
                    return
                yield piece
        finally:
            if not self._closed:
                with contextlib.suppress(Exception):
                    self._run(close())

    def object_head(self, container: str, name: str, *, version: str | None = None) -> ObjectInfo:
        return self._info(
            self._run(self._service.describe_object(self._who, container, name, version))
        )

    def object_delete(self, container: str, name: str, *, version: str | None = None) -> ObjectInfo:
        info = self.object_head(container, name, version=version)
        if version is None and info.deleted:
            raise sdk_errors.NoSuchObject(f"{container}/{name} is deleted", code="NoSuchKey")
        result = self._run(self._service.delete_object(self._who, container, name, version))
        if version is None and result.delete_marker and result.version_id:
            return self.object_head(container, name, version=result.version_id)
        return info

    def object_delete_many(self, container: str, names: Sequence[str]) -> list[tuple[str, bool]]:
        present: list[str] = []
        for name in dict.fromkeys(names):
            with contextlib.suppress(sdk_errors.NoSuchObject):
                if not self.object_head(container, name).deleted:
                    present.append(name)
        results = self._run(
            self._service.delete_objects(self._who, container, [DeleteTarget(n) for n in present])
        )
        done = {r.key for r in results if not isinstance(r, DeleteError)}
        return [(n, n in done) for n in names]

    # -- object metadata --------------------------------------------------------------------
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
        page = self._run(
            self._service.object_page(
                self._who,
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
        )
        return ObjectList(
            objects=[self._info(v) for v in page.versions],
            prefixes=list(page.prefixes),
            truncated=page.truncated,
            next_marker=page.next_marker,
            next_version_marker=page.next_version_marker,
        )

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
        update = PropertyUpdate(set=dict(set_), delete=tuple(delete), clear=clear)
        v = self._run(
            self._service.update_object_properties(self._who, container, name, update, version)
        )
        return self._info(v)

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
        attrs = ObjectAttributes()
        if properties is not None:
            src = self.object_head(src_container, src_name, version=version)
            attrs = ObjectAttributes(
                content_type=src.mime_type,
                user_metadata={k.lower(): v for k, v in properties.items()},
            )
        req = CopyRequest(
            src_container,
            src_name,
            version,
            dst_container,
            dst_name,
            metadata_directive="COPY" if properties is None else "REPLACE",
            attributes=attrs,
        )
        return self._info(self._run(self._service.copy_object(self._who, req)).version)

    def object_link(
        self,
        src_container: str,
        src_name: str,
        dst_container: str,
        dst_name: str,
        *,
        version: str | None = None,
    ) -> ObjectInfo:
        v = self._run(
            self._service.link_object(
                self._who, src_container, src_name, dst_container, dst_name, version
            )
        )
        return self._info(v)

    def object_locate(
        self, container: str, name: str, *, version: str | None = None
    ) -> ObjectLocation:
        v = self._run(self._service.locate_object(self._who, container, name, version))
        doc = docs.location_doc(v)
        segments = [
            SegmentLocation(**{**s, "fragments": [FragmentLocation(**f) for f in s["fragments"]]})
            for s in doc.pop("segments")
        ]
        return ObjectLocation(**doc, segments=segments)

    def object_truncate(
        self, container: str, name: str, size: int, *, version: str | None = None
    ) -> ObjectInfo:
        return self._info(
            self._run(self._service.truncate_object(self._who, container, name, size, version))
        )

    def object_touch(self, container: str, name: str) -> ObjectInfo:
        return self._info(self._run(self._service.touch_object(self._who, container, name)))

    def object_drain(self, container: str, name: str, *, version: str | None = None) -> None:
        self._run(self._service.drain_object(self._who, container, name, version))


# -- construction ---------------------------------------------------------------------------
async def _build(
    cfg: Config, access_key: str, secret_key: str, account: str
) -> tuple[ObjectService, list[asyncio.Task[None]]]:
    """The service over ``cfg``'s data directory, as ``tessera serve`` builds it,
    and its background tasks: garbage collection (no orphan scans) and trash
    emptying, as the server runs them (this process holds the directory alone)."""
    meta = await SqlMetadataStore.connect(cfg.meta_url, migrate=True)
    try:
        data = segment_store(cfg)
    except BaseException:
        await meta.close()
        raise
    service = ObjectService(meta, data, options=core_options(cfg, len(data.volume_ids)))
    try:
        await service.ensure_account(ROOT_ACCOUNT_ID, ROOT_ACCOUNT_ID, [(access_key, secret_key)])
        await service.get_account(account)
    except BaseException:
        await service.close()
        raise
    gc = GarbageCollector(meta, data, grace=cfg.storage.gc_grace)
    tasks = [
        asyncio.create_task(gc.run(cfg.storage.gc_interval), name="embedded-gc"),
        asyncio.create_task(empty_trash(data), name="embedded-trash"),
    ]
    return service, tasks


def open_embedded(path: str | Path, *, account: str = ROOT_ACCOUNT_ID) -> EmbeddedBackend:
    """An :class:`EmbeddedBackend` over the data directory ``path`` (created when
    missing), acting for ``account`` (which must exist; root always does).
    Raises Conflict (code ``DataDirectoryInUse``) while a server or another
    embedded store holds the directory, NoSuchAccount for an unknown account."""
    cfg = load_config(env={}, flags={"server.data": str(path)})
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    lock = DataDirLock(cfg.data_dir / LOCK_FILE)
    try:
        lock.acquire()
    except NodeError as e:
        raise sdk_errors.Conflict(str(e), code="DataDirectoryInUse") from None
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="tessera-embedded", daemon=True)
    thread.start()
    try:
        try:
            creds = ensure_root_credentials(cfg)
            future = asyncio.run_coroutine_threadsafe(
                _build(cfg, creds.access_key, creds.secret_key, account), loop
            )
            service, tasks = future.result()
        except (TesseraError, S3Error) as e:
            raise sdk_error(e) from e
        except NodeError as e:
            raise sdk_errors.TesseraClientError(str(e), code="InvalidDataDirectory") from None
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CLOSE_TIMEOUT)
        lock.release()
        raise
    return EmbeddedBackend(service, loop, thread, lock, account, tasks)
