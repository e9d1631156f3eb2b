"""Several worker processes behind one listening socket (``tessera serve --workers N``).

Why
---
One CPython process serves requests on one core: the event loop, HTTP parsing,
SigV4 and the S3 handlers all hold the GIL. A node with more cores than that runs
N copies of the gateway that share everything durable: the metadata store
(SQLite in WAL mode; every write transaction is ``BEGIN IMMEDIATE`` with a busy
timeout, so writers from different processes queue instead of failing), the
block volumes (block files are written to unique temporary names and renamed
into place, and their names are unique per write), and one listening socket,
from which the kernel hands each new connection to one of the processes.

Theory of operation
-------------------
The *supervisor* (the process ``tessera serve`` started) holds the data-directory
lock, creates the listening socket and an anonymous shared memory page for the
:class:`SharedEpoch`, then forks the workers one at a time, each after the
previous one reported ready, so that migrations and the creation of configured
accounts never race. It prints the ready line once all are up and then only
waits: SIGTERM or SIGINT is passed on to every worker (each drains its own
requests, as a single process does); a worker that dies on its own stops the
others and the supervisor exits 1, for the service manager to restart the node
(a half-sized node that looks healthy is worse than a restart).

What stays per process: the bucket and access-key caches, kept coherent by the
shared epoch; background work that must run once (scrubbing, emptying the trash,
sweeping expired links) runs in worker 0 only, and healing and orphan collection
take the cluster lease as they do across gateways. The healer's and scrubber's
in-memory status are per worker (an admin status call answers for the worker
it reached); calculation-PAR jobs keep their state in the metadata store.

A worker dies with its supervisor (``PR_SET_PDEATHSIG``), so a ``kill -9`` of the
supervisor cannot leave workers holding the data directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SharedEpoch", "WorkerError", "WorkerSlot", "supervise"]

SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
PR_SET_PDEATHSIG = 1
_SLOT = struct.Struct("<Q")


class WorkerError(Exception):
    """A worker could not start, or died; ``str(error)`` says which and how."""


class SharedEpoch:
    """A :class:`~tessera.core.base.CacheEpoch` over shared memory: one 8-byte
    counter per worker, written only by its worker (so no cross-process lock is
    needed), read whole by every worker. A torn read can only make a token look
    changed, which merely empties a cache."""

    def __init__(self, memory: mmap.mmap, slot: int, count: int) -> None:
        self._mm = memory
        self._offset = slot * _SLOT.size
        self._size = count * _SLOT.size

    @classmethod
    def allocate(cls, count: int) -> mmap.mmap:
        """Anonymous shared memory for ``count`` workers; create it before forking."""
        return mmap.mmap(-1, count * _SLOT.size, flags=mmap.MAP_SHARED)

    def token(self) -> bytes:
        return self._mm[: self._size]

    def bump(self) -> None:
        (value,) = _SLOT.unpack_from(self._mm, self._offset)
        _SLOT.pack_into(self._mm, self._offset, (value + 1) & 0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class WorkerSlot:
    """What a worker process gets from its supervisor."""

    index: int
    count: int
    sock: socket.socket
    """The listening socket, shared by all workers."""
    epoch: SharedEpoch
    _ready_fd: int

    def ready(self, url: str) -> None:
        """Tell the supervisor this worker accepts requests at ``url`` (once)."""
        with contextlib.suppress(OSError):
            os.write(self._ready_fd, f"{url}\n".encode())
            os.close(self._ready_fd)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _fork_worker(
    slot_args: tuple[int, int, socket.socket, mmap.mmap], run: Callable[[WorkerSlot], int]
) -> tuple[int, int]:
    """Fork one worker; returns ``(pid, read end of its ready pipe)``. Never returns
    in the child."""
    index, count, sock, memory = slot_args
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        return pid, r
    code = 1
    try:
        os.close(r)
        _die_with_parent()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        slot = WorkerSlot(index, count, sock, SharedEpoch(memory, index, count), w)
        code = run(slot)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _await_ready(pid: int, fd: int, timeout: float) -> str:
    """The URL worker ``pid`` reports on ``fd``. Raises WorkerError if it exits or
    stays silent for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerError(f"worker {pid} was not ready within {timeout:g} s")
            readable, _, _ = select.select([fd], [], [], left)
            if readable:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise WorkerError(f"worker {pid} exited before it was ready")
                data += chunk
    finally:
        os.close(fd)
    return data.decode().strip()


def _stop_all(pids: dict[int, int], timeout: float) -> dict[int, int]:
    """SIGTERM every worker in ``pids`` (pid -> index) and reap them, SIGKILLing any
    still alive after ``timeout`` s. Returns pid -> exit status code."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    codes: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while len(codes) < len(pids):
        for pid in pids:
            if pid in codes:
                continue
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                codes[pid] = os.waitstatus_to_exitcode(status)
        if len(codes) < len(pids):
            if time.monotonic() > deadline:
                for pid in set(pids) - set(codes):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.05)
    return codes


def supervise(
    sock: socket.socket,
    count: int,
    run: Callable[[WorkerSlot], int],
    *,
    on_ready: Callable[[str], None],
    ready_timeout: float = 120.0,
    stop_timeout: float = 30.0,
) -> None:
    """Fork ``count`` workers that each call ``run(slot)`` (its return value is the
    worker's exit code) and serve ``sock``; call ``on_ready(url)`` once all are
    ready (the supervisor then closes its own copy of ``sock``); return after
    SIGTERM or SIGINT once every worker has exited. Raises
    WorkerError if a worker fails to start or dies on its own (the others are
    stopped first). Must be called with no other threads running."""
    memory = SharedEpoch.allocate(count)
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    pids: dict[int, int] = {}
    try:
        url = ""
        for index in range(count):
            pid, fd = _fork_worker((index, count, sock, memory), run)
            pids[pid] = index
            url = _await_ready(pid, fd, ready_timeout)
        # The workers hold the socket now. Without the supervisor's copy, the port
        # refuses connections as soon as the workers stop listening at shutdown.
        sock.close()
        on_ready(url)
        while True:
            info = signal.sigwaitinfo(SIGNALS)
            if info.si_signo != signal.SIGCHLD:
                codes = _stop_all(pids, stop_timeout)
                pids.clear()
                bad = {p: c for p, c in codes.items() if c != 0}
                if bad:
                    print(f"tessera: workers exited with {bad}", file=sys.stderr, flush=True)
                return
            for pid, index in list(pids.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    del pids[pid]
                    code = os.waitstatus_to_exitcode(status)
                    raise WorkerError(
                        f"worker {index} (pid {pid}) exited with code {code}; "
                        "stopping the other workers"
                    )
    finally:
        if pids:
            _stop_all(pids, stop_timeout)
        # A second SIGTERM sent while the workers drained is answered by this
        # return: take it off the queue, or unblocking would kill us with it.
        while signal.sigtimedwait(SIGNALS, 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        memory.close()
