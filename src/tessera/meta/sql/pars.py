"""Pre-authenticated requests (table ``pars``).

Rows are written once, revoked in place (``revoked`` set, never cleared) and
deleted by the expiry sweep. The secret itself is never stored, only its
SHA-256; comparing it is the core's business (:mod:`tessera.core.pars`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tessera.meta.sql.dialects import dialect_for
from tessera.meta.sql.schema import pars
from tessera.meta.sql.transactions import StoreBase
from tessera.model.errors import Conflict, ParNotFound
from tessera.model.pars import Par

_p = pars.c
PAR_COLUMNS = tuple(pars.c)
_ID: sa.BindParameter[str] = sa.bindparam("id")
_GET = sa.select(*PAR_COLUMNS).where(_p.id == _ID)
_REVOKE = sa.update(pars).where(_p.id == _ID).values(revoked=True).returning(*PAR_COLUMNS)
_LIST_OWNER = (
    sa.select(*PAR_COLUMNS)
    .where(_p.owner == sa.bindparam("owner"))
    .order_by(_p.bucket, _p.created, _p.id)
)
_LIST_BUCKET = (
    sa.select(*PAR_COLUMNS)
    .where(_p.owner == sa.bindparam("owner"), _p.bucket == sa.bindparam("bucket"))
    .order_by(_p.created, _p.id)
)
_EXPIRED = (
    sa.select(_p.id)
    .where(_p.expires < sa.bindparam("before"))
    .order_by(_p.expires)
    .limit(sa.bindparam("n"))
)
_DELETE_EXPIRED = sa.delete(pars).where(_p.id.in_(_EXPIRED.scalar_subquery()))


@functools.cache
def _insert_statement(dialect_name: str) -> Any:
    """``INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id``."""
    insert = dialect_for(dialect_name).insert(pars)
    insert = insert.values({c.name: sa.bindparam(c.name) for c in pars.c})
    return insert.on_conflict_do_nothing(index_elements=[_p.id]).returning(_p.id)


def par_params(par: Par) -> dict[str, Any]:
    return {
        "id": par.id,
        "owner": par.owner,
        "bucket": par.bucket,
        "key": par.key,
        "readable": par.readable,
        "writeable": par.writeable,
        "listable": par.listable,
        "created": par.created,
        "expires": par.expires,
        "revoked": par.revoked,
        "secret_hash": par.secret_hash,
        "job": par.job,
    }


def par_from_row(row: Sequence[Any]) -> Par:
    """From a row of :data:`PAR_COLUMNS`."""
    (id_, owner, bucket, key, readable, writeable, listable, created, expires, revoked, sh, job) = (
        row
    )
    return Par(
        id=id_,
        owner=owner,
        bucket=bucket,
        key=key,
        readable=bool(readable),
        writeable=bool(writeable),
        listable=bool(listable),
        created=created,
        expires=expires,
        secret_hash=sh,
        revoked=bool(revoked),
        job=job,
    )


def _missing(par_id: str) -> ParNotFound:
    return ParNotFound("No pre-authenticated request has that id.", par_id=par_id)


class ParsMixin(StoreBase):
    async def create_par(self, par: Par) -> None:
        """Store a new PAR. Raises Conflict when one of that id exists (nothing changes)."""
        d = self._dialect
        stmt, params = _insert_statement(d.name), par_params(par)

        def tx(conn: Connection) -> bool:
            return d.first(conn, stmt, params) is not None

        if not await self._db.write(tx):
            raise Conflict("A pre-authenticated request of that id exists.", par_id=par.id)

    async def get_par(self, par_id: str) -> Par:
        """The PAR, revoked or expired ones included (until swept). Raises ParNotFound."""
        first = self._dialect.first

        def tx(conn: Connection) -> Any:
            return first(conn, _GET, {"id": par_id})

        row = await self._db.read(tx)
        if row is None:
            raise _missing(par_id)
        return par_from_row(row)

    async def list_pars(self, owner: str, bucket: str | None = None) -> list[Par]:
        """PARs of ``owner`` (revoked and expired ones too, until swept): of one
        bucket by creation, or of all its buckets by bucket then creation."""
        rows = self._dialect.rows
        stmt, params = (
            (_LIST_OWNER, {"owner": owner})
            if bucket is None
            else (_LIST_BUCKET, {"owner": owner, "bucket": bucket})
        )

        def tx(conn: Connection) -> list[Par]:
            return [par_from_row(r) for r in rows(conn, stmt, params)]

        return await self._db.read(tx)

    async def revoke_par(self, par_id: str) -> Par:
        """Mark the PAR revoked and return the updated record; revoking twice is
        harmless. Raises ParNotFound."""
        first = self._dialect.first

        def tx(conn: Connection) -> Any:
            return first(conn, _REVOKE, {"id": par_id})

        row = await self._db.write(tx)
        if row is None:
            raise _missing(par_id)
        return par_from_row(row)

    async def delete_expired_pars(self, before: float, limit: int = 1000) -> int:
        """Delete up to ``limit`` PARs (revoked or not) that expired before
        ``before``, oldest first; returns how many were deleted."""
        execute = self._dialect.execute

        def tx(conn: Connection) -> int:
            return execute(conn, _DELETE_EXPIRED, {"before": before, "n": limit})

        return await self._db.write(tx)
