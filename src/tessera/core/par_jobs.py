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

State is kept in the process that started the job (one entry per PAR: the last
run); a gateway restart forgets it. At most one run per PAR at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tessera.core.requests import (
    CopyRequest,
    CopyResult,
    GetRequest,
    ListRequest,
    ListResult,
    ObjectRead,
    Principal,
)
from tessera.model.errors import Conflict, InvalidArgument, TesseraError
from tessera.model.pars import Par
from tessera.model.records import ObjectVersion

log = logging.getLogger(__name__)

JOBS = ("verify", "copy-prefix")
PAGE = 1000


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
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def document(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "args": self.args,
            "state": self.state,
            "progress": dict(self.progress),
            "result": self.result,
            "error": self.error,
        }


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


class ParJobs:
    """Runs and remembers the jobs of calculation PARs (one run per PAR at a time)."""

    def __init__(self, service: JobService) -> None:
        self._service = service
        self._runs: dict[str, JobState] = {}

    def start(self, par: Par, args: dict[str, Any]) -> JobState:
        """Start ``par``'s job. Raises InvalidArgument (arguments), Conflict
        (already running)."""
        assert par.job is not None
        checked = check_args(par.job, args)
        current = self._runs.get(par.id)
        if current is not None and current.state == "running":
            raise Conflict("The job is already running; stop it or wait.", par_id=par.id)
        state = JobState(par.job, checked)
        run = self._verify if par.job == "verify" else self._copy
        state.task = asyncio.create_task(
            self._run(state, run, Principal(par.owner), par.bucket), name=f"par-job-{par.id}"
        )
        self._runs[par.id] = state
        return state

    async def stop(self, par: Par) -> JobState | None:
        """Stop the running job (waiting for it to end); the last run's state,
        or None when the PAR never ran one."""
        state = self._runs.get(par.id)
        if state is not None:
            await self._cancel(state)
        return state

    @staticmethod
    async def _cancel(state: JobState) -> None:
        if state.task is not None and not state.task.done():
            state.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.task
        if state.state == "running":  # cancelled before it even started
            state.state = "stopped"

    def status(self, par: Par) -> JobState | None:
        return self._runs.get(par.id)

    async def close(self) -> None:
        """Stop every running job."""
        for state in list(self._runs.values()):
            await self._cancel(state)

    @staticmethod
    async def _run(
        state: JobState,
        work: Callable[[Principal, str, JobState], Awaitable[None]],
        who: Principal,
        bucket: str,
    ) -> None:
        try:
            await work(who, bucket, state)
        except asyncio.CancelledError:
            state.state = "stopped"
            raise
        except TesseraError as e:
            state.state, state.error = "failed", e.message
        except Exception as e:  # a bug: keep the process alive, say what happened
            log.exception("PAR job %s failed", state.job)
            state.state, state.error = "failed", f"internal error: {e}"
        else:
            state.state = "done"

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
