"""Run one chunk server: the block API over local disks, in the cluster map.

``tessera chunkserver --data DISK [--data DISK ...] --listen HOST:PORT --zone Z
--meta URL``. Start-up, in order (each failure is a :class:`NodeError`):

1. lock every disk directory (``LOCK``: one process per disk, ever) and open its
   volume (its id is kept in the disk, see :func:`tessera.server.node.volume_id`);
2. the server id: ``[cluster] server_id``, else the one kept in
   ``<first disk>/tessera-server.toml`` (generated on first start);
3. listen, then register in the cluster map (id, URL, zone, disks and their
   capacity) and print ``Tessera chunk server <id> listening on URL``;
4. heartbeat every ``heartbeat_interval`` seconds with fresh capacities (a
   heartbeat for a server the map forgot re-registers it); scrub the disks at
   ``scrub_rate`` bytes/s (corrupt blocks are quarantined, the gateways' healer
   rebuilds them); empty each disk's trash once its delay has passed.

SIGTERM/SIGINT stop it: no new connections, running requests get
``shutdown_timeout`` seconds, volumes are closed. The cluster map keeps the
server (state unchanged); gateways see it as down once its heartbeats stop.

This module is the composition root of a chunk server: the block API itself
(:mod:`tessera.chunkserver`) never sees the metadata store.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import signal
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from tessera.chunkserver.app import make_chunk_app
from tessera.data.scrubber import Scrubber
from tessera.data.volume import LocalVolume
from tessera.meta.sql.store import SqlMetadataStore
from tessera.meta.store import MetadataStore
from tessera.model.cluster import DiskInfo, ServerInfo
from tessera.server.config import Config
from tessera.server.node import (
    FIRST_SCRUB,
    MAX_HEADER_SIZE,
    DataDirLock,
    NodeError,
    _url,
    _write_private,
    cancel_task,
    locked_dir,
    run_process,
    volume_id,
)

log = logging.getLogger("tessera.chunkserver")

READY_PREFIX = "Tessera chunk server"
SERVER_ID_FILE = "tessera-server.toml"
TRASH_POLL = 600.0
"""Seconds between two trash-emptying rounds."""


def server_id(cfg: Config, first_disk: Path) -> str:
    """The configured id, else the one stored in the first disk (created once)."""
    if cfg.cluster.server_id:
        return cfg.cluster.server_id
    path = first_disk / SERVER_ID_FILE
    if path.exists():
        try:
            return str(tomllib.loads(path.read_text())["id"])
        except (OSError, tomllib.TOMLDecodeError, KeyError) as e:
            raise NodeError(f"cannot read the server id in {path} ({e})") from None
    sid = f"cs-{secrets.token_hex(4)}"
    _write_private(path, f'# Identity of this Tessera chunk server; do not edit.\nid = "{sid}"\n')
    return sid


async def _disks(volumes: list[LocalVolume]) -> tuple[DiskInfo, ...]:
    out = []
    for v in volumes:
        try:
            total, free = await v.capacity()
        except OSError:
            total = free = 0
        out.append(DiskInfo(v.id, 1.0, total, free))
    return tuple(out)


async def _heartbeat(
    meta: MetadataStore, info: ServerInfo, volumes: list[LocalVolume], interval: float
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            disks = await _disks(volumes)
            if not await meta.heartbeat_server(info.id, disks, time.time()):
                log.warning("the cluster map forgot this server; registering again")
                await meta.register_server(
                    ServerInfo(info.id, info.url, info.zone, disks, heartbeat=time.time())
                )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("heartbeat failed (retrying): %s", e)


async def _empty_trash(volumes: list[LocalVolume]) -> None:
    while True:
        for v in volumes:
            try:
                n = await v.empty_trash()
                if n:
                    log.info("disk %s: %d trashed block(s) removed", v.id, n)
            except OSError as e:
                log.warning("disk %s: emptying trash failed: %s", v.id, e)
        await asyncio.sleep(TRASH_POLL)


async def run_chunkserver(cfg: Config, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Run the chunk server described by ``cfg`` until SIGTERM/SIGINT (see the
    module docstring). Raises NodeError when it cannot start."""
    if not cfg.meta.url:
        raise NodeError("a chunk server needs the cluster's metadata database: set --meta URL")
    disks = [Path(p) for p in cfg.disk_dirs]
    host = cfg.server.address[0]
    if not cfg.cluster.secret and not _loopback(host):
        raise NodeError(
            f"refusing to serve blocks on {host} without a cluster key: anyone who can "
            "reach the port could read and delete data. Set TESSERA_CLUSTER_SECRET (the "
            "same on every gateway and chunk server) or listen on 127.0.0.1"
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    locks: list[DataDirLock] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            volumes: list[LocalVolume] = []
            for i, disk in enumerate(disks):
                locks.append(locked_dir(disk, "disk directory"))
                vol = LocalVolume(
                    disk,
                    volume_id(disk, i),
                    min_free=cfg.storage.min_free,
                    trash_delay=cfg.storage.trash_delay,
                    direct_io=cfg.storage.direct_io,
                )
                volumes.append(vol)
                stack.push_async_callback(vol.close)
            if len({v.id for v in volumes}) != len(volumes):
                raise NodeError("two disks carry the same volume id (was a disk copied?)")
            sid = server_id(cfg, disks[0])
            meta = await SqlMetadataStore.connect(cfg.meta.url, migrate=True)
            stack.push_async_callback(meta.close)
            secret = cfg.cluster.secret or None
            app = make_chunk_app(volumes, server_id=sid, zone=cfg.cluster.zone, secret=secret)
            runner = web.AppRunner(
                app,
                shutdown_timeout=cfg.server.shutdown_timeout,
                max_line_size=MAX_HEADER_SIZE,
                max_field_size=MAX_HEADER_SIZE,
                access_log=None,
            )
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            host, port = cfg.server.address
            site = web.TCPSite(runner, host, port, reuse_address=True)
            try:
                await site.start()
            except OSError as e:
                raise NodeError(
                    f"cannot listen on {cfg.server.listen}: {e.strerror or e}"
                ) from None
            url = cfg.cluster.advertise or _url("http", host, int(runner.addresses[0][1]))
            info = ServerInfo(
                sid, url, cfg.cluster.zone, await _disks(volumes), heartbeat=time.time()
            )
            stored = await meta.register_server(info)
            tasks = [
                asyncio.create_task(
                    _heartbeat(meta, info, volumes, cfg.cluster.heartbeat_interval),
                    name="heartbeat",
                ),
                asyncio.create_task(_empty_trash(volumes), name="trash"),
            ]
            if cfg.storage.scrub_rate > 0:
                scrubber = Scrubber(
                    {v.id: v for v in volumes},
                    rate=cfg.storage.scrub_rate,
                    interval=cfg.storage.scrub_interval,
                )
                tasks.append(
                    asyncio.create_task(
                        scrubber.run(min(cfg.storage.scrub_interval, FIRST_SCRUB)), name="scrubber"
                    )
                )
            for t in tasks:
                stack.push_async_callback(cancel_task, t)
            print(
                f"{READY_PREFIX} {sid} ({stored.state}, zone {cfg.cluster.zone}, "
                f"{len(volumes)} disk(s)) listening on {url}",
                flush=True,
            )
            if on_ready is not None:
                on_ready(url)
            await stop.wait()
            await site.stop()
        log.info("chunk server %s stopped", sid)
    finally:
        for lock in locks:
            lock.release()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def serve_chunkserver(cfg: Config) -> None:
    """Process entry point of ``tessera chunkserver`` (see :func:`run_process`)."""
    run_process(cfg, run_chunkserver(cfg))
