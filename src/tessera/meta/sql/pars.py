"""Pre-authenticated requests (table ``pars``).

Rows are written once, revoked in place (``revoked`` set, never cleared) and
deleted by the expiry sweep. The secret itself is never stored, only its
SHA-256; comparing it is the core's business (:mod:`tessera.core.pars`).

The last job run of each calculation PAR is a row of ``par_jobs``
(:mod:`tessera.core.par_jobs` runs the jobs): started by one conditional upsert
(no other live run), rewritten only by its holder, deleted with its PAR by the
sweep (a foreign key refuses a job row for a PAR that is gone).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tessera.meta.sql.dialects import dialect_for
from tessera.meta.sql.schema import par_jobs, pars
from tessera.meta.sql.transactions import StoreBase
from tessera.model.errors import Conflict, ParNotFound
from tessera.model.pars import Par, ParJob

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
    .order_by(_p.expires, _p.id)
    .limit(sa.bindparam("n"))
    .with_for_update()
)
_IDS: sa.BindParameter[list[str]] = sa.bindparam("ids", expanding=True)
_DELETE_PARS = sa.delete(pars).where(_p.id.in_(_IDS))
_j = par_jobs.c
JOB_COLUMNS = tuple(par_jobs.c)
_PAR_ID: sa.BindParameter[str] = sa.bindparam("par_id")
_DELETE_JOBS = sa.delete(par_jobs).where(_j.par_id.in_(_IDS))
_GET_JOB = sa.select(*JOB_COLUMNS).where(_j.par_id == _PAR_ID)
_UPDATE_JOB = (
    sa.update(par_jobs)
    .where(_j.par_id == _PAR_ID, _j.holder == sa.bindparam("holder"))
    .values({n: sa.bindparam(n) for n in ("state", "progress", "result", "error", "updated")})
    .returning(_j.stop_requested)
)
_STOP_JOB = (
    sa.update(par_jobs)
    .where(_j.par_id == _PAR_ID, _j.state == "running")
    .values(stop_requested=True)
)


@functools.cache
def _insert_statement(dialect_name: str) -> Any:
    """``INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id``."""
    insert = dialect_for(dialect_name).insert(pars)
    insert = insert.values({c.name: sa.bindparam(c.name) for c in pars.c})
    return insert.on_conflict_do_nothing(index_elements=[_p.id]).returning(_p.id)


@functools.cache
def _start_job_statement(dialect_name: str) -> Any:
    """``INSERT ... ON CONFLICT (par_id) DO UPDATE ... WHERE`` the stored run is
    not live, ``RETURNING par_id`` (no row: a live run exists)."""
    insert = dialect_for(dialect_name).insert(par_jobs)
    insert = insert.values({c.name: sa.bindparam(c.name) for c in par_jobs.c})
    return insert.on_conflict_do_update(
        index_elements=[_j.par_id],
        set_={c.name: insert.excluded[c.name] for c in par_jobs.c if c.name != "par_id"},
        where=sa.or_(_j.state != "running", _j.updated < sa.bindparam("stale_before")),
    ).returning(_j.par_id)


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def job_params(job: ParJob) -> dict[str, Any]:
    """Parameters of a ``par_jobs`` row (JSON serialised here, on the caller's
    thread: the running job keeps changing its dicts)."""
    return {
        "par_id": job.par_id,
        "job": job.job,
        "args": _dump(job.args),
        "state": job.state,
        "progress": _dump(job.progress),
        "result": _dump(job.result),
        "error": job.error,
        "holder": job.holder,
        "stop_requested": job.stop_requested,
        "started": job.started,
        "updated": job.updated,
    }


def job_from_row(row: Sequence[Any]) -> ParJob:
    """From a row of :data:`JOB_COLUMNS`."""
    (par_id, job, args, state, progress, result, error, holder, stop, started, updated) = row
    return ParJob(
        par_id=par_id,
        job=job,
        args=json.loads(args),
        holder=holder,
        started=started,
        updated=updated,
        state=state,
        progress=json.loads(progress),
        result=json.loads(result),
        error=error,
        stop_requested=bool(stop),
    )


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

        row = await self._db.lookup(tx)
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
        ``before``, oldest first, with their job rows; returns how many PARs
        were deleted."""
        rows = self._dialect.rows

        def tx(conn: Connection) -> int:
            # Locked (PostgreSQL) until the commit: no job row can be started for them meanwhile.
            ids = [r[0] for r in rows(conn, _EXPIRED, {"before": before, "n": limit})]
            if not ids:
                return 0
            # Through SQLAlchemy, not the precompiled fast path: the IN list varies in length.
            conn.execute(_DELETE_JOBS, {"ids": ids})
            return int(conn.execute(_DELETE_PARS, {"ids": ids}).rowcount)

        return await self._db.write(tx)

    # -- jobs of calculation PARs ------------------------------------------------------------
    async def start_par_job(self, job: ParJob, stale_before: float) -> bool:
        """Store ``job`` as its PAR's run, replacing the previous run unless that
        one is ``running`` and was updated at or after ``stale_before``: then
        False, and nothing changes. Atomic (one conditional upsert). Raises
        ParNotFound when the PAR does not exist."""
        d = self._dialect
        stmt, params = _start_job_statement(d.name), job_params(job)
        params["stale_before"] = stale_before

        def tx(conn: Connection) -> bool:
            try:
                return d.first(conn, stmt, params) is not None
            except IntegrityError as e:
                if d.is_foreign_key_violation(e):
                    raise _missing(job.par_id) from None
                raise

        return await self._db.write(tx)

    async def get_par_job(self, par_id: str) -> ParJob | None:
        """The PAR's last job run; None when it never ran one."""
        first = self._dialect.first

        def tx(conn: Connection) -> Any:
            return first(conn, _GET_JOB, {"par_id": par_id})

        row = await self._db.read(tx)
        return None if row is None else job_from_row(row)

    async def update_par_job(
        self,
        par_id: str,
        holder: str,
        *,
        state: str,
        progress: dict[str, Any],
        result: dict[str, Any],
        error: str,
        updated: float,
    ) -> bool | None:
        """Replace state, progress, result, error and updated of the PAR's job
        row if ``holder`` holds it. Returns its ``stop_requested`` flag; None,
        and nothing changes, when there is no row of that holder."""
        first = self._dialect.first
        params = {
            "par_id": par_id,
            "holder": holder,
            "state": state,
            "progress": _dump(progress),
            "result": _dump(result),
            "error": error,
            "updated": updated,
        }

        def tx(conn: Connection) -> Any:
            return first(conn, _UPDATE_JOB, params)

        row = await self._db.write(tx)
        return None if row is None else bool(row[0])

    async def request_par_job_stop(self, par_id: str) -> bool:
        """Set ``stop_requested`` of the PAR's job row if it is ``running``;
        returns whether it was (False: no row, or the run is over)."""
        execute = self._dialect.execute

        def tx(conn: Connection) -> int:
            return execute(conn, _STOP_JOB, {"par_id": par_id})

        return await self._db.write(tx) > 0
