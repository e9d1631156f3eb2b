"""The manifest scan and compare-and-swap repair, for the healer and the rebalancer.

Both rebuild or move fragments and must then rewrite every stored manifest that
names them. :meth:`ManifestsMixin.scan_manifests` pages through every row with
a manifest: object versions by ``seq``, then upload parts by ``(upload_id,
number)``, each page one or two primary-key range seeks (no ``OFFSET``; rows
without a manifest, such as inline data and delete markers, are passed over
by the seek's filter). Cursors:

* ``o:<seq, 20 digits>`` for a version;
* ``p:<hex of the upload id's UTF-8>.<number, 10 digits>`` for a part.

``o`` sorts before ``p``, fixed-width numbers sort as numbers, and ``.`` sorts
before every hex digit (so a shorter upload id sorts before its extensions,
as in the database's byte order): the string order of cursors is the scan
order. A row that exists for the whole scan is returned exactly once; rows
written during the scan may or may not be.

:meth:`ManifestsMixin.replace_manifest` is a compare-and-swap on the stored
text: the ``UPDATE`` matches only while the manifest is still what the scan
returned (on PostgreSQL the condition is re-checked on the newest row version
after waiting for a concurrent writer), and the reference counts move in the
same transaction, so a concurrent put, delete or completion either sees the new
manifest (and releases its references) or makes the swap fail.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tessera.meta.sql.blocks import RefDelta, apply_refs
from tessera.meta.sql.rows import manifest_refs
from tessera.meta.sql.schema import parts, versions
from tessera.meta.sql.transactions import StoreBase
from tessera.model.cluster import ManifestRow
from tessera.model.errors import InvalidArgument
from tessera.model.manifest import Manifest

_v = versions.c
_p = parts.c
_N: sa.BindParameter[int] = sa.bindparam("n", type_=sa.Integer)
_U: sa.BindParameter[str] = sa.bindparam("u")
_HAS_VERSION_MANIFEST = (_v.manifest.is_not(None), _v.manifest != "[]")
_HAS_PART_MANIFEST = (_p.manifest.is_not(None), _p.manifest != "[]")
_SCAN_VERSIONS = (
    sa.select(_v.seq, _v.manifest)
    .where(_v.seq > sa.bindparam("seq"), *_HAS_VERSION_MANIFEST)
    .order_by(_v.seq)
    .limit(_N)
)
_SCAN_PARTS_OF_UPLOAD = (
    sa.select(_p.upload_id, _p.number, _p.manifest)
    .where(_p.upload_id == _U, _p.number > sa.bindparam("num"), *_HAS_PART_MANIFEST)
    .order_by(_p.number)
    .limit(_N)
)
_SCAN_PARTS_AFTER = (
    sa.select(_p.upload_id, _p.number, _p.manifest)
    .where(_p.upload_id > _U, *_HAS_PART_MANIFEST)
    .order_by(_p.upload_id, _p.number)
    .limit(_N)
)
_SCAN_PARTS_FROM = (
    sa.select(_p.upload_id, _p.number, _p.manifest)
    .where(_p.upload_id >= _U, *_HAS_PART_MANIFEST)
    .order_by(_p.upload_id, _p.number)
    .limit(_N)
)
_OLD: sa.BindParameter[str] = sa.bindparam("old")
_NEW: sa.BindParameter[str] = sa.bindparam("new")
_SWAP_VERSION = (
    sa.update(versions)
    .where(_v.seq == sa.bindparam("seq"), _v.manifest == _OLD)
    .values(manifest=_NEW)
)
_SWAP_PART = (
    sa.update(parts)
    .where(_p.upload_id == _U, _p.number == sa.bindparam("num"), _p.manifest == _OLD)
    .values(manifest=_NEW)
)

_VERSION_CURSOR = re.compile(r"o:([0-9]{20})")
_PART_CURSOR = re.compile(r"p:((?:[0-9a-f]{2})*)\.([0-9]{10})")


def version_cursor(seq: int) -> str:
    return f"o:{seq:020d}"


def part_cursor(upload_id: str, number: int) -> str:
    return f"p:{upload_id.encode().hex()}.{number:010d}"


def parse_cursor(cursor: str) -> tuple[int | None, str, int]:
    """``(seq, "", 0)`` for a version cursor, ``(None, upload_id, number)`` for a
    part cursor. Raises InvalidArgument for anything else."""
    m = _VERSION_CURSOR.fullmatch(cursor)
    if m is not None:
        return int(m[1]), "", 0
    m = _PART_CURSOR.fullmatch(cursor)
    if m is not None:
        try:
            return None, bytes.fromhex(m[1]).decode(), int(m[2])
        except UnicodeDecodeError:
            pass
    raise InvalidArgument("Not a manifest scan cursor.", cursor=cursor)


def _version_rows(rows: Sequence[Any]) -> list[ManifestRow]:
    return [ManifestRow("version", version_cursor(s), Manifest.from_json(t), t) for s, t in rows]


def _part_rows(rows: Sequence[Any]) -> list[ManifestRow]:
    return [ManifestRow("part", part_cursor(u, n), Manifest.from_json(t), t) for u, n, t in rows]


class ManifestsMixin(StoreBase):
    async def scan_manifests(self, after: str | None, limit: int) -> list[ManifestRow]:
        """Up to ``limit`` rows holding a non-empty manifest, in scan order after
        the cursor ``after`` (from the start when None): object versions, then
        upload parts. Rows without blocks (inline data, delete markers) are
        skipped. A page shorter than ``limit`` ends the scan. Each page is
        consistent (one snapshot) and costs index seeks on primary keys. Raises InvalidArgument for a malformed cursor."""
        if limit <= 0:
            return []
        seq, upload_id, number = (0, "", 0) if after is None else parse_cursor(after)
        d = self._dialect

        def tx(conn: Connection) -> list[ManifestRow]:
            found: list[ManifestRow] = []
            if seq is not None:  # still among the versions
                rows = d.rows(conn, _SCAN_VERSIONS, {"seq": seq, "n": limit})
                found += _version_rows(rows)
                if len(found) < limit:
                    rows = d.rows(conn, _SCAN_PARTS_FROM, {"u": "", "n": limit - len(found)})
                    found += _part_rows(rows)
                return found
            params = {"u": upload_id, "num": number, "n": limit}
            found += _part_rows(d.rows(conn, _SCAN_PARTS_OF_UPLOAD, params))
            if len(found) < limit:
                params = {"u": upload_id, "n": limit - len(found)}
                found += _part_rows(d.rows(conn, _SCAN_PARTS_AFTER, params))
            return found

        return await self._db.read(tx, snapshot=True)

    async def replace_manifest(self, row: ManifestRow, manifest: Manifest) -> bool:
        """Compare-and-swap the manifest of the row at ``row.cursor``: store
        ``manifest.to_json()`` only if the stored text still equals ``row.text``,
        and in the same transaction release the references of the old text and
        add those of ``manifest`` (net per block; a count dropping to zero starts
        its garbage delay as any release does). Returns False, changing nothing,
        when the row is gone or its manifest changed since it was read. Raises
        InvalidArgument for a malformed cursor or an empty ``manifest`` (a row
        with data cannot lose all of its blocks this way)."""
        if not manifest.segments:
            raise InvalidArgument("A stored manifest cannot be replaced by an empty one.")
        seq, upload_id, number = parse_cursor(row.cursor)
        new = manifest.to_json()
        if seq is None:
            stmt = _SWAP_PART
            params: dict[str, Any] = {"u": upload_id, "num": number, "old": row.text, "new": new}
        else:
            stmt, params = _SWAP_VERSION, {"seq": seq, "old": row.text, "new": new}
        d = self._dialect

        def tx(conn: Connection) -> bool:
            if d.execute(conn, stmt, params) == 0:
                return False
            delta = RefDelta()
            delta.release(manifest_refs(row.text))
            delta.add(manifest.block_refs())
            apply_refs(conn, d, delta, self._clock.now())
            return True

        return await self._db.write(tx)
