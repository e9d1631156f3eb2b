"""The directory-sync planner of :class:`~tessera.sdk.bucket.Bucket`: S3-style
ETags of local files and a pure plan (copies, uploads, deletes) from two
listings.

Theory of operation (Qarnot's rule set, made safe to interrupt):

* A local file and a remote object hold the same content when the object's
  ETag is one of the file's ETags: the plain MD5 (hex) of the file, or the
  multipart ETag ``md5(md5(part1) || md5(part2) || ...)-N`` over
  :data:`PART_SIZE` parts. The remote backend uploads bodies of at least
  :data:`MULTIPART_THRESHOLD` bytes in parts of :data:`PART_SIZE` (both are
  :mod:`tessera.sdk.remote`'s own constants, imported here), so a file it
  uploaded carries the multipart form; a backend that stores large bodies
  whole (or a server-side copy that recomputes the ETag) carries the plain one.
  Accepting both means neither kind of backend makes sync re-upload.
* Names: ``local`` maps remote name -> file; every remote name matching its
  file is left alone. Remote objects not in ``local`` are *extras*, deleted
  when they are within ``scope`` (a whole-segment prefix: scope ``data``
  covers ``data/x``, never ``data2/x``; None covers everything).
* A name to write (new, or changed content) is filled, in order of
  preference, by a server-side copy from a *stable* remote object with that
  content, else by an upload, else (a second local file with the same content
  as one being uploaded) by a copy from the uploaded name. Stable objects are
  those the plan never writes: unchanged names and extras (also extras outside
  the scope). Copying only from them keeps the plan order-independent inside
  a phase: no copy reads a name another step overwrites (a swap of two files
  is two uploads, never a copy from a half-updated name).
* The plan runs as: copies from stable objects, uploads, copies from
  uploaded names, deletes. Deletes come last, so an interrupted sync leaves at
  worst extra objects, never a missing one; running it again finishes it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tessera.sdk.remote import MULTIPART_THRESHOLD, PART_SIZE

__all__ = [
    "MULTIPART_THRESHOLD",
    "PART_SIZE",
    "LocalFile",
    "SyncPlan",
    "file_etags",
    "in_scope",
    "multipart_etag",
    "plan_sync",
    "s3_etag",
]

READ_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A local file as the planner sees it."""

    path: str
    size: int
    md5: str
    """Hex MD5 of the whole file: the content's identity."""
    multipart: str
    """Multipart ETag over :data:`PART_SIZE` parts ("" for an empty file)."""

    @property
    def etag(self) -> str:
        """The ETag the remote backend gives this file on upload."""
        return self.multipart if self.size >= MULTIPART_THRESHOLD else self.md5

    def matches(self, etag: str) -> bool:
        """True when a remote object with ``etag`` holds this file's content."""
        etag = etag.strip('"')
        return etag == self.md5 or (bool(self.multipart) and etag == self.multipart)


def multipart_etag(part_digests: Iterable[bytes]) -> str:
    """The S3 multipart ETag from the binary MD5 digests of the parts."""
    digests = list(part_digests)
    joined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
    return f"{joined}-{len(digests)}"


def file_etags(path: str | os.PathLike[str], part_size: int = PART_SIZE) -> LocalFile:
    """Hash ``path`` once: its plain MD5 and its multipart ETag over
    ``part_size`` parts. Raises OSError when it cannot be read."""
    whole = hashlib.md5(usedforsecurity=False)
    parts: list[bytes] = []
    part = hashlib.md5(usedforsecurity=False)
    in_part = size = 0
    with open(path, "rb") as f:
        while piece := f.read(min(READ_SIZE, part_size - in_part)):
            whole.update(piece)
            part.update(piece)
            in_part += len(piece)
            size += len(piece)
            if in_part == part_size:
                parts.append(part.digest())
                part, in_part = hashlib.md5(usedforsecurity=False), 0
    if in_part:
        parts.append(part.digest())
    return LocalFile(
        os.fspath(path), size, whole.hexdigest(), multipart_etag(parts) if parts else ""
    )


def s3_etag(path: str | os.PathLike[str]) -> str:
    """The ETag S3 (and Tessera's remote backend) gives ``path`` on upload:
    plain hex MD5 below :data:`MULTIPART_THRESHOLD` bytes, else the multipart
    ETag over :data:`PART_SIZE` parts."""
    return file_etags(path).etag


def in_scope(name: str, scope: str | None) -> bool:
    """True when ``name`` is ``scope`` or under it as a folder (whole segments)."""
    if scope is None:
        return True
    scope = scope.strip("/")
    return not scope or name == scope or name.startswith(scope + "/")


@dataclass(slots=True)
class SyncPlan:
    """What a sync does, in execution order (see the module docstring)."""

    copies: list[tuple[str, str]] = field(default_factory=list)
    """(source, destination): server-side copies from stable remote objects."""
    uploads: list[tuple[str, str]] = field(default_factory=list)
    """(remote name, local path)."""
    copies_after: list[tuple[str, str]] = field(default_factory=list)
    """(uploaded name, destination): duplicates of uploaded content."""
    deletes: list[str] = field(default_factory=list)
    """Remote extras within the scope."""
    unchanged: list[str] = field(default_factory=list)
    upload_bytes: int = 0
    """Bytes the uploads send."""

    @property
    def empty(self) -> bool:
        """True when the remote side already matches."""
        return not (self.copies or self.uploads or self.copies_after or self.deletes)


def plan_sync(
    local: Mapping[str, LocalFile], remote: Mapping[str, str], scope: str | None = None
) -> SyncPlan:
    """Plan making the remote side hold ``local`` (remote name -> file).

    ``remote`` maps every remote name the caller can see to its ETag (quoted
    or not); it is the source of copies, and its names within ``scope`` that
    are not in ``local`` are deleted. Pure: reads nothing, writes nothing.
    Every list of the plan is sorted by destination name.
    """
    plan = SyncPlan()
    to_write: list[str] = []
    for name in sorted(local):
        etag = remote.get(name)
        if etag is not None and local[name].matches(etag):
            plan.unchanged.append(name)
        else:
            to_write.append(name)
    extras = sorted(set(remote) - set(local))
    by_etag: dict[str, str] = {}
    """ETag (unquoted) -> the first stable name holding it."""
    for name in sorted(plan.unchanged + extras):
        by_etag.setdefault(remote[name].strip('"'), name)
    uploaded: dict[str, str] = {}
    """Content md5 -> the name it is uploaded to."""
    for name in to_write:
        f = local[name]
        source = by_etag.get(f.md5) or (by_etag.get(f.multipart) if f.multipart else None)
        if source is not None:
            plan.copies.append((source, name))
        elif f.md5 in uploaded:
            plan.copies_after.append((uploaded[f.md5], name))
        else:
            uploaded[f.md5] = name
            plan.uploads.append((name, f.path))
            plan.upload_bytes += f.size
    plan.deletes = [name for name in extras if in_scope(name, scope)]
    return plan
