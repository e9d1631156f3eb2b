"""Process-wide logging for server processes: formatted on the caller's thread,
written to stderr in batches by one background thread.

Why: the access log writes one line per request. Through the standard
``QueueHandler``/``QueueListener`` pair, each line woke the listener thread
(a futex wake-up on every ``put``) and copied its record: profiled at ~10% of
the server's CPU on small requests. Here a record is formatted at once (so it
shows the state of the moment, as ``QueueHandler`` does) and appended to a
deque (no lock, no wake-up); the writer thread wakes every
:data:`FLUSH_INTERVAL` seconds and writes whatever accumulated with one
``write``. A line therefore reaches stderr at most that late, and :meth:`stop`
writes out the rest. Errors and warnings are not delayed differently: at these
intervals, nobody can tell.
"""

from __future__ import annotations

import collections
import functools
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["FLUSH_INTERVAL", "BatchedStderr", "direct_info", "setup_logging"]

FLUSH_INTERVAL = 0.05
"""Seconds between two writes of the log thread."""

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Formatter(logging.Formatter):
    """The standard formatter with the date part of ``asctime`` computed once a second."""

    def __init__(self) -> None:
        super().__init__(FORMAT)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.stamp(record.created)

    def stamp(self, created: float) -> str:
        """``asctime`` of a record created at ``created`` (``2026-12-06 02:04:41,455``)."""
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._second = second
        return f"{self._stamp},{int((created - second) * 1000):03d}"


class BatchedStderr(logging.Handler):
    """Formats each record at once; a daemon thread writes them out in batches."""

    def __init__(self, stream: TextIO | None = None, interval: float = FLUSH_INTERVAL) -> None:
        super().__init__()
        self._formatter = _Formatter()
        self.setFormatter(self._formatter)
        self._stream = stream
        self._interval = interval
        self._lines: collections.deque[str] = collections.deque()
        self._write_lock = threading.Lock()  # writers only; emit never waits
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tessera-log", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:
            self.handleError(record)

    def info_line(self, name: str, message: str) -> None:
        """Queue ``message`` as the line an INFO record of logger ``name`` would
        give, without making the record (see :func:`direct_info`)."""
        self._lines.append(f"{self._formatter.stamp(time.time())} INFO {name}: {message}")

    def _write_out(self) -> None:
        lines = self._lines
        with self._write_lock:
            if not lines:
                return
            batch = [lines.popleft() for _ in range(len(lines))]
            stream = self._stream or sys.stderr
            try:
                stream.write("\n".join(batch) + "\n")
                stream.flush()
            except (OSError, ValueError):  # stderr closed: nothing sensible left to do
                pass

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self._write_out()
        self._write_out()

    def stop(self) -> None:
        """Write out what is pending and end the thread (idempotent)."""
        self._stopped.set()
        self._thread.join()
        self._write_out()

    def flush(self) -> None:
        self._write_out()


def direct_info(logger: logging.Logger) -> Callable[[str], None] | None:
    """A function writing one INFO line of ``logger`` straight to the root's
    :class:`BatchedStderr`, or None when that could differ from ``logger.info``:
    a filter or another handler on the way, a logger that does not propagate,
    a root with other handlers. ``logger.info`` costs ~20 us per line
    (a LogRecord, the caller's frame, handler dispatch, formatting), a tenth of
    a small request; the access log takes this path. The caller checks the
    level first; the handler's own level must let INFO through."""
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        if current.parent is None:  # the root
            handlers = current.handlers
            if len(handlers) != 1:
                return None
            handler = handlers[0]
            if not isinstance(handler, BatchedStderr) or handler.filters:
                return None
            if handler.level > logging.INFO:
                return None
            return functools.partial(handler.info_line, logger.name)
        if current.handlers or not current.propagate:
            return None
        current = current.parent
    return None


def setup_logging(level: str) -> BatchedStderr:
    """Send every log record to stderr through one :class:`BatchedStderr`.
    Returns it; call its ``stop()`` at exit."""
    handler = BatchedStderr()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return handler
