"""Block volumes: named, immutable, checksummed blobs on one disk (or one server).

A :class:`Volume` stores blocks by name. Names are lower-case hex (a content hash),
optionally followed by short suffixes (``.3``, ``-p1``) for replicas and EC
fragments; a name is always one path component, so it can never escape the
volume. :class:`LocalVolume` keeps them in a directory::

    <root>/blocks/<first 3 hex>/<name>   visible blocks (format: ``blockfile``)
    <root>/tmp/                          blocks being written (never visible)
    <root>/trash/<name>.<deadline>       deleted blocks, restorable until the deadline
    <root>/quarantine/<name>.<time>      blocks found corrupt, kept for an operator

(the last two are :class:`tessera.data.trash.Bin` directories).

Modification times matter: a block's mtime is the last time a writer stored it.
Deleting with ``older_than`` keeps blocks written since (GC and failed writes use
it so they never remove a block another writer just deduplicated onto). To make
that exact, every store of an existing block moves its mtime strictly forward
(by at least :data:`MTIME_STEP`), even within one clock tick.

Deletion is two-phase: a deleted block is renamed into the trash (so it vanishes
from reads and listings at once) and removed for good by :meth:`Volume.empty_trash`
once its deadline has passed; until then :meth:`Volume.undelete` restores it.
:meth:`Volume.verify` checks a whole block and moves a corrupt one into the
quarantine, where the healer sees it as missing and rebuilds it in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import math
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from tessera.common.checksums import Buffer
from tessera.data import blockfile
from tessera.data.direct_io import MIN_DIRECT, DirectWriter
from tessera.data.trash import Bin, fault
from tessera.model.errors import DataCorruption, InvalidArgument, NotFound, StorageFull

T = TypeVar("T")

NAME_RE = re.compile(r"[0-9a-f]{3,128}(?:[._-][0-9a-z]{1,32}){0,4}")
"""Valid block names: hex, then up to four ``.x``/``_x``/``-x`` suffixes."""
CONTENT_BLOCK_SUFFIX = ".cas"
"""Suffix of the blocks of the content-addressed block API (:mod:`tessera.core.blocks`):
``<md5 hex>.cas``. Segment fragments are ``<hash>`` or ``<hash>.k<k>m<m>.<i>``, so
the two namespaces never meet; the orphan GC skips content blocks (no manifest
references them) and the scrubber checks them like any block."""
MTIME_STEP = 100_000
"""Nanoseconds by which a re-store of an existing block advances its mtime, at least."""
STALE_TMP_AGE = 3600.0
"""Seconds after which a leftover file in ``tmp/`` (a crashed write) is removed at open."""
TRASH_DELAY = 86400.0
"""Default seconds a deleted block stays restorable in the trash."""

log = logging.getLogger(__name__)


class BlockNotFound(NotFound):
    """The named block does not exist on this volume."""


@dataclass(frozen=True, slots=True)
class Stored:
    """What :meth:`Volume.put` did."""

    crc32c: int
    """CRC32C of the block's data."""
    created: bool
    """True when the block did not exist before this call (the caller may delete it
    on failure); False when an existing block was kept (or repaired) and refreshed."""
    mtime: float
    """The block's mtime as set by this call (seconds). A later store of the same block
    sets a strictly larger one, so ``delete(name, older_than=mtime + MTIME_STEP / 2e9)``
    removes the block only if nobody stored it since."""


class Volume(Protocol):
    """One place blocks live. All methods are safe to call concurrently."""

    @property
    def id(self) -> str:
        """Stable id, recorded in manifests (``FragmentRef.volume``)."""
        ...

    async def put(self, name: str, data: Buffer) -> Stored:
        """Store ``data`` as block ``name``, atomically and durably.

        When this returns, the block is on stable storage under its name; until
        then it is not visible at all (no reader ever sees a partial block). If a
        block with the same data already exists (same length and whole-data CRC32C
        in its footer), only its mtime is refreshed (durably); if it exists with
        other data or is unreadable, it is replaced atomically. Raises
        InvalidArgument for a bad name, StorageFull when the disk is full (leaving
        nothing behind), OSError for other I/O failures.
        """
        ...

    async def get(
        self, name: str, start: int = 0, end: int | None = None, *, crc32c: int | None = None
    ) -> bytes:
        """Bytes ``[start, end)`` of the block's data (``end=None``: to the end),
        verified against the block's checksums. With ``crc32c``, the block's
        recorded whole-data CRC must equal it. Raises BlockNotFound, DataCorruption,
        InvalidArgument (bad name), ValueError (start past the end), OSError."""
        ...

    async def delete(self, name: str, older_than: float | None = None) -> bool:
        """Remove the block. With ``older_than``, a block whose mtime is at or after
        it is kept (checked and removed atomically with respect to :meth:`put` of
        the same name). Returns True if removed, False if missing or kept.

        Removal is two-phase: the block disappears at once from :meth:`get`,
        :meth:`stat` and :meth:`blocks`, but stays restorable (:meth:`undelete`)
        until its trash deadline passes and :meth:`empty_trash` removes it. A later
        :meth:`put` of the name stores a new block normally. Removal is not fsynced:
        after a crash a deleted block may reappear (garbage for GC)."""
        ...

    async def undelete(self, name: str) -> bool:
        """Restore the most recently deleted copy of ``name`` still in the trash.

        Only when the name is not currently present (a present block is never
        replaced). The restored block counts as stored now: its mtime is advanced
        as by a re-store, so a delete with an ``older_than`` decided before the
        restore keeps it. Durable when it returns True; False when the name is
        present or nothing is in the trash. Raises InvalidArgument (bad name)."""
        ...

    async def empty_trash(self, now: float | None = None) -> int:
        """Remove for good the trashed blocks whose deadline is at or before ``now``
        (default: the current time); returns how many were removed."""
        ...

    async def verify(self, name: str) -> bool | None:
        """Read the whole block and check every checksum and its layout.

        True: the block is good. None: there is no such block. False: it was
        corrupt (or unreadable, EIO) and has been moved out of service, atomically
        with respect to :meth:`put` of the name: from then on :meth:`get`,
        :meth:`stat` and :meth:`blocks` see it as missing (so a healer rebuilds it)
        and :meth:`quarantined` lists it. A block replaced by a put while it was
        being checked is checked again, never quarantined unchecked. Quarantined
        blocks are never removed automatically. Raises InvalidArgument (bad name),
        OSError for I/O failures other than EIO."""
        ...

    async def trash_stats(self) -> tuple[int, int]:
        """``(count, bytes on disk)`` of the blocks in the trash."""
        ...

    async def quarantined(self) -> list[str]:
        """Names of the quarantined blocks, sorted, one per quarantined file (a block
        quarantined twice appears twice)."""
        ...

    async def stat(self, name: str) -> tuple[int, float] | None:
        """``(data length, mtime)`` of the block, or None when it does not exist.
        Raises DataCorruption when the block's footer is unreadable (:meth:`verify`
        then quarantines it), InvalidArgument (bad name), OSError."""
        ...

    async def stat_many(self, names: Sequence[str]) -> dict[str, tuple[int, float] | None]:
        """:meth:`stat` of each name, in one call (one request for a remote volume).
        Raises InvalidArgument for a bad name, DataCorruption as :meth:`stat`."""
        ...

    def blocks(self, prefix: str = "") -> AsyncIterator[str]:
        """Every block name (starting with ``prefix``), in sorted order, for GC and
        scrubbing. Blocks stored or removed during the iteration may or may not appear."""
        ...

    async def capacity(self) -> tuple[int, int]:
        """``(total, free)`` bytes available to blocks."""
        ...

    async def close(self) -> None:
        """Finish running operations and release threads; the volume is unusable after."""
        ...


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid block name, else raise InvalidArgument."""
    if not isinstance(name, str) or NAME_RE.fullmatch(name) is None:
        raise InvalidArgument(f"invalid block name {name!r}")
    return name


def content_block_name(md5_hex: str) -> str:
    """The volume block name of the content-addressed block with this MD5 (hex)."""
    return check_name(md5_hex + CONTENT_BLOCK_SUFFIX)


def is_content_block(name: str) -> bool:
    """Whether ``name`` is a content-addressed block (not a segment fragment)."""
    return name.endswith(CONTENT_BLOCK_SUFFIX)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _full(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)


class LocalVolume:
    """A :class:`Volume` in a local directory, one owner process at a time.

    Blocking file I/O runs in a dedicated thread pool of ``threads`` workers, so a
    slow disk never blocks the event loop or other volumes. ``min_free`` bytes of
    the file system are kept free: a put that would go below raises StorageFull.
    Deleted blocks stay in the trash for ``trash_delay`` seconds (rounded up to a
    whole second); ``trash_delay=0`` removes them at once (no undelete).
    ``direct_io`` writes blocks of :data:`~tessera.data.direct_io.MIN_DIRECT`
    bytes or more around the page cache (see :mod:`tessera.data.direct_io`).
    """

    def __init__(
        self,
        root: Path | str,
        id: str,
        *,
        threads: int = 4,
        min_free: int = 0,
        trash_delay: float = TRASH_DELAY,
        direct_io: bool = False,
    ) -> None:
        if not trash_delay >= 0:
            raise ValueError(f"invalid trash delay {trash_delay}")
        self._id = id
        self.root = Path(root)
        self.min_free = min_free
        self.trash_delay = trash_delay
        self._blocks = self.root / "blocks"
        self._tmp = self.root / "tmp"
        for d in (self.root, self._blocks, self._tmp):
            d.mkdir(parents=True, exist_ok=True)
        self._trash = Bin(self.root / "trash", NAME_RE)
        self._quarantine = Bin(self.root / "quarantine", NAME_RE)
        _fsync_dir(self.root)
        self._clean_tmp(STALE_TMP_AGE)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=f"vol-{id}")
        self._locks = [threading.Lock() for _ in range(64)]
        self._direct = DirectWriter() if direct_io else None
        self._seq = itertools.count()

    def __repr__(self) -> str:
        return f"LocalVolume({str(self.root)!r}, {self._id!r})"

    @property
    def id(self) -> str:
        return self._id

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _path(self, name: str) -> Path:
        return self._blocks / name[:3] / name

    def _lock(self, name: str) -> threading.Lock:
        return self._locks[hash(name) % len(self._locks)]

    def _clean_tmp(self, age: float) -> None:
        limit = time.time() - age
        for entry in os.scandir(self._tmp):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < limit:
                    os.unlink(entry.path)

    # -- put ------------------------------------------------------------------
    async def put(self, name: str, data: Buffer) -> Stored:
        check_name(name)
        return await self._run(self._put, name, data)

    def _put(self, name: str, data: Buffer) -> Stored:
        tail, crc = blockfile.encode_tail(data)
        length = len(memoryview(data))
        path = self._path(name)
        with self._lock(name):
            state = self._existing(path, length, crc)
            if state == "same":
                return Stored(crc, False, self._refresh(path))
        if self.min_free:
            st = os.statvfs(self.root)
            if st.f_bavail * st.f_frsize - blockfile.encoded_size(length) < self.min_free:
                raise StorageFull(f"volume {self._id} is full", volume=self._id)
        tmp = self._tmp / f"{name}.{os.getpid()}.{next(self._seq)}"
        try:
            mtime_ns = self._write_tmp(tmp, data, tail)
            with self._lock(name):
                created, mtime = self._publish(tmp, path, length, crc, mtime_ns)
            return Stored(crc, created, mtime)
        except OSError as e:
            if _full(e):
                raise StorageFull(f"volume {self._id} is full", volume=self._id) from e
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _existing(self, path: Path, length: int, crc: int) -> str | None:
        """``same`` when ``path`` holds a block with this length and CRC, ``other``
        when it holds anything else, None when it does not exist."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            footer = blockfile.read_footer(fd)
        except DataCorruption:
            return "other"
        finally:
            os.close(fd)
        return "same" if (footer.length, footer.data_crc) == (length, crc) else "other"

    def _refresh(self, path: Path) -> float:
        """Advance the block's mtime strictly (caller holds the name's lock)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            old = os.fstat(fd).st_mtime_ns
            new = max(time.time_ns(), old + MTIME_STEP)
            os.utime(fd, ns=(new, new))
            os.fsync(fd)
        finally:
            os.close(fd)
        return new / 1e9

    def _write_tmp(self, tmp: Path, data: Buffer, tail: bytes) -> int:
        """Write and fsync the block file ``tmp``; returns the mtime (ns) it was given.
        Large blocks go around the page cache when ``direct_io`` is on."""
        fd = None
        direct = self._direct
        if direct is not None and direct.enabled and memoryview(data).nbytes >= MIN_DIRECT:
            fd = direct.create(tmp, (data, tail))
        if fd is None:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                for part in (memoryview(data).cast("B"), memoryview(tail)):
                    while part:
                        part = part[os.write(fd, part) :]
            except BaseException:
                os.close(fd)
                raise
        try:
            now = time.time_ns()
            os.utime(fd, ns=(now, now))
            os.fsync(fd)
            return now
        finally:
            os.close(fd)

    def _publish(
        self, tmp: Path, path: Path, length: int, crc: int, now: int
    ) -> tuple[bool, float]:
        """Make the written ``tmp`` visible as ``path`` (caller holds the name's lock).

        A new block is hard-linked into place (fails if another writer got there
        first, in which case that block is kept and refreshed); a corrupt one is
        replaced by rename. Either way the directory is fsynced before returning.
        """
        shard = self._make_shard(path)
        state = self._existing(path, length, crc)
        if state is None:
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process stored it since the check
                state = self._existing(path, length, crc)
            else:
                _fsync_dir(shard)
                return True, now / 1e9
        if state == "same":
            return False, self._refresh(path)
        with contextlib.suppress(FileNotFoundError):
            now = max(now, os.stat(path).st_mtime_ns + MTIME_STEP)
        os.utime(tmp, ns=(now, now))
        os.replace(tmp, path)
        _fsync_dir(shard)
        return False, now / 1e9

    def _make_shard(self, path: Path) -> Path:
        """Create (durably) the shard directory of block file ``path``; return it."""
        shard = path.parent
        try:
            os.mkdir(shard)
            _fsync_dir(self._blocks)
        except FileExistsError:
            pass
        return shard

    # -- get / stat -----------------------------------------------------------
    async def get(
        self, name: str, start: int = 0, end: int | None = None, *, crc32c: int | None = None
    ) -> bytes:
        check_name(name)
        return await self._run(self._get, name, start, end, crc32c)

    def _get(self, name: str, start: int, end: int | None, crc: int | None) -> bytes:
        try:
            fd = os.open(self._path(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BlockNotFound(f"block {name} not found on {self._id}", volume=self._id) from None
        try:
            return blockfile.read_range(fd, start, end, expected_crc=crc)
        except DataCorruption as e:
            e.details.update(volume=self._id, block=name)
            raise
        finally:
            os.close(fd)

    async def stat(self, name: str) -> tuple[int, float] | None:
        check_name(name)
        return await self._run(self._stat, name)

    async def stat_many(self, names: Sequence[str]) -> dict[str, tuple[int, float] | None]:
        for n in names:
            check_name(n)
        return await self._run(self._stat_many, list(names))

    def _stat_many(self, names: list[str]) -> dict[str, tuple[int, float] | None]:
        return {n: self._stat(n) for n in names}

    def _stat(self, name: str) -> tuple[int, float] | None:
        try:
            fd = os.open(self._path(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
            return blockfile.read_footer(fd, st.st_size).length, st.st_mtime_ns / 1e9
        finally:
            os.close(fd)

    # -- delete ---------------------------------------------------------------
    async def delete(self, name: str, older_than: float | None = None) -> bool:
        check_name(name)
        return await self._run(self._delete, name, older_than)

    def _delete(self, name: str, older_than: float | None) -> bool:
        path = self._path(name)
        with self._lock(name):
            try:
                if older_than is not None and os.stat(path).st_mtime_ns / 1e9 >= older_than:
                    return False
                if self.trash_delay > 0:
                    deadline = math.ceil(time.time() + self.trash_delay)
                    self._trash.add(path, name, deadline)
                else:
                    os.unlink(path)
            except FileNotFoundError:
                return False
        return True

    # -- trash ----------------------------------------------------------------
    async def undelete(self, name: str) -> bool:
        check_name(name)
        return await self._run(self._undelete, name)

    def _undelete(self, name: str) -> bool:
        path = self._path(name)
        with self._lock(name):
            if os.path.lexists(path):
                return False
            entry = self._trash.newest(name)
            if entry is None:
                return False
            shard = self._make_shard(path)
            os.rename(entry.path, path)
            self._refresh(path)
            _fsync_dir(shard)
            _fsync_dir(self._trash.path)
        return True

    async def empty_trash(self, now: float | None = None) -> int:
        return await self._run(
            self._trash.remove_due, time.time() if now is None else now, self._lock
        )

    async def trash_stats(self) -> tuple[int, int]:
        return await self._run(self._trash.usage)

    # -- verification / quarantine ----------------------------------------------
    async def verify(self, name: str) -> bool | None:
        check_name(name)
        return await self._run(self._verify, name)

    def _verify(self, name: str, locked: bool = False) -> bool | None:
        path = self._path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            # The fd stays open until the identity check below, so the inode cannot
            # be reused meanwhile: same (dev, ino) means the very file checked. Its
            # data cannot have changed (blocks are replaced by rename, never written
            # in place; a refresh only moves the mtime, which does not repair it).
            checked = os.fstat(fd)
            error = fault(fd)
            if error is None:
                return True
            if locked:
                return self._quarantine_locked(name, path, error)
            with self._lock(name):
                try:
                    current = os.stat(path)
                except FileNotFoundError:
                    return None
                if (current.st_dev, current.st_ino) == (checked.st_dev, checked.st_ino):
                    return self._quarantine_locked(name, path, error)
                # Replaced by a put while we read: check the new file, holding the
                # lock this time (rare), so it cannot change again.
                return self._verify(name, locked=True)
        finally:
            os.close(fd)

    def _quarantine_locked(self, name: str, path: Path, error: Exception) -> bool:
        dst = self._quarantine.add(path, name, int(time.time()))
        log.warning(
            "volume %s: block %s is corrupt (%s); quarantined as %s", self._id, name, error, dst
        )
        return False

    async def quarantined(self) -> list[str]:
        return await self._run(self._quarantine.names)

    # -- listing / capacity / close -------------------------------------------
    async def blocks(self, prefix: str = "") -> AsyncIterator[str]:
        shards = await self._run(self._listdir, self._blocks)
        for shard in shards:
            if len(shard) != 3 or not shard.startswith(prefix[:3]):
                continue
            for name in await self._run(self._listdir, self._blocks / shard):
                if name.startswith(prefix) and NAME_RE.fullmatch(name):
                    yield name

    @staticmethod
    def _listdir(path: Path) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except FileNotFoundError:
            return []

    async def capacity(self) -> tuple[int, int]:
        st = await self._run(os.statvfs, self.root)
        return st.f_blocks * st.f_frsize, max(0, st.f_bavail * st.f_frsize - self.min_free)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)
