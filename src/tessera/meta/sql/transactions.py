"""Where the SQL runs: short synchronous transactions on worker threads, awaited
from asyncio.

The store's methods are written as plain functions ``fn(conn) -> result`` that
run inside one transaction; a runner decides on which thread and connection.

**SQLite** (:class:`SqliteRunner`). One dedicated writer thread owns the only
writing connection; transactions start with ``BEGIN IMMEDIATE``. Writes are
*group committed*: calls that arrive while the writer is busy (typically while
it waits for an fsync) are queued, and the next transaction runs all of them.
If one of them fails (a domain error, a constraint), that transaction is rolled
back and the batch runs again with each call inside its own ``SAVEPOINT``, so
the failing call rolls back alone and the others commit (a savepoint around
every call costs two statements each, ~10% of a small PUT's server CPU). One
fsync then makes the whole group durable, and each caller is answered only
after that commit, so the durability promise holds per call while the fsync
cost is shared. Reads run on a small pool of reader threads, each with its own
connection (WAL: readers see the last committed state and never wait for the
writer or its fsyncs).
A read that is one statement runs without ``BEGIN``/``COMMIT`` (a statement is
its own snapshot); ``snapshot=True`` wraps several statements in one read
transaction. Point lookups (:meth:`Runner.lookup`: a version, a bucket, a key)
skip the pool and run on the event loop's thread with a connection of its own:
the hand-off would cost five times the lookup. ``sqlite://`` (in memory) has a
single connection, used by the writer thread for reads as well.

**PostgreSQL** (:class:`PostgresRunner`). A pool of threads, each holding one
connection of the engine's pool; each call is one transaction. Transactions
that fail with a deadlock, a serialisation failure or a lost connection are
re-run (the functions only touch the database, so re-running them is safe).

**Hand-off.** Handing one call to a thread pool costs ~70 us here
(``run_in_executor``: a future, a thread wake-up, a loop wake-up), more than a
point lookup. Calls therefore go through a :class:`_Lane`: a queue drained by
up to N worker threads that keep draining while work is queued and answer
what they drained with one loop wake-up, so under load a call costs a queue
append and a share of a wake-up, not a thread wake-up of its own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool, StaticPool

from tessera.common.clock import Clock, SystemClock
from tessera.meta.sql.dialects import Dialect, PostgresDialect, SqliteDialect

T = TypeVar("T")
TxFn = Callable[[Connection], T]
"""A function run inside one transaction on the given connection."""

_RETRIES = 6


class Runner:
    """Runs transaction functions off the event loop."""

    dialect: Dialect

    async def read(self, fn: TxFn[T], *, snapshot: bool = False) -> T:
        """Run ``fn``, which must not write. With ``snapshot``, all its statements
        see one consistent state; otherwise it should run a single statement."""
        raise NotImplementedError

    async def lookup(self, fn: TxFn[T]) -> T:
        """Run ``fn``, one statement that finds a row by a unique index (a few
        pages: a version by key, a bucket, an access key). Where a hand-off to a
        thread costs more than the lookup, it runs on the caller's thread;
        otherwise as :meth:`read`."""
        return await self.read(fn)

    async def write(self, fn: TxFn[T]) -> T:
        """Run ``fn`` in a write transaction; return after it is durably committed.
        If ``fn`` raises, nothing it did is kept and the exception propagates."""
        raise NotImplementedError

    async def ddl(self, fn: TxFn[T]) -> T:
        """Run ``fn`` (schema work: migrations, checks) in a write transaction of its own."""
        return await self.write(fn)

    async def close(self) -> None:
        raise NotImplementedError


@dataclass(slots=True)
class _Op:
    fn: TxFn[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    snapshot: bool = False


def _settle(batch: list[_Op], outcomes: list[tuple[bool, Any]]) -> None:
    """Resolve the futures of a batch (runs on the event loop)."""
    for op, (ok, value) in zip(batch, outcomes, strict=True):
        if op.future.done():
            continue
        if ok:
            op.future.set_result(value)
        else:
            op.future.set_exception(value)


def _post(batch: list[_Op], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand outcomes back to the loop(s) of their callers (from a worker thread)."""
    loop = batch[0].loop
    if all(op.loop is loop for op in batch):
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(_settle, batch, outcomes)
        return
    for op, outcome in zip(batch, outcomes, strict=True):
        with contextlib.suppress(RuntimeError):
            op.loop.call_soon_threadsafe(_settle, [op], [outcome])


class _Lane:
    """A queue of calls drained by up to ``workers`` threads of ``executor``.

    A worker takes up to ``_BATCH`` queued calls and answers them with one loop
    wake-up: a point lookup takes ~20 us on SQLite, so a batch delays its first
    answer by a fraction of a millisecond. Workers take all they can rather
    than a fair share: the work is mostly CPU under the GIL (measured here,
    SQLite and local PostgreSQL alike, greedy batches of 16 beat shares by up
    to 2x), and a new worker still starts whenever calls queue behind busy ones.
    """

    _BATCH = 16

    def __init__(self, executor: ThreadPoolExecutor, workers: int, job: Callable[[_Op], Any]):
        self._executor = executor
        self._workers = workers
        self._job = job
        self._lock = threading.Lock()
        self._pending: collections.deque[_Op] = collections.deque()
        self._active = 0

    async def submit(self, fn: TxFn[T], snapshot: bool = False) -> T:
        loop = asyncio.get_running_loop()
        op = _Op(fn, loop.create_future(), loop, snapshot)
        with self._lock:
            self._pending.append(op)
            if self._active < self._workers:
                self._active += 1
                self._executor.submit(self._drain)
        result: T = await op.future
        return result

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._active -= 1
                    return
                n = min(len(self._pending), self._BATCH)
                batch = [self._pending.popleft() for _ in range(n)]
            batch = [op for op in batch if not op.future.cancelled()]
            outcomes: list[tuple[bool, Any]] = []
            for op in batch:
                try:
                    outcomes.append((True, self._job(op)))
                except Exception as e:
                    outcomes.append((False, e))
            if batch:
                _post(batch, outcomes)


class SqliteRunner(Runner):
    """One writer thread with group commit, a pool of reader threads."""

    def __init__(self, url: sa.URL, *, readers: int = 3, max_batch: int = 256) -> None:
        self.dialect = SqliteDialect()
        database = url.database or ""
        self.memory = database in ("", ":memory:") or "mode=memory" in database
        self._max_batch = max_batch
        self._writer_engine = self._engine(url, writer=True)
        self.dialect.bind(self._writer_engine.dialect)
        self._reader_engine = None if self.memory else self._engine(url, writer=False)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="tessera-meta-writer")
        if self._reader_engine is None:
            self._readers = self._writer
            self._reads = _Lane(self._writer, 1, self._read_on_writer)
        else:
            self._readers = ThreadPoolExecutor(readers, thread_name_prefix="tessera-meta-reader")
            self._reads = _Lane(self._readers, readers, self._read_job)
        self._writer_conn: Connection | None = None
        self._write_lock: int | None = None
        """File descriptor of ``<database>-writer.lock`` (see :meth:`_commit`)."""
        if not self.memory and not database.startswith("file:"):
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            self._write_lock = os.open(database + "-writer.lock", flags, 0o644)
        self._local = threading.local()
        self._reader_conns: list[Connection] = []
        self._lock = threading.Lock()
        self._pending: list[_Op] = []
        self._scheduled = False
        self._closed = False

    def _engine(self, url: sa.URL, *, writer: bool) -> Engine:
        memory = self.memory
        engine = sa.create_engine(
            url,
            poolclass=StaticPool if memory else NullPool,
            connect_args={"check_same_thread": False},
            paramstyle="named",
        )

        def on_connect(dbapi_conn: Any, _record: Any) -> None:
            SqliteDialect.configure(dbapi_conn, writer=writer, memory=memory)
            if not writer:
                dbapi_conn.execute("PRAGMA query_only=ON")

        begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

        def on_begin(conn: Connection) -> None:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.execute(begin)

        sa.event.listen(engine, "connect", on_connect)
        sa.event.listen(engine, "begin", on_begin)
        return engine

    # -- writer ---------------------------------------------------------------------
    def _wconn(self) -> Connection:
        if self._writer_conn is None:
            self._writer_conn = self._writer_engine.connect()
        return self._writer_conn

    async def write(self, fn: TxFn[T]) -> T:
        if self._closed:
            raise RuntimeError("metadata store is closed")
        loop = asyncio.get_running_loop()
        op = _Op(fn, loop.create_future(), loop)
        with self._lock:
            self._pending.append(op)
            if not self._scheduled:
                self._scheduled = True
                self._writer.submit(self._drain)
        result: T = await op.future
        return result

    def _drain(self) -> None:
        """Writer thread: run queued calls, up to ``max_batch`` per transaction,
        until the queue is empty."""
        while True:
            with self._lock:
                if not self._pending:
                    self._scheduled = False
                    return
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
            batch = [op for op in batch if not op.future.cancelled()]
            if batch:
                _post(batch, self._commit(batch))

    def _commit(self, batch: list[_Op]) -> list[tuple[bool, Any]]:
        """:meth:`_commit_locked` under the write lock file, when there is one.

        Writers in several processes (``serve --workers N``) would otherwise meet
        only in SQLite's busy handler, which polls by sleeping 1, 2, 5, 10... ms:
        the lock is often free while the other writer sleeps. ``flock`` queues
        them in the kernel and wakes the next one the moment the lock is given
        up (4 KiB PUTs with 2 workers: +15-25%). Uncontended, it costs two
        system calls per transaction. SQLite's own locking still decides what is
        safe; this only decides who goes next."""
        fd = self._write_lock
        if fd is None:
            return self._commit_locked(batch)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            return self._commit_locked(batch)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _commit_locked(self, batch: list[_Op]) -> list[tuple[bool, Any]]:
        """Run ``batch`` in one transaction. Optimistically all calls together;
        if one of them fails, the transaction is rolled back and the batch run
        again with each call in its own savepoint, so that the failing call
        rolls back alone (two statements less per call in the usual case; a
        call's function only touches the database, so running it twice is safe)."""
        if len(batch) > 1:
            try:
                conn = self._wconn()
                with conn.begin():
                    values = [op.fn(conn) for op in batch]
                return [(True, v) for v in values]
            except Exception:
                pass  # nothing was kept: sort it out call by call
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn = self._wconn()
            with conn.begin():
                if len(batch) == 1:
                    outcomes.append((True, batch[0].fn(conn)))
                else:
                    raw = conn.connection.dbapi_connection
                    assert raw is not None
                    for op in batch:
                        raw.execute("SAVEPOINT op")
                        try:
                            value = op.fn(conn)
                        except Exception as e:
                            raw.execute("ROLLBACK TO op")
                            raw.execute("RELEASE op")
                            outcomes.append((False, e))
                        else:
                            raw.execute("RELEASE op")
                            outcomes.append((True, value))
        except Exception as e:
            # Nothing of this transaction is kept: every call fails; the ones
            # that had failed alone keep their own error.
            failed = {i: o for i, o in enumerate(outcomes) if not o[0]}
            outcomes = [failed.get(i, (False, e)) for i in range(len(batch))]
        return outcomes

    async def ddl(self, fn: TxFn[T]) -> T:
        def run() -> T:
            with self._wconn().begin() as tx:
                return fn(tx.connection)

        return await asyncio.get_running_loop().run_in_executor(self._writer, run)

    # -- readers --------------------------------------------------------------------
    def _reader(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self._reader_engine is not None
            conn = self._reader_engine.connect()
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
            # A thread that ends (say, one of an embedding program's short-lived
            # threads calling lookup) gives its connection back then, not at close.
            weakref.finalize(threading.current_thread(), self._forget, conn)
        return conn

    def _forget(self, conn: Connection) -> None:
        """Close ``conn`` of a thread that ended (no-op once the runner closed it)."""
        with self._lock:
            if conn not in self._reader_conns:
                return
            self._reader_conns.remove(conn)
        with contextlib.suppress(Exception):  # closing is best effort here
            conn.close()

    @staticmethod
    def _run_read(conn: Connection, fn: TxFn[T], snapshot: bool) -> T:
        if snapshot:
            with conn.begin():
                return fn(conn)
        try:
            return fn(conn)
        finally:
            if conn.in_transaction():  # fn used SQLAlchemy, which began one
                conn.rollback()

    def _read_job(self, op: _Op) -> Any:
        return self._run_read(self._reader(), op.fn, op.snapshot)

    def _read_on_writer(self, op: _Op) -> Any:
        return self._run_read(self._wconn(), op.fn, op.snapshot)

    async def read(self, fn: TxFn[T], *, snapshot: bool = False) -> T:
        if self._closed:
            raise RuntimeError("metadata store is closed")
        return await self._reads.submit(fn, snapshot)

    async def lookup(self, fn: TxFn[T]) -> T:
        """On the calling (event loop) thread, with that thread's own reader
        connection: a point lookup costs ~20 us of SQLite, the hand-off to a
        reader thread and back ~100 us more (GIL and wake-ups, measured on a
        small HEAD: 310 -> 210 us of server CPU). WAL readers never wait for the
        writer, so the loop blocks only for the lookup itself (a few page reads,
        from the page cache in practice). In memory, the one connection belongs
        to the writer thread: there it is a :meth:`read`."""
        if self._closed:
            raise RuntimeError("metadata store is closed")
        if self._reader_engine is None:
            return await self._reads.submit(fn, False)
        return self._run_read(self._reader(), fn, False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        if self._readers is not self._writer:
            self._readers.shutdown(wait=True)
        with self._lock:
            conns, self._reader_conns = self._reader_conns, []
        for conn in conns:
            conn.close()

        def close_writer() -> None:
            if self._writer_conn is not None:
                self._writer_conn.close()

        self._writer.submit(close_writer)
        self._writer.shutdown(wait=True)
        if self._write_lock is not None:
            os.close(self._write_lock)
            self._write_lock = None
        self._writer_engine.dispose()
        if self._reader_engine is not None:
            self._reader_engine.dispose()


class PostgresRunner(Runner):
    """Worker threads, each holding one pooled connection; one transaction per call."""

    def __init__(self, url: sa.URL, *, pool_size: int = 16) -> None:
        self.dialect = PostgresDialect()
        self._engine = sa.create_engine(url, pool_size=pool_size, max_overflow=0)
        self.dialect.bind(self._engine.dialect)
        self._executor = ThreadPoolExecutor(pool_size, thread_name_prefix="tessera-meta-pg")
        self._lane = _Lane(self._executor, pool_size, self._job)
        self._local = threading.local()
        self._conns: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _conn(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._engine.connect()
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _job(self, op: _Op) -> Any:
        for attempt in range(_RETRIES):
            conn = self._conn()
            try:
                with conn.begin():
                    return op.fn(conn)
            except DBAPIError as e:
                if attempt + 1 < _RETRIES and self.dialect.is_retryable(e):
                    time.sleep(random.uniform(0, 0.002 * 2**attempt))
                    continue
                raise
        raise AssertionError("unreachable")

    async def read(self, fn: TxFn[T], *, snapshot: bool = False) -> T:
        if self._closed:
            raise RuntimeError("metadata store is closed")
        return await self._lane.submit(fn)

    async def write(self, fn: TxFn[T]) -> T:
        return await self.read(fn)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        for conn in self._conns:
            with contextlib.suppress(Exception):
                conn.close()
        self._engine.dispose()


def open_runner(url: str, *, readers: int = 3, pool_size: int = 16) -> Runner:
    """A runner for ``url`` (``sqlite:///path``, ``postgresql[+psycopg]://...``)."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return SqliteRunner(parsed, readers=readers)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return PostgresRunner(parsed, pool_size=pool_size)
    raise ValueError(f"unsupported metadata database URL {url!r} (use sqlite or postgresql)")


class StoreBase:
    """State shared by the store's method groups (mixins)."""

    _db: Runner
    _clock: Clock

    def __init__(self, runner: Runner, clock: Clock | None = None) -> None:
        self._db = runner
        self._clock = clock or SystemClock()

    @property
    def _dialect(self) -> Dialect:
        return self._db.dialect
