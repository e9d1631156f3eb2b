"""Multipart uploads and their parts.

Concurrency (PostgreSQL; on SQLite the single writer serialises everything):
``put_part`` holds a ``FOR SHARE`` lock on its upload row and an advisory lock
on ``(upload, number)``; ``complete_upload`` and ``abort_upload`` take the
upload row ``FOR UPDATE``. So a part is either stored before completion/abort
reads the parts (and is consumed or released by it) or fails with
UploadNotFound afterwards: no part, and no reference, is ever orphaned.
Parts are removed with ``DELETE ... RETURNING`` so that exactly the rows
removed have their references released.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tessera.meta.sql.blocks import RefDelta, apply_refs
from tessera.meta.sql.rows import (
    PART_COLUMNS,
    UPLOAD_COLUMNS,
    VERSION_FULL,
    insert_statement,
    manifest_refs,
    part_from_row,
    part_params,
    upload_from_row,
    upload_params,
    version_from_row,
)
from tessera.meta.sql.schema import parts, uploads, versions
from tessera.meta.sql.transactions import StoreBase
from tessera.meta.sql.versions import key_bounds, store_version
from tessera.meta.store import LatestGuard
from tessera.model.errors import BucketNotFound, UploadNotFound
from tessera.model.records import ObjectVersion, Part, Upload

_u = uploads.c
_p = parts.c
_v = versions.c
_ID: sa.BindParameter[str] = sa.bindparam("id")
_B: sa.BindParameter[str] = sa.bindparam("b")
_N: sa.BindParameter[int] = sa.bindparam("n", type_=sa.Integer)
_GET = sa.select(*UPLOAD_COLUMNS).where(_u.upload_id == _ID, _u.bucket == _B)
_INSERT_UPLOAD = insert_statement(uploads, upload_params(Upload("", "", "", 0.0, "")))
_INSERT_PART = insert_statement(parts, part_params(Part("", 0, 0, "", 0.0)))
_LOCK_EXCLUSIVE = sa.select(_u.seq).where(_u.upload_id == _ID, _u.bucket == _B).with_for_update()
_LOCK_SHARED = sa.select(_u.seq).where(_u.upload_id == _ID).with_for_update(read=True)
_DELETE_PART = (
    sa.delete(parts)
    .where(_p.upload_id == _ID, _p.number == sa.bindparam("num"))
    .returning(*PART_COLUMNS)
)
_DELETE_PARTS = sa.delete(parts).where(_p.upload_id == _ID).returning(_p.manifest)
_DELETE_UPLOAD = sa.delete(uploads).where(_u.upload_id == _ID)
_LIST_PARTS = (
    sa.select(*PART_COLUMNS)
    .where(_p.upload_id == _ID, _p.number > sa.bindparam("after"))
    .order_by(_p.number)
    .limit(_N)
)
_SEQ_OF = sa.select(_u.seq).where(_u.upload_id == _ID, _u.bucket == _B, _u.key == sa.bindparam("k"))
_LATER_OF_KEY = (
    sa.select(*UPLOAD_COLUMNS)
    .where(_u.bucket == _B, _u.key == sa.bindparam("k"), _u.seq > sa.bindparam("seq"))
    .order_by(_u.seq)
    .limit(_N)
)

_COMPLETED = (
    sa.select(*VERSION_FULL)
    .where(_v.bucket == _B, _v.key == sa.bindparam("k"), _v.upload_id == _ID)
    .order_by(_v.seq.desc())
    .limit(1)
)


@functools.cache
def _listing_stmt(lower: str, upper: bool) -> sa.Select[Any]:
    conds: list[sa.ColumnElement[bool]] = [_u.bucket == _B]
    if lower:
        lo: sa.BindParameter[str] = sa.bindparam("lo")
        conds.append(_u.key > lo if lower == ">" else _u.key >= lo)
    if upper:
        conds.append(_u.key < sa.bindparam("hi"))
    return sa.select(*UPLOAD_COLUMNS).where(*conds).order_by(_u.key, _u.seq).limit(_N)


def _not_found(upload_id: str) -> UploadNotFound:
    return UploadNotFound("The specified upload does not exist.", upload_id=upload_id)


class MultipartMixin(StoreBase):
    async def create_upload(self, upload: Upload) -> None:
        """Raises BucketNotFound."""
        params = upload_params(upload)
        d = self._dialect

        def tx(conn: Connection) -> None:
            try:
                d.execute(conn, _INSERT_UPLOAD, params)
            except IntegrityError as e:
                if d.is_foreign_key_violation(e):
                    raise BucketNotFound(
                        "The specified bucket does not exist", bucket=upload.bucket
                    ) from None
                raise

        await self._db.write(tx)

    async def get_upload(self, bucket: str, upload_id: str) -> Upload:
        """Raises UploadNotFound (also when the upload belongs to another bucket)."""
        first = self._dialect.first

        def tx(conn: Connection) -> Any:
            return first(conn, _GET, {"id": upload_id, "b": bucket})

        row = await self._db.lookup(tx)
        if row is None:
            raise _not_found(upload_id)
        return upload_from_row(row)

    async def list_uploads(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        limit: int = 1000,
    ) -> list[Upload]:
        """Uploads by key, then initiation order, after ``key_marker`` (and for
        that key after ``upload_id_marker``; an unknown upload id marker starts
        at keys greater than ``key_marker``)."""
        if limit <= 0:
            return []
        d = self._dialect

        def tx(conn: Connection) -> list[Upload]:
            found: list[Any] = []
            if (
                key_marker is not None
                and upload_id_marker is not None
                and key_marker.startswith(prefix)
            ):
                keys = {"b": bucket, "k": key_marker}
                seq = d.scalar(conn, _SEQ_OF, {**keys, "id": upload_id_marker})
                if seq is not None:
                    found = d.rows(conn, _LATER_OF_KEY, {**keys, "seq": seq, "n": limit})
            if len(found) < limit:
                lower, inclusive, upper = key_bounds(prefix, key_marker)
                shape = "" if lower is None else (">=" if inclusive else ">")
                stmt = _listing_stmt(shape, upper is not None)
                params = {"b": bucket, "lo": lower, "hi": upper, "n": limit - len(found)}
                found += d.rows(conn, stmt, params)
            return [upload_from_row(r) for r in found]

        return await self._db.read(tx, snapshot=True)

    async def put_part(self, part: Part) -> Part | None:
        """Store a part, replacing and returning a previous part of that number
        (whose references are released). Raises UploadNotFound."""
        params = part_params(part)
        d = self._dialect

        def tx(conn: Connection) -> Part | None:
            if d.first(conn, _LOCK_SHARED, {"id": part.upload_id}) is None:
                raise _not_found(part.upload_id)
            d.lock(conn, "part", part.upload_id, str(part.number))
            row = d.first(conn, _DELETE_PART, {"id": part.upload_id, "num": part.number})
            old = None if row is None else part_from_row(row)
            d.execute(conn, _INSERT_PART, params)
            delta = RefDelta()
            delta.add(part.manifest.block_refs())
            if old is not None:
                delta.release(old.manifest.block_refs())
            apply_refs(conn, d, delta, self._clock.now())
            return old

        return await self._db.write(tx)

    async def list_parts(self, upload_id: str, after: int = 0, limit: int = 10000) -> list[Part]:
        """Parts with number > ``after``, ascending, at most ``limit``; with inline
        data and manifests. Empty when the upload has no such parts (or is gone)."""
        if limit <= 0:
            return []
        rows = self._dialect.rows
        params = {"id": upload_id, "after": after, "n": limit}

        def tx(conn: Connection) -> list[Part]:
            return [part_from_row(r) for r in rows(conn, _LIST_PARTS, params)]

        return await self._db.read(tx)

    def _remove_upload(
        self, conn: Connection, bucket: str, upload_id: str, delta: RefDelta
    ) -> None:
        """Lock, then delete the upload and its parts, releasing the parts' references
        into ``delta``. Raises UploadNotFound."""
        d = self._dialect
        if d.first(conn, _LOCK_EXCLUSIVE, {"id": upload_id, "b": bucket}) is None:
            raise _not_found(upload_id)
        for (manifest,) in d.rows(conn, _DELETE_PARTS, {"id": upload_id}):
            delta.release(manifest_refs(manifest))
        d.execute(conn, _DELETE_UPLOAD, {"id": upload_id})

    async def complete_upload(
        self,
        bucket: str,
        upload_id: str,
        version: ObjectVersion,
        guard: LatestGuard | None = None,
    ) -> ObjectVersion | None:
        """Remove the upload and its parts and store ``version`` as put_version
        does, in one transaction; blocks reused from parts keep their count.
        Returns the displaced version. Raises UploadNotFound, or what ``guard``
        raises (then the upload is left as it was)."""
        version = dataclasses.replace(version, upload_id=upload_id)

        def tx(conn: Connection) -> ObjectVersion | None:
            delta = RefDelta()
            self._remove_upload(conn, bucket, upload_id, delta)
            replaced = store_version(conn, self._dialect, version, delta, guard)
            apply_refs(conn, self._dialect, delta, self._clock.now())
            return replaced

        return await self._db.write(tx)

    async def get_completed_upload(self, bucket: str, key: str, upload_id: str) -> ObjectVersion:
        """The version of ``key`` completed from ``upload_id``; a seek on the key's
        versions (``ix_versions_order``) filtered by upload id. Raises UploadNotFound."""
        first = self._dialect.first
        params = {"b": bucket, "k": key, "id": upload_id}

        def tx(conn: Connection) -> Any:
            return first(conn, _COMPLETED, params)

        row = await self._db.read(tx)
        if row is None:
            raise _not_found(upload_id)
        return version_from_row(bucket, row)

    async def abort_upload(self, bucket: str, upload_id: str) -> None:
        """Remove the upload and its parts, releasing their references.
        Raises UploadNotFound."""

        def tx(conn: Connection) -> None:
            delta = RefDelta()
            self._remove_upload(conn, bucket, upload_id, delta)
            apply_refs(conn, self._dialect, delta, self._clock.now())

        await self._db.write(tx)
