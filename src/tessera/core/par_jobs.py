"""Server-side jobs that calculation PARs start, stop and watch.

A calculation PAR names one job kind (:data:`JOBS`) on one bucket; its holder
may start the job (with arguments confined to that bucket), stop it and read
its progress, and nothing else: it reads and writes no data itself. The job
runs as the PAR's owner, so every ordinary permission check applies.

Job kinds:

* ``verify`` (args: ``prefix``): read every object under ``prefix`` back from
  storage and compare its MD5 with its ETag (single-part objects; multipart
  ones are read through, which still checks every block's own checksum).
  Result: ``{"objects", "bytes", "bad": [keys], "unreadable": {key: error}}``.
* ``copy-prefix`` (args: ``source``, ``destination``): server-side copy of every
  key under ``source`` to the same name under ``destination`` (blocks are
  shared, no bytes move). Refused when one prefix contains the other (a copy
  would feed itself). Result: ``{"copied", "failed": {key: error}}``.

State is kept in the metadata store (:meth:`MetadataStore.start_par_job` and
its siblings): one record per PAR, its last run, so that every process sharing
the store (the workers of ``tessera serve --workers``, the gateways of a
cluster) sees, watches and stops it. At most one live run per PAR, whichever
process started it. The job itself runs in the process that started it, under
a *holder* id unique to that run (host, process id, a random part, a counter);
only that holder writes the record: progress at most every
:data:`REPORT_INTERVAL` seconds (which is also its heartbeat) and always the
final state. On each write it reads back ``stop_requested`` and stops itself
when another process asked it to. A ``running`` record not written for
:data:`HEARTBEAT_TIMEOUT` seconds belongs to a process that stopped: it is
reported as failed, and a new run may replace it. Timestamps come from the
service's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from tessera.common.clock import Clock
from tessera.core.requests import (
    CopyRequest,
    CopyResult,
    GetRequest,
    ListRequest,
    ListResult,
    ObjectRead,
    Principal,
)
from tessera.meta.store import MetadataStore
from tessera.model.errors import Conflict, InvalidArgument, TesseraError
from tessera.model.pars import Par, ParJob
from tessera.model.records import ObjectVersion

log = logging.getLogger(__name__)

JOBS = ("verify", "copy-prefix")
PAGE = 1000
REPORT_INTERVAL = 0.5
"""Seconds between two writes of a running job's progress to the store."""
HEARTBEAT_TIMEOUT = 30.0
"""A ``running`` record not written for this long: its process stopped."""
STALE_ERROR = "the process running the job stopped"
STOP_WAIT, STOP_POLL = 10.0, 0.1
"""How long (and how often) a stop waits for another process to end its run."""


class JobService(Protocol):
    """What jobs use of :class:`~tessera.core.service.ObjectService`."""

    async def list_objects(self, who: Principal, req: ListRequest) -> ListResult: ...

    async def get_object(
        self, who: Principal, req: GetRequest, *, head: bool = False
    ) -> ObjectRead: ...

    async def copy_object(self, who: Principal, req: CopyRequest) -> CopyResult: ...


@dataclass(slots=True)
class JobState:
    """What a calculation PAR's job is doing (or did)."""

    job: str
    args: dict[str, str]
    state: str = "running"
    """``running``, ``done``, ``failed`` or ``stopped``."""
    progress: dict[str, int] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @classmethod
    def of(cls, record: ParJob) -> JobState:
        return cls(
            record.job, record.args, record.state, record.progress, record.result, record.error
        )

    def document(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "args": self.args,
            "state": self.state,
            "progress": dict(self.progress),
            "result": self.result,
            "error": self.error,
        }


@dataclass(slots=True)
class _Run:
    """A run of this process."""

    par_id: str
    holder: str
    state: JobState
    task: asyncio.Task[None] | None = field(default=None, repr=False)


def _settle(state: JobState, work: asyncio.Task[None]) -> None:
    """Set the final state from how ``work`` ended."""
    if work.cancelled():
        state.state = "stopped"
        return
    e = work.exception()
    if e is None:
        state.state = "done"
    elif isinstance(e, TesseraError):
        state.state, state.error = "failed", e.message
    else:  # a bug: keep the process alive, say what happened
        log.error("PAR job %s failed", state.job, exc_info=e)
        state.state, state.error = "failed", f"internal error: {e}"


def _arg(args: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = args.get(name, "")
    if not isinstance(value, str) or (required and not value):
        raise InvalidArgument(f"job argument {name!r} must be a non-empty string")
    return value


def check_args(job: str, args: dict[str, Any]) -> dict[str, str]:
    """The arguments of ``job`` as strings. Raises InvalidArgument."""
    if job == "verify":
        unknown = set(args) - {"prefix"}
        checked = {"prefix": _arg(args, "prefix")}
    elif job == "copy-prefix":
        unknown = set(args) - {"source", "destination"}
        src = _arg(args, "source", required=True)
        dst = _arg(args, "destination", required=True)
        if src.startswith(dst) or dst.startswith(src):
            raise InvalidArgument("source and destination prefixes must not contain each other")
        checked = {"source": src, "destination": dst}
    else:
        raise InvalidArgument(f"unknown job {job!r}; one of {', '.join(JOBS)}")
    if unknown:
        raise InvalidArgument(f"unknown job arguments: {', '.join(sorted(unknown))}")
    return checked


def process_holder() -> str:
    """An id unique to this process (and call): ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class ParJobs:
    """Runs the jobs of calculation PARs and keeps their state in the metadata
    store (one live run per PAR across every process sharing it)."""

    def __init__(self, service: JobService, meta: MetadataStore, clock: Clock) -> None:
        self._service = service
        self._meta = meta
        self._clock = clock
        self.holder = process_holder()
        self._count = itertools.count(1)
        self._runs: dict[str, _Run] = {}
        """Runs of this process whose task has not ended, by PAR id."""

    async def start(self, par: Par, args: dict[str, Any]) -> JobState:
        """Start ``par``'s job. Raises InvalidArgument (arguments), Conflict (a
        live run exists, in any process), ParNotFound (the PAR is gone)."""
        assert par.job is not None
        checked = check_args(par.job, args)
        now = self._clock.now()
        run = _Run(par.id, f"{self.holder}:{next(self._count)}", JobState(par.job, checked))
        record = ParJob(par.id, par.job, checked, run.holder, started=now, updated=now)
        if not await self._meta.start_par_job(record, now - HEARTBEAT_TIMEOUT):
            raise Conflict("The job is already running; stop it or wait.", par_id=par.id)
        previous = self._runs.get(par.id)
        if previous is not None and previous.task is not None:
            previous.task.cancel()  # over, or presumed dead: its writes no longer land
        work = self._verify if par.job == "verify" else self._copy
        run.task = asyncio.create_task(
            self._run(run, work, Principal(par.owner), par.bucket), name=f"par-job-{par.id}"
        )
        self._runs[par.id] = run
        return run.state

    async def status(self, par: Par) -> JobState | None:
        """The last run's state as stored (None: the PAR never ran a job); a
        ``running`` run whose process stopped is reported as failed."""
        record = await self._meta.get_par_job(par.id)
        return None if record is None else self._view(record)

    async def stop(self, par: Par) -> JobState | None:
        """Stop the running job and return the last run's state (None when the
        PAR never ran one). A run of this process is cancelled and awaited; one
        of another process is asked to stop, and awaited for up to
        :data:`STOP_WAIT` seconds (after that its state may still be ``running``)."""
        run = self._runs.get(par.id)
        if run is not None:
            await self._cancel(run)
            return run.state
        record = await self._meta.get_par_job(par.id)
        if record is None:
            return None
        if self._live(record) and await self._meta.request_par_job_stop(par.id):
            for _ in range(round(STOP_WAIT / STOP_POLL)):
                await asyncio.sleep(STOP_POLL)
                record = await self._meta.get_par_job(par.id)
                if record is None:
                    return None
                if record.state != "running":
                    break
        return self._view(record)

    async def close(self) -> None:
        """Stop every running job of this process."""
        for run in list(self._runs.values()):
            await self._cancel(run)

    def _live(self, record: ParJob) -> bool:
        return record.state == "running" and (
            record.updated >= self._clock.now() - HEARTBEAT_TIMEOUT
        )

    def _view(self, record: ParJob) -> JobState:
        state = JobState.of(record)
        if state.state == "running" and not self._live(record):
            state.state, state.error = "failed", STALE_ERROR
        return state

    async def _cancel(self, run: _Run) -> None:
        if run.task is not None and not run.task.done():
            run.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run.task
        if run.state.state == "running":  # cancelled before it even started
            run.state.state = "stopped"
            await self._write(run)
            self._forget(run)

    def _forget(self, run: _Run) -> None:
        if self._runs.get(run.par_id) is run:
            del self._runs[run.par_id]

    async def _write(self, run: _Run) -> bool | None:
        """Write ``run``'s state to the store; its ``stop_requested`` flag, None
        when the record is no longer this run's. A failed write is logged (a run
        whose writes keep failing ends up reported as failed, once stale)."""
        s = run.state
        try:
            return await self._meta.update_par_job(
                run.par_id,
                run.holder,
                state=s.state,
                progress=s.progress,
                result=s.result,
                error=s.error,
                updated=self._clock.now(),
            )
        except Exception:
            log.warning("writing the state of PAR job %s failed", run.par_id, exc_info=True)
            return False

    async def _run(
        self,
        run: _Run,
        work: Callable[[Principal, str, JobState], Coroutine[Any, Any, None]],
        who: Principal,
        bucket: str,
    ) -> None:
        inner = asyncio.create_task(work(who, bucket, run.state), name=f"par-work-{run.par_id}")
        try:
            while not inner.done():
                await asyncio.wait([inner], timeout=REPORT_INTERVAL)
                if not inner.done() and await self._write(run) is not False:
                    inner.cancel()  # stop requested elsewhere, or a newer run replaced this one
                    await asyncio.wait([inner])
        finally:
            if not inner.done():  # this task was cancelled: a stop in this process, or close
                inner.cancel()
                await asyncio.wait([inner])
            _settle(run.state, inner)
            try:  # shielded: a second cancellation must not lose the final state
                await asyncio.shield(self._write(run))
            finally:
                self._forget(run)

    async def _objects(
        self, who: Principal, bucket: str, prefix: str
    ) -> AsyncIterator[ObjectVersion]:
        after = ""
        while True:
            page = await self._service.list_objects(
                who, ListRequest(bucket, prefix=prefix, after=after, max_keys=PAGE)
            )
            for v in page.objects:
                yield v
            if not page.truncated or not page.objects:
                return
            after = page.next_after

    async def _verify(self, who: Principal, bucket: str, state: JobState) -> None:
        progress = state.progress
        bad: list[str] = []
        unreadable: dict[str, str] = {}
        state.result = {"bad": bad, "unreadable": unreadable}
        progress.update(objects=0, bytes=0)
        async for listed in self._objects(who, bucket, state.args["prefix"]):
            md5 = hashlib.md5(usedforsecurity=False)
            try:
                read = await self._service.get_object(who, GetRequest(bucket, listed.key))
                assert read.body is not None
                async for piece in read.body:
                    md5.update(piece)
                    progress["bytes"] += len(piece)
            except TesseraError as e:
                unreadable[listed.key] = e.message
            else:
                etag = read.version.etag
                if "-" not in etag and md5.hexdigest() != etag:
                    bad.append(listed.key)
            progress["objects"] += 1

    async def _copy(self, who: Principal, bucket: str, state: JobState) -> None:
        src, dst = state.args["source"], state.args["destination"]
        failed: dict[str, str] = {}
        state.result = {"failed": failed}
        state.progress.update(copied=0)
        async for listed in self._objects(who, bucket, src):
            target = dst + listed.key[len(src) :]
            try:
                await self._service.copy_object(
                    who, CopyRequest(bucket, listed.key, None, bucket, target)
                )
            except TesseraError as e:
                failed[listed.key] = e.message
            else:
                state.progress["copied"] += 1
