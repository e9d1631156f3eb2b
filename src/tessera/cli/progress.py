"""Terminal progress bars for transfers (``rich.progress``), and a file wrapper
that advances one as it is read.

A bar is drawn only when asked for and stderr is a terminal, so scripted use
and ``--json`` output stay clean.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress


class Progress:
    """``with Progress(show, total, label) as bar: bar.advance(n)``; a no-op when
    ``show`` is false or stderr is not a terminal."""

    def __init__(self, show: bool, total: int | None, label: str) -> None:
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        if show and sys.stderr.isatty():
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._bar.add_task(label[-40:], total=total)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, n: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)


class ProgressReader:
    """A binary file whose reads advance ``bar``. Seeking is passed through (a
    retried multipart part re-reads, and the bar then over-counts slightly)."""

    def __init__(self, f: IO[bytes], bar: Progress) -> None:
        self._f = f
        self._bar = bar

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._bar.advance(len(data))
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        n = self._f.readinto(buf)  # type: ignore[attr-defined]
        self._bar.advance(n or 0)
        return int(n or 0)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def seekable(self) -> bool:
        return self._f.seekable()

    def readable(self) -> bool:
        return True
