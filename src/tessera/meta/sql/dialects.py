"""How statements reach the database, and the few places where SQLite and
PostgreSQL differ: connection set-up, transaction-scoped locks, upserts,
pipelining and error classification. Everything else in the store is portable
SQLAlchemy Core.

* **Execution.** Statements are SQLAlchemy Core constructs, compiled *once* per
  dialect (:meth:`Dialect.compiled`) and run on the DBAPI cursor of the
  transaction's connection (:meth:`Dialect.rows`, :meth:`Dialect.first`...).
  SQLAlchemy's per-execution machinery (cache-key generation, result
  processing) costs about 100 us a statement, five times the statement itself
  on SQLite, and a put runs four statements: with it, the metadata store would
  top out near 2,500 puts/s of CPU. DBAPI errors are re-raised as SQLAlchemy's
  exception classes (``IntegrityError``...) so callers see one hierarchy, and a
  lost connection is invalidated so the PostgreSQL runner retries on a new one.
  Result values are plain DBAPI values (SQLite booleans are ints: mappers
  convert). Statements passed here must be module-level constants (the cache
  is keyed by the statement object).
* **Pipelining.** :meth:`Dialect.pipeline` sends a group of statements whose
  results are not needed to choose the next one (PostgreSQL pipeline mode: one
  round trip instead of one per statement; it matters when the database is
  across a network, not on localhost). On SQLite it is a no-op.

* **Locking.** On SQLite every write runs on the one writer connection inside
  ``BEGIN IMMEDIATE``, so writes are serial and :meth:`Dialect.lock` is a no-op.
  On PostgreSQL writes run concurrently under ``READ COMMITTED``; operations that
  read-then-write one key (or one part number) first take a transaction-scoped
  advisory lock on a 64-bit hash of its name, so they serialise per key and
  never race on "which row is latest". Hash collisions only serialise two
  unrelated keys.
* **Reference counts** are adjusted with one ``INSERT ... ON CONFLICT DO UPDATE``
  executed as an executemany over the pairs sorted by ``(volume, block)``: one
  round trip per transaction, and a fixed lock order so that concurrent
  PostgreSQL transactions cannot deadlock on block rows. Counts never go below
  zero (a double release cannot later make a referenced block look unused).
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.base import Executable

Params = Mapping[str, Any]

_ADJUST_REFS = """
INSERT INTO blocks (volume, block, refs, zero_since)
VALUES (:volume, :block, :initial, :initial_zero)
ON CONFLICT (volume, block) DO UPDATE SET
  refs = {greatest}(blocks.refs + :delta, 0),
  zero_since = CASE
    WHEN blocks.refs + :delta > 0 THEN NULL
    WHEN blocks.refs > 0 THEN :now
    ELSE coalesce(blocks.zero_since, :now)
  END
"""


class Pending:
    """The result of a statement run by :meth:`Dialect.send`, fetched on demand
    (in a PostgreSQL pipeline it arrives only when the pipeline is synced)."""

    __slots__ = ("_args", "_conn", "_cur", "_dialect", "_rowcount", "_rows", "_sql")

    def __init__(self, cur: Any, dialect: Dialect, conn: Connection, sql: str, args: Any):
        self._cur = cur
        self._dialect = dialect
        self._conn = conn
        self._sql = sql
        self._args = args
        self._rows: list[Any] | None = None
        self._rowcount = -1

    @classmethod
    def ready(cls, rows: list[Any], rowcount: int) -> Pending:
        """A result already fetched."""
        done = cls.__new__(cls)
        done._rows, done._rowcount, done._cur = rows, rowcount, None
        return done

    def rows(self) -> list[Any]:
        if self._rows is None:
            with self._dialect._errors(self._conn, self._sql, self._args):
                try:
                    self._rows = list(self._cur.fetchall())
                    self._rowcount = self._cur.rowcount
                finally:
                    self._cur.close()
        return self._rows

    def first(self) -> Any:
        rows = self.rows()
        return rows[0] if rows else None

    def rowcount(self) -> int:
        if self._rows is None:
            self._rowcount = int(self._cur.rowcount)
            self._rows = []
            self._cur.close()
        return self._rowcount


class Dialect:
    """Backend-specific behaviour and compiled statements; one instance per store."""

    name = ""
    adjust_refs_sql: sa.TextClause

    def __init__(self) -> None:
        self._sa: sa.Dialect | None = None
        self._cache: dict[Executable, tuple[str, dict[str, Any]]] = {}

    def bind(self, sa_dialect: sa.Dialect) -> None:
        """Compile for ``sa_dialect`` (the engine's, with a named paramstyle)."""
        self._sa = sa_dialect
        self._cache.clear()

    # -- execution -------------------------------------------------------------------------
    def compiled(self, stmt: Executable) -> tuple[str, dict[str, Any]]:
        """SQL text and default parameter values (literal limits, ``.values()``)."""
        hit = self._cache.get(stmt)
        if hit is None:
            assert self._sa is not None, "Dialect.bind() was not called"
            compiled = stmt.compile(dialect=self._sa)  # type: ignore[attr-defined]
            hit = (str(compiled), dict(compiled.params))
            self._cache[stmt] = hit
        return hit

    def _wrap(self, conn: Connection, exc: Exception, sql: str, params: Any) -> Exception:
        """``exc`` as SQLAlchemy's exception class (invalidating a lost connection)."""
        assert self._sa is not None
        dbapi = self._sa.loaded_dbapi
        if not isinstance(exc, dbapi.Error):
            return exc
        lost = self._sa.is_disconnect(exc, conn.connection.dbapi_connection, None)
        if lost:
            conn.invalidate(exc)
        return DBAPIError.instance(sql, params, exc, dbapi.Error, connection_invalidated=lost)

    @contextlib.contextmanager
    def _errors(self, conn: Connection, sql: str, params: Any) -> Iterator[None]:
        try:
            yield
        except Exception as e:
            wrapped = self._wrap(conn, e, sql, params)
            if wrapped is e:
                raise
            raise wrapped from e

    def send(self, conn: Connection, stmt: Executable, params: Params | None = None) -> Pending:
        """Run ``stmt``; inside :meth:`pipeline` (PostgreSQL) without waiting for
        its result, which :class:`Pending` fetches when asked."""
        sql, defaults = self.compiled(stmt)
        args = {**defaults, **params} if params else defaults
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        with self._errors(conn, sql, args):
            try:
                cur.execute(sql, args)
            except BaseException:
                cur.close()
                raise
        return self._pending(cur, conn, sql, args)

    def _pending(self, cur: Any, conn: Connection, sql: str, args: Any) -> Pending:
        return Pending(cur, self, conn, sql, args)

    @contextlib.contextmanager
    def pipeline(self, conn: Connection) -> Iterator[None]:
        """Statements sent inside run without a round trip each (PostgreSQL
        pipeline mode; errors surface at the end of the block). A no-op on SQLite."""
        yield

    def rows(self, conn: Connection, stmt: Executable, params: Params | None = None) -> list[Any]:
        """All result rows (tuples) of ``stmt``."""
        return self.send(conn, stmt, params).rows()

    def first(self, conn: Connection, stmt: Executable, params: Params | None = None) -> Any:
        """The first row, or None; the rest (if any) is discarded."""
        rows = self.send(conn, stmt, params).rows()
        return rows[0] if rows else None

    def scalar(self, conn: Connection, stmt: Executable, params: Params | None = None) -> Any:
        row = self.first(conn, stmt, params)
        return None if row is None else row[0]

    def execute(self, conn: Connection, stmt: Executable, params: Params | None = None) -> int:
        """Run a statement without result rows; returns the rowcount."""
        return self.send(conn, stmt, params).rowcount()

    def executemany(self, conn: Connection, stmt: Executable, params: Sequence[Params]) -> None:
        sql, defaults = self.compiled(stmt)
        args = [{**defaults, **p} for p in params] if defaults else list(params)
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        try:
            with self._errors(conn, sql, args):
                cur.executemany(sql, args)
        finally:
            cur.close()

    def insert(self, table: sa.Table) -> Any:
        """An INSERT construct offering ``on_conflict_do_update/nothing``."""
        raise NotImplementedError

    def lock(self, conn: Connection, *name: str) -> None:
        """Hold a lock named by ``name`` until the end of the current transaction
        (on PostgreSQL, once the statement ran: inside a pipeline, at its sync)."""

    def is_foreign_key_violation(self, exc: DBAPIError) -> bool:
        raise NotImplementedError

    def is_retryable(self, exc: DBAPIError) -> bool:
        """True for errors after which re-running the whole transaction is safe
        and likely to succeed (deadlock, serialisation failure, lost connection)."""
        return bool(exc.connection_invalidated)


class SqliteDialect(Dialect):
    name = "sqlite"
    adjust_refs_sql = sa.text(_ADJUST_REFS.format(greatest="max"))

    def insert(self, table: sa.Table) -> Any:
        return sqlite_dialect.insert(table)

    def is_foreign_key_violation(self, exc: DBAPIError) -> bool:
        orig = exc.orig
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None:
            return bool(code == getattr(sqlite3, "SQLITE_CONSTRAINT_FOREIGNKEY", 787))
        return "FOREIGN KEY" in str(orig)

    def _pending(self, cur: Any, conn: Connection, sql: str, args: Any) -> Pending:
        # Fetch at once: a statement left unfinished would hold up RELEASE/COMMIT.
        try:
            with self._errors(conn, sql, args):
                rows = cur.fetchall() if cur.description is not None else []
            return Pending.ready(rows, int(cur.rowcount))
        finally:
            cur.close()

    def is_retryable(self, exc: DBAPIError) -> bool:
        # The writer is alone; a busy database (another process) already waited
        # busy_timeout. Nothing is worth retrying blindly.
        return False

    @staticmethod
    def configure(dbapi_conn: sqlite3.Connection, *, writer: bool, memory: bool) -> None:
        """Per-connection settings: driver autocommit (SQLAlchemy emits BEGIN
        itself), WAL with full sync (a committed write survives power loss),
        foreign keys, a wait on locks held by other processes."""
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            if writer and not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            # 8 MiB of page cache per connection, no mmap: the kernel's page cache
            # already holds the file. 64 MiB caches and a 256 MiB map showed the
            # same throughput, but grew every connection (RSS) with the database:
            # a 30,000-object workload peaked at 561 MiB, now 144 MiB.
            cur.execute("PRAGMA cache_size=-8192")
            cur.execute("PRAGMA temp_store=MEMORY")
            if not memory:
                cur.execute("PRAGMA mmap_size=0")
        finally:
            cur.close()


class PostgresDialect(Dialect):
    name = "postgresql"
    adjust_refs_sql = sa.text(_ADJUST_REFS.format(greatest="greatest"))
    _lock_sql = sa.text("SELECT pg_advisory_xact_lock(CAST(:k AS bigint))")

    def insert(self, table: sa.Table) -> Any:
        return pg_dialect.insert(table)

    def lock(self, conn: Connection, *name: str) -> None:
        digest = hashlib.blake2b("\x00".join(name).encode(), digest_size=8).digest()
        self.send(conn, self._lock_sql, {"k": int.from_bytes(digest, "big", signed=True)})

    @contextlib.contextmanager
    def pipeline(self, conn: Connection) -> Iterator[None]:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with self._errors(conn, "(pipeline)", None), raw.pipeline():
            yield

    def is_foreign_key_violation(self, exc: DBAPIError) -> bool:
        return getattr(exc.orig, "sqlstate", None) == "23503"

    def is_retryable(self, exc: DBAPIError) -> bool:
        state = getattr(exc.orig, "sqlstate", None)
        return state in ("40001", "40P01") or bool(exc.connection_invalidated)


def dialect_for(name: str) -> Dialect:
    """The :class:`Dialect` for a SQLAlchemy dialect name."""
    if name == "sqlite":
        return SqliteDialect()
    if name == "postgresql":
        return PostgresDialect()
    raise ValueError(f"unsupported metadata database {name!r} (use sqlite or postgresql)")
