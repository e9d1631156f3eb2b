"""Downloading objects into local files for :class:`~tessera.sdk.bucket.Bucket`:
where a remote name may land (never outside the output directory), progress
reporting (a ``rich`` bar or a callback) and the atomic write itself.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from tessera.sdk.errors import BadRequest

ProgressCallback = Callable[[int, int, str], object]
"""``callback(read_bytes, total_bytes, filename)``: ``read_bytes`` so far of
``filename`` (the remote name), whose size is ``total_bytes``."""
ProgressArg = bool | ProgressCallback | None
Reporter = ProgressCallback


class UnsafeName(BadRequest):
    """A remote name that would land outside the output directory (``..``
    segments, an absolute path, a NUL byte, an existing symbolic link leading
    out); nothing is written for it."""

    code = "UnsafeObjectName"


def safe_local_path(output_dir: str | os.PathLike[str], name: str) -> str:
    """The local path of remote ``name`` under ``output_dir`` ('/' separates
    folders). Raises :class:`UnsafeName` when that path is not strictly inside
    ``output_dir``, following the symbolic links that already exist."""
    parts = name.split("/")
    bad = (
        not name
        or "\0" in name
        or name.startswith("/")
        or any(p in ("..", ".") for p in parts)
        or any(os.sep in p or (os.altsep and os.altsep in p) for p in parts if os.sep != "/")
    )
    if bad or not parts[-1]:
        raise UnsafeName(f"refusing remote name {name!r}: not a file path inside the output folder")
    root = os.path.realpath(output_dir)
    target = os.path.join(root, *[p for p in parts if p])
    real = os.path.realpath(target)
    if os.path.commonpath([root, real]) != root or real == root:
        raise UnsafeName(f"refusing remote name {name!r}: it leads outside {os.fspath(output_dir)}")
    return target


@contextmanager
def reporter(progress: ProgressArg) -> Iterator[Reporter | None]:
    """A progress reporter for one or more downloads: None (``progress`` false),
    the caller's callback, or a ``rich`` terminal bar per file (``True``)."""
    if not progress:
        yield None
        return
    if callable(progress):
        yield progress
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TransferSpeedColumn,
    )

    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()
    ) as bar:

        def show(read: int, total: int, filename: str) -> None:
            if filename not in tasks:
                tasks[filename] = bar.add_task(filename[-40:], total=total)
            bar.update(tasks[filename], completed=read)

        yield show


def write_atomically(
    pieces: Iterable[bytes],
    path: str,
    total: int,
    filename: str,
    report: Reporter | None,
) -> int:
    """Write ``pieces`` to ``path`` through a temporary file in the same folder
    renamed over it at the end: ``path`` holds the old content or the whole new
    one, never a part (the temporary file is removed on error). Calls
    ``report(read, total, filename)`` once at 0 and after each piece. Returns
    the bytes written."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tessera-", suffix=".part")
    written = 0
    try:
        with os.fdopen(fd, "wb") as f:
            if report is not None:
                report(0, total, filename)
            for piece in pieces:
                f.write(piece)
                written += len(piece)
                if report is not None:
                    report(written, total, filename)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    return written


def close_quietly(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        with suppress(Exception):
            close()
