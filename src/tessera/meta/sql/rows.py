"""Conversion between records (``tessera.model``) and table rows.

Column lists are fixed tuples so that rows can be unpacked by position (the
cheapest access SQLAlchemy offers): listings build hundreds of thousands of
records per second. Listing records are built from :data:`VERSION_LISTING`
only: no manifest, no inline data, no headers, user metadata or tags.
Mappers take rows as sequences in the order of the ``*_COLUMNS`` tuples, so
they accept DBAPI tuples and SQLAlchemy rows alike.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tessera.meta.sql.schema import access_keys, accounts, buckets, parts, uploads, versions
from tessera.model.manifest import Manifest
from tessera.model.records import (
    AccessKey,
    Account,
    Bucket,
    ObjectPart,
    ObjectVersion,
    Part,
    Upload,
)

_EMPTY = Manifest()


def insert_statement(table: sa.Table, params: Mapping[str, Any]) -> sa.Insert:
    """An INSERT of exactly the columns named by ``params``' keys, as bind
    parameters of the same names (compiled once, executed with such dicts). ``inline``:
    no pre-executed sequence or RETURNING for the surrogate key."""
    return sa.insert(table).inline().values({name: sa.bindparam(name) for name in params})


def dump_map(value: Mapping[str, str]) -> str | None:
    """Compact JSON text of a dict, None when empty."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if value else None


def load_map(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    loaded: dict[str, str] = json.loads(text)
    return loaded


def load_flat_map(text: str | None) -> dict[str, str]:
    """:func:`load_map` of text written by :func:`dump_map`, with the common
    one-pair map (``{"CRC32":"..."}``, one per listed row) split without the
    JSON parser: three times as fast. Text without a backslash has no escapes,
    so text that splits at ``"`` into exactly ``{``, key, ``:``, value, ``}`` is
    ``{"key":"value"}``; anything else goes through :func:`load_map`."""
    if not text:
        return {}
    p = text.split('"')
    if len(p) == 5 and p[0] == "{" and p[2] == ":" and p[4] == "}" and "\\" not in text:
        return {p[1]: p[3]}
    return load_map(text)


def dump_manifest(manifest: Manifest) -> str | None:
    return manifest.to_json() if manifest.segments else None


class _ManifestCache:
    """Parsed manifests by their stored text, least recently used out first,
    bounded by the total length of the texts kept.

    Why: every GET parses its version's manifest, ~7 us a segment here (JSON,
    then a frozen dataclass per segment and fragment): 240 us for a 256 MiB
    object, a tenth of a 1 MiB range GET; 90 ms for a 100 GB one, for every
    range read of it. Manifests are immutable values, so a parsed one is shared
    as is. Keyed by text, not by version: whatever rewrites a version's
    manifest (repair, rebalancing) writes a new text, which misses. Thread-safe
    (reader threads parse concurrently). Parsed records take ~2.5x their text:
    the default budget holds at most ~14 MiB."""

    def __init__(self, budget: int = 4 << 20, min_size: int = 1024) -> None:
        self._budget = budget
        self._min = min_size
        self._max_entry = budget // 4
        self._used = 0
        self._entries: collections.OrderedDict[str, Manifest] = collections.OrderedDict()
        self._lock = threading.Lock()

    def load(self, text: str) -> Manifest:
        """The manifest of ``text``; texts under ``min_size`` (one or a few
        segments, parsed in microseconds) and over a quarter of the budget are
        parsed every time."""
        if not self._min <= len(text) <= self._max_entry:
            return Manifest.from_json(text)
        with self._lock:
            hit = self._entries.get(text)
            if hit is not None:
                self._entries.move_to_end(text)
                return hit
        manifest = Manifest.from_json(text)
        with self._lock:
            if text not in self._entries:
                self._entries[text] = manifest
                self._used += len(text)
                while self._used > self._budget:
                    old, _ = self._entries.popitem(last=False)
                    self._used -= len(old)
        return manifest


_MANIFESTS = _ManifestCache()


def load_manifest(text: str | None) -> Manifest:
    """The manifest stored as ``text`` (empty for None); see :class:`_ManifestCache`."""
    return _MANIFESTS.load(text) if text else _EMPTY


def manifest_refs(text: str | None) -> list[tuple[str, str]]:
    """``(volume, block)`` pairs named by a stored manifest, with repetition."""
    if not text:
        return []
    return [(f[3], f[1]) for seg in json.loads(text) for f in seg[3]]


# -- accounts and buckets ----------------------------------------------------------------
def account_params(a: Account) -> dict[str, Any]:
    return {
        "id": a.id,
        "display_name": a.display_name,
        "created": a.created,
        "email": a.email,
        "properties": dump_map(a.properties),
    }


def account_from_row(row: Sequence[Any]) -> Account:
    """From a row of :data:`ACCOUNT_COLUMNS`."""
    id_, display_name, created, email, properties = row
    return Account(id_, display_name, created, email, load_map(properties))


def access_key_params(k: AccessKey) -> tuple[str, str, str, float, bool]:
    """Values in :data:`ACCESS_KEY_COLUMNS` order."""
    return (k.access_key_id, k.secret, k.account_id, k.created, k.enabled)


def access_key_from_row(row: Sequence[Any]) -> AccessKey:
    """From a row of :data:`ACCESS_KEY_COLUMNS`."""
    access_key_id, secret, account_id, created, enabled = row
    return AccessKey(access_key_id, secret, account_id, created, bool(enabled))


BUCKET_MUTABLE = ("versioning", "policy", "object_lock", "tags", "config")


def bucket_params(b: Bucket) -> dict[str, Any]:
    return {
        "name": b.name,
        "owner": b.owner,
        "created": b.created,
        "region": b.region,
        "versioning": b.versioning,
        "policy": b.policy,
        "object_lock": b.object_lock,
        "tags": dump_map(b.tags),
        "config": dump_map(b.config),
    }


def bucket_from_row(row: Sequence[Any]) -> Bucket:
    """From a row of :data:`BUCKET_COLUMNS`."""
    name, owner, created, region, versioning, policy, object_lock, tags, config = row
    return Bucket(
        name=name,
        owner=owner,
        created=created,
        region=region,
        versioning=versioning,
        policy=policy,
        object_lock=bool(object_lock),
        tags=load_map(tags),
        config=load_map(config),
    )


ACCOUNT_COLUMNS = tuple(accounts.c)
ACCESS_KEY_COLUMNS = tuple(access_keys.c)
BUCKET_COLUMNS = tuple(buckets.c)

# -- versions ------------------------------------------------------------------------------
_v = versions.c
VERSION_LISTING: tuple[sa.ColumnElement[Any], ...] = (
    _v.key,
    _v.version_id,
    _v.is_latest,
    _v.delete_marker,
    _v.last_modified,
    _v.size,
    _v.etag,
    _v.storage_class,
    _v.owner,
    _v.content_type,
    _v.checksums,
)
"""Columns of listing records, in :func:`version_from_listing_row` order."""

VERSION_FULL: tuple[sa.ColumnElement[Any], ...] = (
    *VERSION_LISTING,
    _v.parts,
    _v.headers,
    _v.user_metadata,
    _v.tags,
    _v.manifest,
    _v.inline,
    _v.acl,
    _v.upload_id,
)
"""Columns of full records, in :func:`version_from_row` order."""


def dump_parts(parts: tuple[ObjectPart, ...]) -> str | None:
    """``[[number, size], [number, size, {algo: checksum}], ...]``, None when empty."""
    if not parts:
        return None
    return json.dumps(
        [[p.number, p.size, p.checksums] if p.checksums else [p.number, p.size] for p in parts],
        separators=(",", ":"),
    )


def load_parts(text: str | None) -> tuple[ObjectPart, ...]:
    if not text:
        return ()
    return tuple(
        ObjectPart(item[0], item[1], item[2] if len(item) > 2 else {}) for item in json.loads(text)
    )


def version_params(v: ObjectVersion) -> dict[str, Any]:
    """Insert parameters of a new (latest) version."""
    return {
        "bucket": v.bucket,
        "key": v.key,
        "version_id": v.version_id,
        "is_latest": True,
        "delete_marker": v.delete_marker,
        "last_modified": v.last_modified,
        "size": v.size,
        "etag": v.etag,
        "storage_class": v.storage_class,
        "owner": v.owner,
        "content_type": v.content_type,
        "checksums": dump_map(v.checksums),
        "parts": dump_parts(v.parts),
        "headers": dump_map(v.headers),
        "user_metadata": dump_map(v.user_metadata),
        "tags": dump_map(v.tags),
        "manifest": dump_manifest(v.manifest),
        "inline": v.inline,
        "acl": v.acl,
        "upload_id": v.upload_id or None,
    }


VERSION_LIVE: tuple[sa.ColumnElement[Any], ...] = (
    _v.key,
    _v.version_id,
    _v.last_modified,
    _v.size,
    _v.etag,
    _v.storage_class,
    _v.owner,
    _v.content_type,
    _v.checksums,
)
"""Columns of :meth:`list_latest` records (all latest, none a delete marker),
in :func:`live_version_from_row` order."""

_LISTING_FIELDS = (
    "bucket",
    "key",
    "version_id",
    "last_modified",
    "size",
    "etag",
    "delete_marker",
    "is_latest",
    "content_type",
    "headers",
    "user_metadata",
    "tags",
    "checksums",
    "storage_class",
    "owner",
    "inline",
    "manifest",
    "parts",
    "acl",
    "upload_id",
)


class _Shell:
    """Same slots as ObjectVersion, a plain ``__init__``: a listing record is
    built as a shell, then its ``__class__`` is set to ObjectVersion (allowed
    between classes of identical slot layout). 2.9x faster than building it
    through the frozen dataclass ``__init__``, which sets each of 20 fields with
    ``object.__setattr__``; the result is the same record (ObjectVersion has no
    ``__post_init__``), which :data:`_FAST` checks at import."""

    __slots__ = _LISTING_FIELDS

    def __init__(
        self,
        bucket: str,
        key: str,
        version_id: str,
        last_modified: float,
        size: int,
        etag: str,
        delete_marker: bool,
        is_latest: bool,
        content_type: str,
        checksums: dict[str, str],
        storage_class: str,
        owner: str,
    ) -> None:
        self.bucket = bucket
        self.key = key
        self.version_id = version_id
        self.last_modified = last_modified
        self.size = size
        self.etag = etag
        self.delete_marker = delete_marker
        self.is_latest = is_latest
        self.content_type = content_type
        self.headers: dict[str, str] = {}
        self.user_metadata: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.checksums = checksums
        self.storage_class = storage_class
        self.owner = owner
        self.inline = None
        self.manifest = _EMPTY
        self.parts = ()
        self.acl = "private"
        self.upload_id = ""


_FAST = (
    tuple(f.name for f in dataclasses.fields(ObjectVersion)) == _LISTING_FIELDS
    and ObjectVersion.__slots__ == _LISTING_FIELDS
    and not hasattr(ObjectVersion, "__post_init__")
    and ObjectVersion.__bases__ == (object,)
)
"""Whether listing records may be built as :class:`_Shell` objects. Any change
to ObjectVersion's fields, slots or bases switches back to the constructor."""


def _listing_record(
    bucket: str,
    key: str,
    vid: str,
    mtime: float,
    size: int,
    etag: str,
    marker: bool,
    latest: bool,
    ctype: str,
    sums: dict[str, str],
    sclass: str,
    owner: str,
) -> ObjectVersion:
    if not _FAST:
        return ObjectVersion(bucket, key, vid, mtime, size, etag, marker, latest, ctype,
                             {}, {}, {}, sums, sclass, owner, None, _EMPTY, (), "private", "")  # fmt: skip
    o: Any = _Shell(bucket, key, vid, mtime, size, etag, marker, latest, ctype, sums, sclass, owner)
    o.__class__ = ObjectVersion
    return o


def version_from_listing_row(bucket: str, row: Sequence[Any]) -> ObjectVersion:
    """From a row of :data:`VERSION_LISTING`."""
    key, vid, latest, marker, mtime, size, etag, sclass, owner, ctype, sums = row
    return _listing_record(bucket, key, vid, mtime, size, etag, bool(marker), bool(latest),
                           ctype, load_flat_map(sums), sclass, owner)  # fmt: skip


def live_version_from_row(bucket: str, row: Sequence[Any]) -> ObjectVersion:
    """From a row of :data:`VERSION_LIVE`."""
    key, vid, mtime, size, etag, sclass, owner, ctype, sums = row
    return _listing_record(bucket, key, vid, mtime, size, etag, False, True, ctype,
                           load_flat_map(sums), sclass, owner)  # fmt: skip


def version_from_row(bucket: str, row: Sequence[Any]) -> ObjectVersion:
    (key, vid, latest, marker, mtime, size, etag, sclass, owner, ctype, sums) = row[:11]
    parts, headers, meta, tags, manifest, inline, acl, upload_id = row[11:]
    return ObjectVersion(
        bucket=bucket,
        key=key,
        version_id=vid,
        last_modified=mtime,
        size=size,
        etag=etag,
        delete_marker=bool(marker),
        is_latest=bool(latest),
        content_type=ctype,
        headers=load_map(headers),
        user_metadata=load_map(meta),
        tags=load_map(tags),
        checksums=load_map(sums),
        storage_class=sclass,
        owner=owner,
        inline=None if inline is None else bytes(inline),
        manifest=load_manifest(manifest),
        parts=load_parts(parts),
        acl=acl,
        upload_id=upload_id or "",
    )


# -- uploads and parts ---------------------------------------------------------------------
UPLOAD_COLUMNS = tuple(c for c in uploads.c if c.name != "seq")


def upload_params(u: Upload) -> dict[str, Any]:
    return {
        "upload_id": u.upload_id,
        "bucket": u.bucket,
        "key": u.key,
        "initiated": u.initiated,
        "owner": u.owner,
        "content_type": u.content_type,
        "storage_class": u.storage_class,
        "policy": u.policy,
        "checksum_algorithm": u.checksum_algorithm,
        "checksum_type": u.checksum_type,
        "headers": dump_map(u.headers),
        "user_metadata": dump_map(u.user_metadata),
        "tags": dump_map(u.tags),
        "acl": u.acl,
    }


def upload_from_row(row: Sequence[Any]) -> Upload:
    """From a row of :data:`UPLOAD_COLUMNS`."""
    upload_id, bucket, key, initiated, owner, ctype, sclass, policy, algo, ctype2 = row[:10]
    headers, meta, tags, acl = row[10:]
    return Upload(
        bucket=bucket,
        key=key,
        upload_id=upload_id,
        initiated=initiated,
        owner=owner,
        content_type=ctype,
        headers=load_map(headers),
        user_metadata=load_map(meta),
        tags=load_map(tags),
        storage_class=sclass,
        policy=policy,
        checksum_algorithm=algo,
        checksum_type=ctype2,
        acl=acl,
    )


PART_COLUMNS = tuple(parts.c)


def part_params(p: Part) -> dict[str, Any]:
    return {
        "upload_id": p.upload_id,
        "number": p.number,
        "size": p.size,
        "etag": p.etag,
        "last_modified": p.last_modified,
        "md5": p.md5,
        "checksums": dump_map(p.checksums),
        "manifest": dump_manifest(p.manifest),
        "inline": p.inline,
    }


def part_from_row(row: Sequence[Any]) -> Part:
    """From a row of :data:`PART_COLUMNS`."""
    upload_id, number, size, etag, mtime, md5, checksums, manifest, inline = row
    return Part(
        upload_id=upload_id,
        number=number,
        size=size,
        etag=etag,
        last_modified=mtime,
        md5=bytes(md5),
        checksums=load_map(checksums),
        inline=None if inline is None else bytes(inline),
        manifest=load_manifest(manifest),
    )
