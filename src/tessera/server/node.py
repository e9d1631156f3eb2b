"""Run one Tessera node: S3 gateway + in-process disk volumes + SQLite (DESIGN.md §1).

Theory of operation
-------------------
Start-up, in order (each step fails with a :class:`NodeError` that names the cause):

1. create the data directory and take an exclusive ``flock`` on ``<data>/LOCK``, which
   then holds our pid. A second server on the same directory fails here and names
   the pid of the first. The lock lasts as long as the process, and the kernel
   drops it even after ``kill -9``, so a stale LOCK file never blocks a restart;
2. root credentials: from the configuration (or ``TESSERA_ROOT_*``), otherwise from
   ``<data>/root-credentials.toml``, which is generated once with mode 0600. The
   credentials are printed;
3. TLS context (when configured), metadata store (migrated), volumes, data store,
   object service; the root account (id ``root``) and ``[[auth.accounts]]`` are
   ensured (idempotent);
4. listen, then print ``Tessera listening on http(s)://HOST:PORT`` (tests wait
   for this line; with port 0 it reports the port the kernel chose).

SIGTERM and SIGINT stop the node. It stops accepting connections, gives in-flight
requests up to ``server.shutdown_timeout`` seconds to finish (closing each idle
keep-alive connection as soon as it has no request running), closes the connections,
closes the service (which closes the data and metadata stores) and releases the
lock. :func:`run_node` then returns normally, so the process exits 0.

aiohttp's own graceful shutdown (``AppRunner.cleanup``) marks every connection
closing first, and from then on drops request bytes that are still arriving
(aio-libs/aiohttp#2298), so an upload in progress could never finish. The node
therefore drains first (:class:`_Drain`): a middleware records which connections
are running a request; on stop the node closes the listening socket, closes idle
connections, waits for the busy ones, and only then calls ``cleanup``.

Process-wide settings (logging, glibc malloc tuning, uvloop) are applied by
:func:`serve` only, so :func:`run_node` can run inside a test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import fcntl
import gc
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
import tomllib
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from tessera._version import __version__
from tessera.common.ids import new_access_key_id, new_secret_key
from tessera.core.blocks import BlockStore
from tessera.core.gc import GarbageCollector
from tessera.core.healer import Healer, HealStats, heal_view
from tessera.core.lease import Lease
from tessera.core.pars import ParOptions
from tessera.core.service import CoreOptions, ObjectService
from tessera.core.status import StatusBoard
from tessera.data.scrubber import Scrubber, ScrubStats
from tessera.data.store import SegmentStore
from tessera.data.topology import Topology
from tessera.data.volume import LocalVolume
from tessera.gateway.access_log import AccessLog, stamp
from tessera.gateway.admin import AdminHooks
from tessera.gateway.app import GatewayOptions, make_app
from tessera.gateway.ext_blocks import BLOCKS_KEY
from tessera.meta.sql.store import SqlMetadataStore
from tessera.protocol.blocks import derive_key
from tessera.server.cluster import ClusterWatcher
from tessera.server.config import ROOT_ACCOUNT_ID, Config
from tessera.server.logs import direct_info, setup_logging
from tessera.server.workers import WorkerError, WorkerSlot, supervise

__all__ = [
    "CREDENTIALS_FILE",
    "LOCK_FILE",
    "READY_PREFIX",
    "DataDirLock",
    "NodeError",
    "RootCredentials",
    "ensure_root_credentials",
    "run_node",
    "serve",
    "tune_malloc",
]

FIRST_SCRUB = 3600.0
"""Seconds after start-up before the first scrub pass (at most one interval)."""

log = logging.getLogger("tessera.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

READY_PREFIX = "Tessera listening on"
"""Start of the line printed once the node accepts requests: ``<prefix> URL``."""
LOCK_FILE = "LOCK"
CREDENTIALS_FILE = "root-credentials.toml"
VOLUME_ID_FILE = "tessera-volume.toml"
BLOCK_KEY_FILE = "block-signing.key"
MAX_HEADER_SIZE = 16 * 1024
"""Longest request line and longest header field accepted (aiohttp default: 8190).
Longer ones are refused with 400 before any handler runs."""

GC_THRESHOLD = 10_000
"""Allocations between two young-generation collections (CPython's default: 700).
With it and :func:`gc.freeze` after start-up, collection time over 10,000 each of
small PUT, GET, HEAD and DELETE fell from 0.53 s to 0.06 s (~4% of server CPU)."""

CANCEL_TIMEOUT = 1.0
"""Seconds handlers get to unwind after being cancelled at the end of a shutdown."""

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MALLOC_TUNING: Sequence[tuple[int, int, str]] = (
    (M_MMAP_THRESHOLD, 64 << 20, "MALLOC_MMAP_THRESHOLD_"),
    (M_TRIM_THRESHOLD, 256 << 20, "MALLOC_TRIM_THRESHOLD_"),
    (M_ARENA_MAX, 2, "MALLOC_ARENA_MAX"),
)
"""glibc ``mallopt`` settings: large buffers are kept by the allocator between requests
instead of returned to the kernel, because a fresh page costs ~5 µs to touch on these
machines (shared notes, measured-ec-hashing-memory.md §0). Two arenas, not glibc's
8 per core: each disk and metadata thread otherwise gets an arena of its own that
keeps what it freed, and the whole benchmark (large, range and small workloads in
one server) peaked at 362 MiB instead of 298 MiB, at the same throughput. An
operator's own ``MALLOC_*`` environment variable wins."""


class NodeError(Exception):
    """The node cannot start (data directory in use, unreadable credentials, port taken,
    bad TLS files...). ``str(error)`` is a complete message for the operator."""


# ---------------------------------------------------------------- data dir lock


class DataDirLock:
    """Exclusive, advisory ``flock`` on a file, held until :meth:`release` or exit.

    The file is never deleted (deleting would let two processes lock two different
    inodes); it holds the pid of the current holder for the error message.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise NodeError naming the holder's pid."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise NodeError(
                f"data directory {self.path.parent} is in use by another Tessera server "
                f"(pid {holder}); stop that server or choose another --data directory"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def locked_dir(path: Path, what: str) -> DataDirLock:
    """Create directory ``path`` if needed and take its :data:`LOCK_FILE` lock.
    Raises NodeError (``what`` names the directory in the message)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NodeError(f"cannot create {what} {path}: {e.strerror}") from None
    lock = DataDirLock(path / LOCK_FILE)
    lock.acquire()
    return lock


# ------------------------------------------------------------ root credentials


@dataclass(frozen=True, slots=True)
class RootCredentials:
    access_key: str
    secret_key: str
    source: Literal["config", "file", "generated"]


def ensure_root_credentials(cfg: Config) -> RootCredentials:
    """The root account's key: configured ones win; otherwise the ones stored in
    ``<data>/root-credentials.toml``; otherwise new random ones, stored there (mode
    0600, written atomically) so later starts reuse them. Raises NodeError when the
    stored file cannot be read."""
    configured = cfg.root_credentials
    if configured is not None:
        return RootCredentials(*configured, source="config")
    path = cfg.data_dir / CREDENTIALS_FILE
    if path.exists():
        try:
            doc = tomllib.loads(path.read_text())
            access_key, secret_key = str(doc["access_key"]), str(doc["secret_key"])
        except (OSError, tomllib.TOMLDecodeError, KeyError) as e:
            raise NodeError(
                f"cannot read root credentials from {path} ({e}); fix or delete the file "
                "(deleting it generates new credentials)"
            ) from None
        return RootCredentials(access_key, secret_key, source="file")
    access_key, secret_key = new_access_key_id(), new_secret_key()
    _write_private(
        path,
        "# Root credentials of this Tessera data directory, generated on first start.\n"
        f'access_key = "{access_key}"\nsecret_key = "{secret_key}"\n',
    )
    return RootCredentials(access_key, secret_key, source="generated")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically and durably, readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def block_signing_key(cfg: Config) -> bytes:
    """The key signing block locators: derived from the cluster key when one is
    configured (every gateway of a cluster then accepts the others' locators),
    else from a random secret generated once in ``<data>/block-signing.key``
    (mode 0600). Raises NodeError when that file is unreadable."""
    if cfg.cluster.secret:
        return derive_key(cfg.cluster.secret)
    path = cfg.data_dir / BLOCK_KEY_FILE
    if not path.exists():
        _write_private(path, secrets.token_hex(32) + "\n")
    try:
        secret = path.read_text().strip()
    except OSError as e:
        raise NodeError(f"cannot read the block signing key {path}: {e.strerror}") from None
    if not secret:
        raise NodeError(f"the block signing key {path} is empty; delete it to generate one")
    return derive_key(secret)


# --------------------------------------------------------------------- volumes


def volume_id(disk: Path, index: int) -> str:
    """The stable id of the volume in ``disk``, read from its ``tessera-volume.toml``
    and created on first use. Manifests name volumes by this id, so the id moves with
    the directory, not with its position in the configured list."""
    disk.mkdir(parents=True, exist_ok=True)
    path = disk / VOLUME_ID_FILE
    if path.exists():
        try:
            return str(tomllib.loads(path.read_text())["id"])
        except (OSError, tomllib.TOMLDecodeError, KeyError) as e:
            raise NodeError(f"cannot read the volume id in {path} ({e})") from None
    vid = f"disk{index}-{secrets.token_hex(4)}"
    _write_private(path, f'# Identity of this Tessera block volume; do not edit.\nid = "{vid}"\n')
    return vid


def _open_volumes(
    disks: Sequence[Path],
    *,
    min_free: int = 0,
    trash_delay: float = 86400.0,
    direct_io: bool = False,
) -> list[LocalVolume]:
    ids = [volume_id(disk, i) for i, disk in enumerate(disks)]
    if len(set(ids)) != len(ids):
        raise NodeError(
            "two disks carry the same volume id (was a disk directory copied?): "
            + ", ".join(f"{d} = {v}" for d, v in zip(disks, ids, strict=True))
        )
    return [
        LocalVolume(disk, vid, min_free=min_free, trash_delay=trash_delay, direct_io=direct_io)
        for disk, vid in zip(disks, ids, strict=True)
    ]


# ------------------------------------------------------------------------ node


def segment_store(cfg: Config, *, gateway: bool = False) -> SegmentStore:
    """The data path over ``cfg``'s local disks (``tessera serve`` and the embedded
    store). A gateway's starts with no disks: its cluster watcher fills them in.
    Raises NodeError for an unusable disk."""
    return SegmentStore(
        {}
        if gateway
        else _open_volumes(
            cfg.disk_dirs,
            min_free=cfg.storage.min_free,
            trash_delay=cfg.storage.trash_delay,
            direct_io=cfg.storage.direct_io,
        ),
        topology=Topology(()) if gateway else None,
        segment_size=cfg.storage.segment_size,
        inline_threshold=cfg.storage.inline_threshold,
        write_concurrency=cfg.storage.write_concurrency,
        total_write_concurrency=cfg.storage.total_write_concurrency or None,
    )


def core_options(cfg: Config, volumes: int) -> CoreOptions:
    """The core's options from ``cfg``, for a store of ``volumes`` disks."""
    return CoreOptions(
        region=cfg.gateway.region,
        default_policy=cfg.storage.policy(volumes),
        storage_classes=cfg.storage.classes,
        key_cache_ttl=cfg.auth.key_cache_ttl,
        bucket_cache_ttl=cfg.gateway.bucket_cache_ttl,
    )


def _tls_context(cfg: Config) -> ssl.SSLContext | None:
    cert, key = cfg.server.tls_cert, cfg.server.tls_key
    if cert is None or key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise NodeError(f"cannot load TLS certificate {cert} / key {key}: {e}") from None
    return ctx


class _ServerAccessLog(AccessLog):
    """Access log lines go straight to the process's log handler when nothing
    else would see the record (see :func:`~tessera.server.logs.direct_info`)."""

    direct = staticmethod(direct_info)


class _Drain:
    """Graceful stop for aiohttp: tracks the connections running a request (through
    :attr:`middleware`, installed outermost) and, on :meth:`__call__`, stops the
    site, then closes connections as they become idle, for up to ``timeout`` s."""

    POLL = 0.05

    def __init__(self, runner: web.AppRunner, timeout: float) -> None:
        self.runner = runner
        self.timeout = timeout
        self.busy: Counter[object] = Counter()

        @web.middleware
        async def track(request: web.Request, handler: Handler) -> web.StreamResponse:
            stamp(request)  # for the access log's duration (see access_log.py)
            protocol = request.protocol
            self.busy[protocol] += 1
            try:
                return await handler(request)
            finally:
                self.busy[protocol] -= 1
                if self.busy[protocol] <= 0:
                    del self.busy[protocol]

        self.middleware = track

    async def __call__(self, site: web.BaseSite) -> None:
        await site.stop()  # no new connections
        server = self.runner.server
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            for connection in list(server.connections if server else ()):
                if connection not in self.busy:
                    connection.close()  # idle keep-alive: close now
            if not self.busy:
                return
            if asyncio.get_running_loop().time() >= deadline:
                log.warning(
                    "%d request(s) still running after %g s; closing their connections",
                    sum(self.busy.values()),
                    self.timeout,
                )
                return
            await asyncio.sleep(self.POLL)


def _url(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _announce(creds: RootCredentials, data_dir: Path) -> None:
    print(f"Tessera {__version__}, data directory {data_dir}", flush=True)
    print(f"Root access key: {creds.access_key}", flush=True)
    if creds.source == "config":
        # Echoing a secret the operator already set would only copy it into logs.
        print("Root secret key: (as configured)", flush=True)
    else:
        print(f"Root secret key: {creds.secret_key}", flush=True)
        print(f"  (stored in {data_dir / CREDENTIALS_FILE})", flush=True)


async def run_node(
    cfg: Config,
    *,
    on_ready: Callable[[str], None] | None = None,
    mode: str = "serve",
    worker: WorkerSlot | None = None,
    freeze_gc: bool = False,
) -> None:
    """Start the node described by ``cfg`` and serve until SIGTERM or SIGINT.

    ``mode`` is ``serve`` (local disks) or ``gateway`` (no disks: the chunk
    servers of the cluster map in ``[meta] url``). Returns after a clean shutdown.
    ``on_ready`` receives the base URL once the socket accepts requests (after the
    ready line is printed). Raises NodeError when the node cannot start; whatever
    was opened is closed again first.

    ``freeze_gc`` (for a process that runs only this node) moves everything
    start-up allocated out of the garbage collector's sight.

    With ``worker`` this is one of several worker processes (see
    :mod:`tessera.server.workers`): the supervisor holds the lock, printed the
    credentials and owns the listening socket; the worker prints nothing.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("%s received again; shutdown already in progress", name)
            return
        log.info(
            "%s received: finishing in-flight requests (up to %g s)",
            name,
            cfg.server.shutdown_timeout,
        )
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    data_dir = cfg.data_dir
    # A worker's supervisor holds the lock (and created the directory).
    lock = None if worker is not None else locked_dir(data_dir, "data directory")
    try:
        creds = ensure_root_credentials(cfg)
        if worker is None:
            _announce(creds, data_dir)
        async with contextlib.AsyncExitStack() as stack:
            url = await _start(cfg, creds, stack, mode, worker)
            if freeze_gc:
                # What start-up built lives as long as the process: keep it out of
                # every later collection (full collections cost tens of ms each).
                gc.collect()
                gc.freeze()
            if worker is None:
                print(f"{READY_PREFIX} {url}", flush=True)
            if on_ready is not None:
                on_ready(url)
            await stop.wait()
        log.info("Tessera stopped")
    finally:
        if lock is not None:
            lock.release()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _start(
    cfg: Config,
    creds: RootCredentials,
    stack: contextlib.AsyncExitStack,
    mode: str,
    worker: WorkerSlot | None,
) -> str:
    """Build and start everything; register each closer on ``stack`` as soon as its
    object exists. Returns the base URL."""
    ssl_context = _tls_context(cfg)
    watcher: ClusterWatcher | None = None
    async with contextlib.AsyncExitStack() as stores:
        meta = await SqlMetadataStore.connect(cfg.meta_url, migrate=True)
        stores.push_async_callback(meta.close)
        gateway = mode == "gateway"
        data = segment_store(cfg, gateway=gateway)
        stores.push_async_callback(data.close)
        if gateway:
            watcher = ClusterWatcher(
                meta,
                data,
                secret=cfg.cluster.secret,
                interval=cfg.cluster.heartbeat_interval,
                timeout=cfg.cluster.heartbeat_timeout,
                down_out=cfg.cluster.down_out,
                read_timeout=cfg.cluster.io_timeout,
            )
            stores.push_async_callback(watcher.close)
            await watcher.refresh()
        service = ObjectService(meta, data, options=core_options(cfg, len(data.volume_ids)))
        service.par_options = ParOptions(max_ttl=cfg.gateway.par_max_ttl)
        if worker is not None:
            service.epoch = worker.epoch
        if watcher is not None:
            w = watcher
            service.default_policy = lambda: cfg.storage.policy(
                len(w.store.volume_ids), len([s for s in w.servers if s.state != "removed"])
            )
        stores.pop_all()  # from here on, service.close() closes both stores
    stack.push_async_callback(service.close)
    if watcher is not None:
        stack.push_async_callback(watcher.close)  # after the service: volumes use its pool
    healer = Healer(meta, data, rate=cfg.storage.heal_rate)
    # Full healing passes and orphan scans: one process of the cluster at a time.
    # The holder id is stable across restarts (host and data directory, which the
    # LOCK file makes unique per process), so a restarted gateway resumes at once.
    lease = Lease(
        meta,
        "background",
        holder=f"{socket.gethostname()}:{cfg.data_dir}"
        + (f"#{worker.index}" if worker is not None else ""),
        ttl=cfg.cluster.lease_ttl,
    )
    await lease.renew()
    tasks = [
        asyncio.create_task(lease.run(), name="lease"),
        asyncio.create_task(
            GarbageCollector(meta, data, grace=cfg.storage.gc_grace).run(
                cfg.storage.gc_interval, cfg.storage.orphan_interval, leader=lease
            ),
            name="gc",
        ),
        asyncio.create_task(healer.run(cfg.storage.heal_interval, leader=lease), name="healer"),
    ]
    # Whichever process runs a pass publishes its counters; any process answers.
    heal_board = StatusBoard(
        meta, "heal", lambda: dataclasses.asdict(healer.stats), idle=dataclasses.asdict(HealStats())
    )
    tasks.append(asyncio.create_task(heal_board.run(), name="heal-status"))
    first = worker is None or worker.index == 0  # what runs once per node
    if first:
        tasks.append(asyncio.create_task(service.run_par_sweeper(), name="par-sweep"))
    scrub_board: StatusBoard | None = None
    if mode == "serve" and cfg.storage.scrub_rate > 0:
        # The scrubber runs in worker 0; every worker answers from its document.
        scrub_board = StatusBoard(meta, "scrub", idle=dataclasses.asdict(ScrubStats()))
    if scrub_board is not None and first:
        scrubber = Scrubber(
            data.volumes, rate=cfg.storage.scrub_rate, interval=cfg.storage.scrub_interval
        )
        scrub_board.snapshot = lambda: dataclasses.asdict(scrubber.stats)
        tasks.append(
            asyncio.create_task(
                scrubber.run(min(cfg.storage.scrub_interval, FIRST_SCRUB)), name="scrubber"
            )
        )
        tasks.append(asyncio.create_task(scrub_board.run(), name="scrub-status"))
    if mode == "serve" and first:
        tasks.append(asyncio.create_task(empty_trash(data), name="trash"))
    if watcher is not None:
        tasks.append(asyncio.create_task(watcher.run(), name="cluster-map"))
    for task in tasks:
        stack.push_async_callback(cancel_task, task)
    await service.ensure_account(
        ROOT_ACCOUNT_ID, ROOT_ACCOUNT_ID, [(creds.access_key, creds.secret_key)]
    )
    for account in cfg.auth.accounts:
        await service.ensure_account(
            account.id,
            account.display_name or account.id,
            [(account.access_key, account.secret_key)],
            email=account.email,
        )

    async def heal_status() -> dict[str, Any]:
        return heal_view(await heal_board.read(), healer.clock.now())

    async def heal_pass(*, repair: bool = True, deep: bool = False) -> HealStats:
        stats = await healer.heal_pass(repair=repair, deep=deep)
        await heal_board.publish()  # so that any worker answers with it at once
        return stats

    admin = AdminHooks(
        heal_status=heal_status,
        heal_pass=heal_pass,
        scrub_status=scrub_board.read if scrub_board else None,
        cluster=(lambda: [dataclasses.asdict(s) for s in watcher.servers]) if watcher else None,
        set_server_state=meta.set_server_state if watcher else None,
    )
    app = make_app(
        service,
        GatewayOptions(
            region=cfg.gateway.region,
            virtual_host_domains=tuple(cfg.gateway.virtual_host_domains),
            max_clock_skew=cfg.gateway.max_clock_skew,
        ),
        admin=admin,
    )
    app[BLOCKS_KEY] = BlockStore(
        data,
        block_signing_key(cfg),
        ttl=cfg.gateway.block_signature_ttl,
        root_account=ROOT_ACCOUNT_ID,
    )
    runner = web.AppRunner(
        app,
        # Only what is left after _Drain: requests that outlived shutdown_timeout.
        shutdown_timeout=CANCEL_TIMEOUT,
        max_line_size=MAX_HEADER_SIZE,
        max_field_size=MAX_HEADER_SIZE,
        # Content-Encoding describes the stored object (gzip stays gzip): never
        # decode request bodies on the way in.
        auto_decompress=False,
        access_log_class=_ServerAccessLog,
    )
    drain = _Drain(runner, cfg.server.shutdown_timeout)
    app.middlewares.insert(0, drain.middleware)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    host, port = cfg.server.address
    site: web.BaseSite
    if worker is not None:
        site = web.SockSite(runner, worker.sock, ssl_context=ssl_context)
    else:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    try:
        await site.start()
    except OSError as e:
        raise NodeError(f"cannot listen on {cfg.server.listen}: {e.strerror or e}") from None
    stack.push_async_callback(drain, site)  # runs before runner.cleanup
    bound_port = int(runner.addresses[0][1])
    return _url("https" if ssl_context else "http", host, bound_port)


async def empty_trash(data: SegmentStore, every: float = 600.0) -> None:
    """Remove trashed blocks whose delay has passed, every ``every`` seconds."""
    while True:
        await asyncio.sleep(every)
        for vid, vol in data.volumes.items():
            try:
                await vol.empty_trash()
            except OSError as e:
                log.warning("disk %s: emptying trash failed: %s", vid, e)


async def cancel_task(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it to end."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# --------------------------------------------------------------- process entry


def tune_malloc() -> None:
    """Apply :data:`MALLOC_TUNING` through glibc ``mallopt`` (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    for param, value, env_name in MALLOC_TUNING:
        if env_name in os.environ:
            continue
        if mallopt(ctypes.c_int(param), ctypes.c_int(value)) != 1:
            log.debug("mallopt(%d, %d) refused", param, value)


def serve(cfg: Config, mode: str = "serve") -> None:
    """Process entry point: :func:`run_node` through :func:`run_process`, or
    ``server.workers`` of them under a supervisor (:mod:`tessera.server.workers`).
    ``mode``: see :func:`run_node`. Raises NodeError."""
    if cfg.server.workers <= 1:
        run_process(cfg, run_node(cfg, mode=mode, freeze_gc=True))
        return
    data_dir = cfg.data_dir
    lock = locked_dir(data_dir, "data directory")
    try:
        _announce(ensure_root_credentials(cfg), data_dir)
        _tls_context(cfg)  # a bad certificate fails here, once, not in every worker
        host, port = cfg.server.address
        try:
            sock = socket.create_server(
                (host, port),
                family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                backlog=1024,
            )
        except OSError as e:
            raise NodeError(f"cannot listen on {cfg.server.listen}: {e.strerror or e}") from None

        def run(slot: WorkerSlot) -> int:
            try:
                run_process(
                    cfg, run_node(cfg, mode=mode, worker=slot, on_ready=slot.ready, freeze_gc=True)
                )
            except NodeError as e:
                print(f"tessera: worker {slot.index}: error: {e}", file=sys.stderr, flush=True)
                return 1
            return 0

        try:
            supervise(
                sock,
                cfg.server.workers,
                run,
                on_ready=lambda url: print(f"{READY_PREFIX} {url}", flush=True),
                stop_timeout=cfg.server.shutdown_timeout + 10.0,
            )
        except WorkerError as e:
            raise NodeError(str(e)) from None
        finally:
            sock.close()
    finally:
        lock.release()


def run_process(cfg: Config, main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` as a server process's whole life: configure logging, tune
    malloc, run it on uvloop when installed (asyncio otherwise), flush the logs."""
    listener = setup_logging(cfg.server.log_level)
    tune_malloc()
    # Fewer, larger young collections: a small request allocates a few hundred
    # containers, so the default threshold (700) collected every few requests.
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(main)
    finally:
        listener.stop()  # writes out what is pending
