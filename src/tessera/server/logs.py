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
import logging
import sys
import threading
import time
from typing import TextIO

__all__ = ["FLUSH_INTERVAL", "BatchedStderr", "setup_logging"]

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
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"


class BatchedStderr(logging.Handler):
    """Formats each record at once; a daemon thread writes them out in batches."""

    def __init__(self, stream: TextIO | None = None, interval: float = FLUSH_INTERVAL) -> None:
        super().__init__()
        self.setFormatter(_Formatter())
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


def setup_logging(level: str) -> BatchedStderr:
    """Send every log record to stderr through one :class:`BatchedStderr`.
    Returns it; call its ``stop()`` at exit."""
    handler = BatchedStderr()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return handler
