"""A Qarnot-style bucket over :class:`~tessera.sdk.api.ObjectStorageApi`: add,
get, copy and delete files, and sync a local folder (issue 4).

Names: a *name* is what the caller sees; the *key* is the object's name in the
container. They differ only in a view made by :meth:`Bucket.with_resource_transformation`
(key = prefix + name). Names given to write calls are tidied as Qarnot does:
leading ``/`` stripped, ``//`` collapsed.

Views (Qarnot's "advanced bucket"): :meth:`Bucket.with_filtering`,
:meth:`Bucket.with_resource_transformation` and :meth:`Bucket.with_cache_ttl`
return new ``Bucket`` objects on the same container (nothing changes on the
server). Filtering and transformation prefixes are raw string prefixes, as
in S3 and Qarnot. They decide what the listing calls (:meth:`Bucket.list_files`,
:meth:`Bucket.directory`, :meth:`Bucket.get_all_files`, iteration, and the
remote side of :meth:`Bucket.sync_files`) present: keys starting with the
filtering prefix, and, in a transformed view, only keys under its prefix
(shown without it; Qarnot shows other keys untouched, which would make a sync
through such a view delete the wrong keys).

Sync compares names and ETags; the rules (multipart ETags, server-side copies
for renamed and duplicate content, deletes last) are in :mod:`tessera.sdk.sync`.
"""

from __future__ import annotations

import mimetypes
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import IO, Any

from tessera.sdk.api import ObjectStorageApi
from tessera.sdk.downloads import (
    ProgressArg,
    Reporter,
    UnsafeName,
    close_quietly,
    reporter,
    safe_local_path,
    write_atomically,
)
from tessera.sdk.errors import BadRequest, NoSuchObject
from tessera.sdk.records import ObjectInfo
from tessera.sdk.sync import SyncPlan, file_etags, plan_sync

__all__ = ["Bucket", "UnsafeName", "local_files"]

PAGE = 1000


def tidy_name(name: str) -> str:
    """Qarnot's path sanitising: leading '/' stripped, '//' collapsed.
    Raises BadRequest for an empty result."""
    tidy = re.sub(r"/{2,}", "/", name).lstrip("/")
    if not tidy:
        raise BadRequest(f"empty remote name {name!r}")
    return tidy


def local_files(local_dir: str | os.PathLike[str], remote: str | None = None) -> dict[str, str]:
    """Every regular file under ``local_dir`` as {remote name: local path}, the
    name being the '/'-separated relative path, under ``remote/`` when given.
    Symbolic links (to files or folders) are skipped, never followed."""
    base = os.fspath(local_dir)
    if not os.path.isdir(base):
        raise NotADirectoryError(base)
    prefix = remote.strip("/") + "/" if remote and remote.strip("/") else ""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(base, followlinks=False):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for f in files:
            path = os.path.join(folder, f)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            rel = os.path.relpath(path, base).replace(os.sep, "/")
            found[prefix + rel] = path
    return found


class Bucket:
    """A container seen as a bucket of files. ``create``: create the container
    when missing (an existing one of this account is reused).

    Not thread-safe (the listing cache is unguarded). ``clock`` (monotonic
    seconds) drives the listing cache of :meth:`with_cache_ttl`.
    """

    def __init__(
        self,
        conn: ObjectStorageApi,
        name: str,
        create: bool = True,
        *,
        filtering: str = "",
        strip_prefix: str = "",
        cache_ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.name = name
        self.filtering = filtering
        self.strip_prefix = strip_prefix
        self.cache_ttl = cache_ttl
        self._clock = clock
        self._cache: tuple[float, list[ObjectInfo]] | None = None
        if create:
            conn.container_create(name)

    @property
    def uuid(self) -> str:
        """Qarnot's name for the bucket's name."""
        return self.name

    # ------------------------------------------------------------- views

    def _view(self, **changes: Any) -> Bucket:
        args: dict[str, Any] = {
            "filtering": self.filtering,
            "strip_prefix": self.strip_prefix,
            "cache_ttl": self.cache_ttl,
            "clock": self._clock,
        }
        args.update(changes)
        return Bucket(self.conn, self.name, create=False, **args)

    def with_filtering(self, prefix: str) -> Bucket:
        """A view presenting only keys starting with ``prefix``."""
        return self._view(filtering=prefix)

    def with_resource_transformation(self, prefix: str) -> Bucket:
        """A view where name ``n`` is key ``prefix + n``; only keys under
        ``prefix`` are presented."""
        return self._view(strip_prefix=prefix)

    def with_cache_ttl(self, seconds: float) -> Bucket:
        """A view caching its full listing for ``seconds``; writes made
        through that view drop its cache, other writers' changes show after
        the TTL."""
        if seconds < 0:
            raise BadRequest("cache TTL must not be negative")
        return self._view(cache_ttl=seconds)

    def to_json(self) -> dict[str, Any]:
        """Qarnot's advanced-bucket document (only the settings in use)."""
        doc: dict[str, Any] = {"bucketName": self.name}
        if self.filtering:
            doc["filtering"] = {"prefixFiltering": {"prefix": self.filtering}}
        if self.strip_prefix:
            doc["resourcesTransformation"] = {"stripPrefix": {"prefix": self.strip_prefix}}
        if self.cache_ttl is not None:
            doc["cacheTTLSec"] = self.cache_ttl
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], conn: ObjectStorageApi) -> Bucket:
        """The view ``doc`` (from :meth:`to_json`) describes; the container is not created."""
        try:
            name = str(doc["bucketName"])
            filtering = str(
                (doc.get("filtering") or {}).get("prefixFiltering", {}).get("prefix", "")
            )
            transform = doc.get("resourcesTransformation") or {}
            strip = str(transform.get("stripPrefix", {}).get("prefix", ""))
            ttl = doc.get("cacheTTLSec")
        except (KeyError, AttributeError, TypeError) as e:
            raise BadRequest(f"not a bucket document: {e}") from e
        return cls(
            conn,
            name,
            create=False,
            filtering=filtering,
            strip_prefix=strip,
            cache_ttl=None if ttl is None else float(ttl),
        )

    # ----------------------------------------------------------- naming

    def _key(self, name: str) -> str:
        return self.strip_prefix + tidy_name(name)

    def _shown(self, key: str) -> str | None:
        """The name key ``key`` is presented under, or None when hidden."""
        if not key.startswith(self.filtering) or not key.startswith(self.strip_prefix):
            return None
        return key[len(self.strip_prefix) :] or None

    def _touched(self) -> None:
        self._cache = None

    # ---------------------------------------------------------- listing

    def _list_keys(self) -> list[tuple[str, ObjectInfo]]:
        """(key, object renamed to its presented name) for every presented
        object, in key order."""
        a, b = self.filtering, self.strip_prefix
        if not (a.startswith(b) or b.startswith(a)):
            return []
        prefix = a if len(a) > len(b) else b
        found: list[tuple[str, ObjectInfo]] = []
        marker = ""
        for _ in range(1 << 40):
            page = self.conn.object_list(self.name, prefix=prefix, marker=marker, limit=PAGE)
            for o in page.objects:
                shown = self._shown(o.name)
                if shown is not None and not o.deleted:
                    found.append((o.name, replace(o, name=shown)))
            if not page.truncated:
                break
            marker = page.next_marker
        return found

    def list_files(self) -> list[ObjectInfo]:
        """Every file of the view (``name`` as presented), in key order."""
        now = self._clock()
        if self.cache_ttl is not None and self._cache is not None and self._cache[0] > now:
            return list(self._cache[1])
        files = [info for _, info in self._list_keys()]
        if self.cache_ttl is not None:
            self._cache = (now + self.cache_ttl, files)
        return list(files)

    def directory(self, prefix: str = "") -> list[ObjectInfo]:
        """The files of the view under folder ``prefix`` (whole segments:
        ``a/b`` lists ``a/b/...``, never ``a/bc``; "" lists every file)."""
        folder = prefix.strip("/")
        if not folder:
            return self.list_files()
        return [o for o in self.list_files() if o.name.startswith(folder + "/")]

    def __iter__(self) -> Iterator[str]:
        return iter([o.name for o in self.list_files()])

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = self._key(name)
        if self._shown(key) is None:
            return False
        try:
            return not self.conn.object_head(self.name, key).deleted
        except NoSuchObject:
            return False

    # ----------------------------------------------------------- writes

    def add_file(
        self, local: str | os.PathLike[str] | IO[bytes], remote: str | None = None
    ) -> ObjectInfo:
        """Store a local file (path or binary file object) as ``remote``,
        by default its base name. Atomic: readers see the old or the new
        content. Returns the stored object (its presented name)."""
        if remote is None:
            source = local if isinstance(local, str | os.PathLike) else getattr(local, "name", None)
            if not isinstance(source, str | os.PathLike) or str(source).startswith("<"):
                raise BadRequest("a file object without a name needs a remote name")
            remote = os.path.basename(os.fspath(source))
        key = self._key(remote)
        mime, _ = mimetypes.guess_type(key)
        try:
            info = self.conn.object_create(self.name, local, obj_name=key, mime_type=mime)
        finally:
            self._touched()
        return replace(info, name=remote.lstrip("/"))

    def __setitem__(self, remote: str, local: str | os.PathLike[str] | IO[bytes]) -> None:
        self.add_file(local, remote)

    def add_string(self, string: str, remote: str) -> ObjectInfo:
        """Store ``string`` (UTF-8) as ``remote``."""
        key = self._key(remote)
        try:
            info = self.conn.object_create(
                self.name, data=string.encode(), obj_name=key, mime_type="text/plain"
            )
        finally:
            self._touched()
        return replace(info, name=remote.lstrip("/"))

    def add_directory(self, local_dir: str | os.PathLike[str], remote: str = "") -> list[str]:
        """Store every regular file under ``local_dir`` as ``remote/<relative
        path>`` (symbolic links are skipped). Returns the names stored."""
        stored = []
        for name, path in sorted(local_files(local_dir, remote).items()):
            self.add_file(path, name)
            stored.append(name)
        return stored

    def copy_file(self, source: str, dest: str) -> ObjectInfo:
        """Server-side copy of ``source`` to ``dest`` (no data through the
        client). NoSuchObject when ``source`` is missing."""
        try:
            info = self.conn.object_copy(self.name, self._key(source), self.name, self._key(dest))
        finally:
            self._touched()
        return replace(info, name=dest.lstrip("/"))

    def delete_file(self, remote: str) -> None:
        """Delete ``remote``; NoSuchObject when missing."""
        try:
            self.conn.object_delete(self.name, self._key(remote))
        finally:
            self._touched()

    def __delitem__(self, remote: str) -> None:
        self.delete_file(remote)

    def delete(self) -> None:
        """Delete the whole container (every object and version, whatever
        this view shows), then the container itself."""
        try:
            self.conn.container_delete(self.name, force=True)
        finally:
            self._touched()

    # ------------------------------------------------------------ reads

    def _download(self, name: str, path: str, report: Reporter | None) -> int:
        info, stream = self.conn.object_fetch(self.name, self._key(name))
        try:
            return write_atomically(stream, path, info.size, name, report)
        finally:
            close_quietly(stream)

    def get_file(
        self,
        remote: str,
        local: str | os.PathLike[str] | None = None,
        progress: ProgressArg = False,
    ) -> str:
        """Download ``remote`` to ``local``: by default its base name in the
        current folder; an existing folder (or a path ending with a separator)
        receives the base name. Parent folders are created; the file is
        replaced atomically. ``progress``: True draws a terminal bar, a
        callable is called as ``(read_bytes, total_bytes, filename)``. Returns
        the local path; NoSuchObject when ``remote`` is missing."""
        base = remote.rstrip("/").rsplit("/", 1)[-1]
        if local is None:
            path = safe_local_path(os.getcwd(), base)
        else:
            path = os.fspath(local)
            if os.path.isdir(path) or path.endswith(("/", os.sep)):
                path = safe_local_path(path, base)
        with reporter(progress) as report:
            self._download(remote, path, report)
        return path

    def get_all_files(
        self, output_dir: str | os.PathLike[str], progress: ProgressArg = False
    ) -> list[str]:
        """Download every file of the view under ``output_dir`` at its name's
        relative path. Files with the same ETag are downloaded once and copied
        locally. Every safe file is written first; then, if some remote names
        would land outside ``output_dir`` (``../``, absolute), UnsafeName is
        raised naming them (nothing was written for them). Returns the local
        paths written."""
        written: list[str] = []
        refused: list[str] = []
        first_of: dict[str, str] = {}
        with reporter(progress) as report:
            for info in self.list_files():
                try:
                    path = safe_local_path(output_dir, info.name)
                except UnsafeName:
                    refused.append(info.name)
                    continue
                same = first_of.get(info.etag)
                if same is not None and os.path.getsize(same) == info.size:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    shutil.copyfile(same, path)
                else:
                    self._download(info.name, path, report)
                    first_of.setdefault(info.etag, path)
                written.append(path)
        if refused:
            raise UnsafeName(
                f"refused {len(refused)} remote name(s) leading outside "
                f"{os.fspath(output_dir)}: {', '.join(map(repr, refused))}"
            )
        return written

    # ------------------------------------------------------------- sync

    def sync_directory(
        self, local_dir: str | os.PathLike[str], verbose: bool = False, remote: str | None = None
    ) -> SyncPlan:
        """Make the view hold exactly ``local_dir``'s files (symbolic links
        skipped), under ``remote/`` when given: see :meth:`sync_files`."""
        return self.sync_files(local_files(local_dir, remote), verbose=verbose, remote=remote)

    def sync_files(
        self,
        files: Mapping[str, str | os.PathLike[str]],
        verbose: bool = False,
        remote: str | None = None,
    ) -> SyncPlan:
        """Make the view hold ``files`` ({remote name: local path}): upload new
        or changed files, copy server-side when the content already exists
        remotely (renamed or duplicate files), delete the view's other files
        (only those under folder ``remote`` when given). Not atomic: see
        :mod:`tessera.sdk.sync` for the order, which leaves at worst extra
        files when interrupted. ``verbose`` prints each step. Returns the
        plan that was carried out."""
        local = {tidy_name(name): file_etags(path) for name, path in files.items()}
        pairs = self._list_keys()
        listing = {info.name: info.etag for _, info in pairs}
        key_of = {info.name: key for key, info in pairs}
        plan = plan_sync(local, listing, remote)
        try:
            for src, dst in plan.copies:
                if verbose:
                    print(f"Copy {src} to {dst}")
                self.conn.object_copy(self.name, key_of[src], self.name, self._key(dst))
            for name, path in plan.uploads:
                if verbose:
                    print(f"Upload {path} to {name}")
                self.conn.object_create(
                    self.name,
                    path,
                    obj_name=self._key(name),
                    mime_type=mimetypes.guess_type(name)[0],
                )
            for src, dst in plan.copies_after:
                if verbose:
                    print(f"Copy {src} to {dst}")
                self.conn.object_copy(self.name, self._key(src), self.name, self._key(dst))
            if plan.deletes:
                if verbose:
                    for name in plan.deletes:
                        print(f"Remove {name}")
                keys = [key_of[n] for n in plan.deletes]
                for i in range(0, len(keys), PAGE):
                    self.conn.object_delete_many(self.name, keys[i : i + PAGE])
        finally:
            self._touched()
        return plan

    def __repr__(self) -> str:
        return f"Bucket({self.name!r}, {self.to_json()!r})"
