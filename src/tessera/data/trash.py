"""Holding directories for blocks taken out of service: the trash and the quarantine.

A :class:`Bin` is one flat directory of block files, each named
``<block name>.<stamp>``, where the stamp is an integer count of unix seconds:

* in ``trash/`` it is the **deadline** after which the block may be removed for
  good (two-phase delete: until then it can be restored);
* in ``quarantine/`` it is the time the block was found corrupt (kept for an
  operator, never removed automatically).

Block names may themselves contain dots (``<hash>.3``); the stamp is always the
part after the *last* dot, so parsing is unambiguous. Files whose names do not
parse are ignored (never counted, moved or removed).

Functions here are synchronous file-system calls for a worker thread. They do no
locking: the volume calls :meth:`Bin.add` and moves entries out while holding the
lock of the block's name, which makes "find a free file name, then rename"
race-free within the one process that owns the volume.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tessera.data import blockfile
from tessera.model.errors import DataCorruption

_ENTRY_RE = re.compile(r"(?P<name>.+)\.(?P<stamp>[0-9]{1,19})")


def fault(fd: int) -> Exception | None:
    """Why the block open on ``fd`` must be taken out of service, or None if it is good.

    Reads the whole block (:func:`blockfile.verify`). A DataCorruption or an EIO
    (unreadable media) is a fault; any other OSError (a permission, a vanished
    disk) says nothing about the block and is raised.
    """
    try:
        blockfile.verify(fd)
    except DataCorruption as e:
        return e
    except OSError as e:
        if e.errno != errno.EIO:
            raise
        return e
    return None


@dataclass(frozen=True, slots=True)
class Entry:
    """One block file in a bin."""

    name: str
    """The block's name."""
    stamp: int
    """Unix seconds: the deadline (trash) or the time of quarantine."""
    path: Path
    size: int
    """Size of the file in bytes (data plus checksums)."""


class Bin:
    """A directory of ``<block name>.<stamp>`` files (created if missing)."""

    def __init__(self, path: Path, valid_name: re.Pattern[str]) -> None:
        self.path = path
        self._valid = valid_name
        path.mkdir(parents=True, exist_ok=True)

    def add(self, src: Path, name: str, stamp: int) -> Path:
        """Rename ``src`` (on the same file system) into the bin as block ``name``.

        The stamp is raised by whole seconds until the file name is unused, so an
        earlier entry of the same block is never overwritten (for the trash this only
        makes the deadline later, never earlier). The caller holds ``name``'s lock.
        Raises FileNotFoundError when ``src`` does not exist.
        """
        while True:
            dst = self.path / f"{name}.{stamp}"
            if not os.path.lexists(dst):
                os.rename(src, dst)
                return dst
            stamp += 1

    def entries(self, name: str | None = None) -> list[Entry]:
        """Every well-named entry (of block ``name`` only, if given), sorted by
        (name, stamp). Entries removed during the scan are skipped."""
        out = []
        with os.scandir(self.path) as it:
            for de in it:
                m = _ENTRY_RE.fullmatch(de.name)
                if m is None or not self._valid.fullmatch(m["name"]):
                    continue
                if name is not None and m["name"] != name:
                    continue
                try:
                    size = de.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue
                out.append(Entry(m["name"], int(m["stamp"]), Path(de.path), size))
        out.sort(key=lambda e: (e.name, e.stamp))
        return out

    def newest(self, name: str) -> Entry | None:
        """The entry of block ``name`` with the largest stamp, or None."""
        found = self.entries(name)
        return found[-1] if found else None

    def remove_due(self, now: float, lock: Callable[[str], threading.Lock]) -> int:
        """Remove the entries stamped at or before ``now``, each under ``lock(name)``;
        returns how many were removed (trash: the deadline has passed)."""
        removed = 0
        for entry in self.entries():
            if entry.stamp > now:
                continue
            with lock(entry.name):
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:  # restored or removed meanwhile
                    continue
                removed += 1
        return removed

    def usage(self) -> tuple[int, int]:
        """``(entries, bytes)`` in the bin."""
        entries = self.entries()
        return len(entries), sum(e.size for e in entries)

    def names(self) -> list[str]:
        """The block names of the entries, sorted, one per entry."""
        return [e.name for e in self.entries()]
