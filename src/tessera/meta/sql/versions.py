"""Object versions: put (with ``null``-version replacement), get, delete with
latest promotion, in-place attribute updates, and the two listings.

Statements per put: a ``DELETE ... RETURNING`` of a row with the same version
id (the replaced ``null`` version; an index seek that usually finds nothing),
an ``UPDATE`` clearing ``is_latest`` on the row with the highest ``seq`` of the
key (a no-op when the deleted row was the latest), the ``INSERT``, and one
reference-count upsert. None of the first three depends on another's result,
so PostgreSQL gets them (and the key lock) in one pipelined round trip. A
missing bucket is detected by the foreign key on the ``INSERT`` rather than by
a query beforehand.

A put with a guard (conditional write) first takes the key lock and reads the
latest row (listing columns) in one more round trip, calls the guard, then
proceeds as above. A guarded delete calls its guard on the row the ``DELETE
... RETURNING`` removed; when the guard raises, the transaction rolls back.

Listings select only listing columns (:data:`~tessera.meta.sql.rows.VERSION_LISTING`,
``VERSION_LIVE``: no manifest, inline data, headers, metadata or tags) and
bound keys to a range computed in Python (``prefix <= key < successor(prefix)``,
with the marker as lower bound when it is past the prefix), so each page is one
index range seek: ``ux_versions_live`` for live objects, ``ix_versions_order``
(already in final order) for versions.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tessera.meta.sql.blocks import RefDelta, apply_refs
from tessera.meta.sql.dialects import Dialect
from tessera.meta.sql.rows import (
    VERSION_FULL,
    VERSION_LISTING,
    VERSION_LIVE,
    dump_map,
    insert_statement,
    live_version_from_row,
    version_from_listing_row,
    version_from_row,
    version_params,
)
from tessera.meta.sql.schema import versions
from tessera.meta.sql.transactions import StoreBase
from tessera.meta.store import LatestGuard, VersionGuard
from tessera.model.errors import BucketNotFound, ObjectNotFound, VersionNotFound
from tessera.model.records import ObjectVersion

_v = versions.c
_B: sa.BindParameter[str] = sa.bindparam("b")
_K: sa.BindParameter[str] = sa.bindparam("k")
_V: sa.BindParameter[str] = sa.bindparam("vid")
_N: sa.BindParameter[int] = sa.bindparam("n", type_=sa.Integer)
_LO: sa.BindParameter[str] = sa.bindparam("lo")
_HI: sa.BindParameter[str] = sa.bindparam("hi")

_DELETE_NAMED = (
    sa.delete(versions)
    .where(_v.bucket == _B, _v.key == _K, _v.version_id == _V)
    .returning(*VERSION_FULL)
)
_MAX_SEQ = sa.select(sa.func.max(_v.seq)).where(_v.bucket == _B, _v.key == _K).scalar_subquery()
_DEMOTE = sa.update(versions).where(_v.seq == _MAX_SEQ, _v.is_latest).values(is_latest=False)
_PROMOTE = (
    sa.update(versions).where(_v.seq == _MAX_SEQ, sa.not_(_v.is_latest)).values(is_latest=True)
)
_INSERT = insert_statement(versions, version_params(ObjectVersion("", "", "", 0.0)))
_GET_LATEST = (
    sa.select(*VERSION_FULL).where(_v.bucket == _B, _v.key == _K).order_by(_v.seq.desc()).limit(1)
)
_GET_LATEST_LISTING = (
    sa.select(*VERSION_LISTING)
    .where(_v.bucket == _B, _v.key == _K)
    .order_by(_v.seq.desc())
    .limit(1)
)
_GET_NAMED = sa.select(*VERSION_FULL).where(_v.bucket == _B, _v.key == _K, _v.version_id == _V)
_SEQ_OF = sa.select(_v.seq).where(_v.bucket == _B, _v.key == _K, _v.version_id == _V)
_UPDATE_ATTRS = (
    sa.update(versions)
    .where(_v.bucket == _B, _v.key == _K, _v.version_id == _V)
    .values(
        tags=sa.bindparam("tags"),
        user_metadata=sa.bindparam("user_metadata"),
        headers=sa.bindparam("headers"),
        content_type=sa.bindparam("content_type"),
        checksums=sa.bindparam("checksums"),
        acl=sa.bindparam("acl"),
    )
)
_TOUCH = (
    sa.update(versions)
    .where(_v.bucket == _B, _v.key == _K, _v.version_id == _V)
    .values(last_modified=sa.bindparam("mtime"))
)
_DROP_DATA = (
    sa.update(versions)
    .where(_v.bucket == _B, _v.key == _K, _v.version_id == _V)
    .values(manifest=None, inline=None)
)
_LIVE = (_v.is_latest, sa.not_(_v.delete_marker))
_COUNT = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(_v.size), 0)).where(
    _v.bucket == _B, *_LIVE
)
_OLDER_OF_KEY = (
    sa.select(*VERSION_LISTING)
    .where(_v.bucket == _B, _v.key == _K, _v.seq < sa.bindparam("seq"))
    .order_by(_v.seq.desc())
    .limit(_N)
)


def prefix_successor(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix``
    (code-point order, which is UTF-8 byte order), or None when unbounded."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:  # surrogates cannot be encoded
                nxt = 0xE000
            return "".join(chars) + chr(nxt)
    return None


def key_bounds(prefix: str, after: str | None) -> tuple[str | None, bool, str | None]:
    """``key starts with prefix and key > after`` as ``(lower, inclusive, upper)``:
    one lower and at most one upper bound (two lower bounds could make a planner
    seek on the weaker one and scan the skipped keys)."""
    if after is not None and after >= prefix:
        return after, False, prefix_successor(prefix)
    return (prefix or None), True, prefix_successor(prefix)


@functools.cache
def _listing_stmt(live: bool, lower: str, upper: bool) -> sa.Select[Any]:
    """Listing statement for one shape of key range (``lower``: ``""``, ``">"``
    or ``">="``); cached so each shape is compiled once."""
    conds: list[sa.ColumnElement[bool]] = [_v.bucket == _B]
    if live:
        conds += _LIVE
    if lower:
        conds.append(_v.key > _LO if lower == ">" else _v.key >= _LO)
    if upper:
        conds.append(_v.key < _HI)
    order = (_v.key,) if live else (_v.key, _v.seq.desc())
    columns = VERSION_LIVE if live else VERSION_LISTING
    return sa.select(*columns).where(*conds).order_by(*order).limit(_N)


def listing(
    live: bool, bucket: str, prefix: str, after: str | None, limit: int
) -> tuple[sa.Select[Any], dict[str, Any]]:
    """The statement and parameters of one listing page."""
    lower, inclusive, upper = key_bounds(prefix, after)
    shape = "" if lower is None else (">=" if inclusive else ">")
    stmt = _listing_stmt(live, shape, upper is not None)
    return stmt, {"b": bucket, "lo": lower, "hi": upper, "n": limit}


def check_latest(
    conn: Connection, dialect: Dialect, bucket: str, key: str, guard: LatestGuard
) -> None:
    """Lock the key and call ``guard`` with its latest version (a listing
    record) or None; the lock is held until the transaction ends."""
    with dialect.pipeline(conn):
        dialect.lock(conn, "key", bucket, key)
        latest = dialect.send(conn, _GET_LATEST_LISTING, {"b": bucket, "k": key})
    row = latest.first()
    guard(None if row is None else version_from_listing_row(bucket, row))


def store_version(
    conn: Connection,
    dialect: Dialect,
    version: ObjectVersion,
    delta: RefDelta,
    guard: LatestGuard | None = None,
) -> ObjectVersion | None:
    """The body of :meth:`VersionsMixin.put_version` inside a caller's
    transaction: reference changes go to ``delta`` (applied by the caller).

    The statements do not depend on each other's results (``_DEMOTE`` after
    the ``DELETE`` is a no-op when the deleted row was the latest), so on
    PostgreSQL they go out as one pipeline: one round trip, not four. A
    ``guard`` costs one round trip more (:func:`check_latest`)."""
    keys = {"b": version.bucket, "k": version.key}
    if guard is not None:
        check_latest(conn, dialect, version.bucket, version.key, guard)
    try:
        with dialect.pipeline(conn):
            if guard is None:  # otherwise already held
                dialect.lock(conn, "key", version.bucket, version.key)
            deleted = dialect.send(conn, _DELETE_NAMED, {**keys, "vid": version.version_id})
            dialect.send(conn, _DEMOTE, keys)
            dialect.send(conn, _INSERT, version_params(version))
    except IntegrityError as e:
        if dialect.is_foreign_key_violation(e):
            raise BucketNotFound(
                "The specified bucket does not exist", bucket=version.bucket
            ) from None
        raise
    row = deleted.first()
    replaced = None if row is None else version_from_row(version.bucket, row)
    delta.add(version.manifest.block_refs())
    if replaced is not None:
        delta.release(replaced.manifest.block_refs())
    return replaced


SHORT_SEEK = 16
"""Listing seeks of at most this many rows run as point lookups (see
:meth:`VersionsMixin.list_latest`)."""


class VersionsMixin(StoreBase):
    async def put_version(
        self, version: ObjectVersion, guard: LatestGuard | None = None
    ) -> ObjectVersion | None:
        """Store ``version`` as the newest, latest version of its key; return the
        version of the same id it replaced, if any. Raises BucketNotFound, or
        what ``guard`` raises when called with the latest version (nothing stored)."""

        def tx(conn: Connection) -> ObjectVersion | None:
            delta = RefDelta()
            replaced = store_version(conn, self._dialect, version, delta, guard)
            apply_refs(conn, self._dialect, delta, self._clock.now())
            return replaced

        return await self._db.write(tx)

    async def get_version(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> ObjectVersion:
        """The named version, or the latest (possibly a delete marker). Raises
        ObjectNotFound (no version at all) or VersionNotFound (named, missing)."""
        if version_id is None:
            stmt, params = _GET_LATEST, {"b": bucket, "k": key}
        else:
            stmt, params = _GET_NAMED, {"b": bucket, "k": key, "vid": version_id}
        first = self._dialect.first

        def tx(conn: Connection) -> Any:
            return first(conn, stmt, params)

        row = await self._db.lookup(tx)
        if row is None:
            if version_id is None:
                raise ObjectNotFound("The specified key does not exist.", bucket=bucket, key=key)
            raise VersionNotFound(
                "The specified version does not exist.",
                bucket=bucket,
                key=key,
                version_id=version_id,
            )
        return version_from_row(bucket, row)

    async def delete_version(
        self, bucket: str, key: str, version_id: str, guard: VersionGuard | None = None
    ) -> ObjectVersion:
        """Remove one version for good, release its references, promote the next
        newest version to latest when the removed one was latest. Returns the
        removed record (``is_latest`` as it was). Raises VersionNotFound, or what
        ``guard`` raises when called with the removed record (then rolled back)."""
        d = self._dialect

        def tx(conn: Connection) -> ObjectVersion:
            keys = {"b": bucket, "k": key}
            with d.pipeline(conn):  # _PROMOTE is a no-op unless the latest went
                d.lock(conn, "key", bucket, key)
                deleted = d.send(conn, _DELETE_NAMED, {**keys, "vid": version_id})
                d.send(conn, _PROMOTE, keys)
            row = deleted.first()
            if row is None:
                raise VersionNotFound(
                    "The specified version does not exist.",
                    bucket=bucket,
                    key=key,
                    version_id=version_id,
                )
            removed = version_from_row(bucket, row)
            if guard is not None:
                guard(removed)
            delta = RefDelta()
            delta.release(removed.manifest.block_refs())
            apply_refs(conn, d, delta, self._clock.now())
            return removed

        return await self._db.write(tx)

    async def update_version(self, version: ObjectVersion) -> None:
        """Replace tags, user metadata, headers, content type, checksums and ACL of
        an existing version in place. Raises VersionNotFound."""
        params = {
            "b": version.bucket,
            "k": version.key,
            "vid": version.version_id,
            "tags": dump_map(version.tags),
            "user_metadata": dump_map(version.user_metadata),
            "headers": dump_map(version.headers),
            "content_type": version.content_type,
            "checksums": dump_map(version.checksums),
            "acl": version.acl,
        }
        execute = self._dialect.execute

        def tx(conn: Connection) -> int:
            return execute(conn, _UPDATE_ATTRS, params)

        if await self._db.write(tx) == 0:
            raise VersionNotFound(
                "The specified version does not exist.",
                bucket=version.bucket,
                key=version.key,
                version_id=version.version_id,
            )

    async def touch_version(
        self, bucket: str, key: str, version_id: str, last_modified: float
    ) -> None:
        """Set ``last_modified`` of an existing version in place. Raises VersionNotFound."""
        params = {"b": bucket, "k": key, "vid": version_id, "mtime": last_modified}
        execute = self._dialect.execute

        def tx(conn: Connection) -> int:
            return execute(conn, _TOUCH, params)

        if await self._db.write(tx) == 0:
            raise VersionNotFound(
                "The specified version does not exist.",
                bucket=bucket,
                key=key,
                version_id=version_id,
            )

    async def drain_version(self, bucket: str, key: str, version_id: str) -> ObjectVersion:
        """Clear the inline data and manifest of an existing version and release
        its references, under the key lock; returns the record as it was before.
        Raises VersionNotFound."""
        d = self._dialect
        keys = {"b": bucket, "k": key, "vid": version_id}

        def tx(conn: Connection) -> ObjectVersion:
            d.lock(conn, "key", bucket, key)
            row = d.first(conn, _GET_NAMED, keys)
            if row is None:
                raise VersionNotFound(
                    "The specified version does not exist.",
                    bucket=bucket,
                    key=key,
                    version_id=version_id,
                )
            before = version_from_row(bucket, row)
            d.execute(conn, _DROP_DATA, keys)
            delta = RefDelta()
            delta.release(before.manifest.block_refs())
            apply_refs(conn, d, delta, self._clock.now())
            return before

        return await self._db.write(tx)

    async def list_latest(
        self, bucket: str, prefix: str = "", after: str | None = None, limit: int = 1000
    ) -> list[ObjectVersion]:
        """Live latest versions (no delete markers) with key starting with
        ``prefix`` and greater than ``after``, ascending, at most ``limit``.
        One range seek on ``ux_versions_live``; records carry listing columns only.
        A seek for a few rows (a delimiter listing skipping past a common prefix
        asks for two) costs about what a point lookup does, so it runs as one
        (:meth:`Runner.lookup`: no hand-off to a reader thread where that costs
        more than the seek)."""
        if limit <= 0:
            return []
        stmt, params = listing(True, bucket, prefix, after, limit)
        rows = self._dialect.rows

        def tx(conn: Connection) -> list[ObjectVersion]:
            return [live_version_from_row(bucket, r) for r in rows(conn, stmt, params)]

        if limit <= SHORT_SEEK:
            return await self._db.lookup(tx)
        return await self._db.read(tx)

    async def list_versions(
        self,
        bucket: str,
        prefix: str = "",
        after_key: str | None = None,
        after_version: str | None = None,
        limit: int = 1000,
    ) -> list[ObjectVersion]:
        """Versions and delete markers by key ascending, newest first within a
        key, from the position described in the protocol; listing columns only.
        A short seek from a key (one statement) runs as a point lookup, as in
        :meth:`list_latest`; resuming inside a key's versions takes two
        statements, read from one snapshot."""
        if limit <= 0:
            return []
        d = self._dialect

        def tx(conn: Connection) -> list[ObjectVersion]:
            found: list[Any] = []
            if after_key is not None and after_version is not None and after_key.startswith(prefix):
                keys = {"b": bucket, "k": after_key}
                seq = d.scalar(conn, _SEQ_OF, {**keys, "vid": after_version})
                if seq is not None:
                    found = d.rows(conn, _OLDER_OF_KEY, {**keys, "seq": seq, "n": limit})
            if len(found) < limit:
                stmt, params = listing(False, bucket, prefix, after_key, limit - len(found))
                found += d.rows(conn, stmt, params)
            return [version_from_listing_row(bucket, r) for r in found]

        if after_version is None and limit <= SHORT_SEEK:  # one short seek
            return await self._db.lookup(tx)
        return await self._db.read(tx, snapshot=True)

    async def count_objects(self, bucket: str) -> tuple[int, int]:
        """(number of live latest versions, their total bytes): an aggregate over
        ``ux_versions_live``, proportional to the bucket's object count."""
        first = self._dialect.first

        def tx(conn: Connection) -> tuple[int, int]:
            row = first(conn, _COUNT, {"b": bucket})
            return int(row[0]), int(row[1])

        return await self._db.read(tx)
