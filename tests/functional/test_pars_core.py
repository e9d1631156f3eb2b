"""PARs in the core (:mod:`tessera.core.pars`) over SQLite and a local volume,
with a fake clock: creation rules, resolution, scope, revocation, sweeping, and
the jobs of calculation PARs (also seen from a second service over the same
metadata file, as another worker process would)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tessera.common.clock import FakeClock
from tessera.core.par_jobs import HEARTBEAT_TIMEOUT, STALE_ERROR, JobState
from tessera.core.pars import ParOptions
from tessera.core.requests import CopyRequest, CopyResult, GetRequest, Principal, PutRequest
from tessera.core.service import ObjectService
from tessera.data.store import SegmentStore
from tessera.data.volume import LocalVolume
from tessera.meta.sql import SqlMetadataStore
from tessera.model.errors import (
    AccessDenied,
    BucketNotFound,
    Conflict,
    InvalidArgument,
    ParExpired,
    ParNotFound,
)
from tessera.model.pars import Par, ParJob

T0 = 1_000_000.0
OWNER, OTHER = Principal("owner"), Principal("other")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def svc(tmp_path: Path, clock: FakeClock) -> AsyncIterator[ObjectService]:
    meta = await SqlMetadataStore.connect(f"sqlite:///{tmp_path / 'm.db'}", migrate=True)
    service = ObjectService(meta, SegmentStore([LocalVolume(tmp_path / "d0", "d0")]), clock=clock)
    await service.ensure_account("owner", "Owner", [])
    await service.ensure_account("other", "Other", [])
    await service.create_bucket(OWNER, "mine")
    await service.create_bucket(OTHER, "theirs")
    yield service
    await service.close()


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_create_rules(svc: ObjectService) -> None:
    with pytest.raises(AccessDenied):
        await svc.create_par(OWNER, "theirs", expires=T0 + 60)
    with pytest.raises(BucketNotFound):
        await svc.create_par(OWNER, "nobucket", expires=T0 + 60)
    with pytest.raises(InvalidArgument, match="at least one"):
        await svc.create_par(OWNER, "mine", readable=False, expires=T0 + 60)
    with pytest.raises(InvalidArgument, match="listable"):
        await svc.create_par(OWNER, "mine", "k", listable=True, expires=T0 + 60)
    with pytest.raises(InvalidArgument, match="future"):
        await svc.create_par(OWNER, "mine", expires=T0)
    with pytest.raises(InvalidArgument, match="at most"):
        await svc.create_par(OWNER, "mine", expires=T0 + 7 * 86400 + 1)
    with pytest.raises(AccessDenied):
        await svc.create_par(OWNER, "mine", "a/../b", expires=T0 + 60)
    par, secret = await svc.create_par(OWNER, "mine", "k", writeable=True, expires=T0 + 60)
    assert (par.owner, par.bucket, par.key, par.readable, par.writeable) == (
        "owner",
        "mine",
        "k",
        True,
        True,
    )
    assert secret not in par.secret_hash and len(secret) >= 40
    svc.par_options = ParOptions(max_ttl=30)
    with pytest.raises(InvalidArgument, match="at most 30"):
        await svc.create_par(OWNER, "mine", expires=T0 + 31)


async def test_resolve(svc: ObjectService, clock: FakeClock) -> None:
    par, secret = await svc.create_par(OWNER, "mine", expires=T0 + 60)
    assert await svc.resolve_par(par.id, secret) == par
    for pid, sec in ((par.id, secret + "x"), ("unknown", secret), (par.id, "")):
        with pytest.raises(ParNotFound):
            await svc.resolve_par(pid, sec)
    clock.advance(60)
    with pytest.raises(ParExpired):
        await svc.resolve_par(par.id, secret)
    with pytest.raises(ParNotFound):  # a wrong secret learns nothing about expiry
        await svc.resolve_par(par.id, "wrong")


async def test_scope(svc: ObjectService) -> None:
    obj, _ = await svc.create_par(OWNER, "mine", "k", writeable=True, expires=T0 + 60)
    assert svc.par_target(obj, "read", None) == (OWNER, "mine", "k")
    assert svc.par_target(obj, "write", None) == (OWNER, "mine", "k")
    for action, key in (("read", "other"), ("read", ""), ("list", None)):
        with pytest.raises(AccessDenied):
            svc.par_target(obj, action, key)
    ro, _ = await svc.create_par(OWNER, "mine", expires=T0 + 60)
    assert svc.par_target(ro, "read", "a/b") == (OWNER, "mine", "a/b")
    for action, key in (
        ("write", "a"),  # not writeable
        ("list", None),  # not listable
        ("read", None),  # a bucket PAR names a key
        ("read", "../x"),
        ("read", "a/./b"),
        ("read", "a/.."),
    ):
        with pytest.raises(AccessDenied):
            svc.par_target(ro, action, key)
    lst, _ = await svc.create_par(OWNER, "mine", readable=False, listable=True, expires=T0 + 60)
    assert svc.par_target(lst, "list", None) == (OWNER, "mine", "")
    with pytest.raises(AccessDenied):
        svc.par_target(lst, "read", "a")


async def test_use_acts_as_owner_in_its_bucket(svc: ObjectService) -> None:
    par, secret = await svc.create_par(OWNER, "mine", writeable=True, expires=T0 + 60)
    who, bucket, key = svc.par_target(await svc.resolve_par(par.id, secret), "write", "x")
    await svc.put_object(who, PutRequest(bucket, key, _body(b"data")))
    read = await svc.get_object(who, GetRequest("mine", "x"))
    assert read.version.size == 4 and read.version.owner == "owner"


async def test_a_par_dies_with_its_bucket(svc: ObjectService, clock: FakeClock) -> None:
    par, secret = await svc.create_par(OWNER, "mine", expires=T0 + 60)
    other, other_secret = await svc.create_par(OWNER, "mine", expires=T0 + 60)
    clock.advance(1)
    await svc.delete_bucket(OWNER, "mine")
    with pytest.raises(ParNotFound):
        await svc.resolve_par(par.id, secret)
    await svc.create_bucket(OTHER, "mine")
    with pytest.raises(ParNotFound):  # another account's bucket of the same name
        await svc.resolve_par(par.id, secret)
    await svc.delete_bucket(OTHER, "mine")
    await svc.create_bucket(OWNER, "mine")
    with pytest.raises(ParNotFound):  # the same owner's new bucket is another bucket
        await svc.resolve_par(other.id, other_secret)
    clock.advance(1)
    fresh, fresh_secret = await svc.create_par(OWNER, "mine", expires=T0 + 60)
    assert await svc.resolve_par(fresh.id, fresh_secret) == fresh


async def test_revoke(svc: ObjectService, clock: FakeClock) -> None:
    a, sa = await svc.create_par(OWNER, "mine", expires=T0 + 60)
    b, sb = await svc.create_par(OWNER, "mine", "k", expires=T0 + 60)
    with pytest.raises(ParNotFound):  # another account cannot, nor learn it exists
        await svc.revoke_par(OTHER, a.id)
    assert (await svc.revoke_par(OWNER, a.id)).revoked
    with pytest.raises(ParNotFound):
        await svc.resolve_par(a.id, sa)
    with pytest.raises(ParNotFound):  # proof of possession needs the secret
        await svc.revoke_par_with_secret(b.id, sa)
    clock.advance(120)  # expired, still revocable by its holder
    assert (await svc.revoke_par_with_secret(b.id, sb)).revoked
    with pytest.raises(ParNotFound):
        await svc.resolve_par(b.id, sb)


async def test_list_and_sweep(svc: ObjectService, clock: FakeClock) -> None:
    a, _ = await svc.create_par(OWNER, "mine", expires=T0 + 10)
    clock.advance(1)  # listings are in creation order
    b, _ = await svc.create_par(OWNER, "mine", "k", expires=T0 + 1000)
    await svc.create_par(OTHER, "theirs", expires=T0 + 10)
    assert [p.id for p in await svc.list_pars(OWNER, "mine")] == [a.id, b.id]
    with pytest.raises(AccessDenied):
        await svc.list_pars(OWNER, "theirs")
    svc.par_options = dataclasses.replace(svc.par_options, keep_expired=100)
    clock.advance(49)
    assert await svc.sweep_pars() == 0  # expired, but kept (and listed) a while
    assert [p.id for p in await svc.list_pars(OWNER)] == [a.id, b.id]
    clock.advance(100)
    assert await svc.sweep_pars(batch=1) == 2  # both expired at T0 + 10, in batches of 1
    assert [p.id for p in await svc.list_pars(OWNER)] == [b.id]


# -- calculation PARs ----------------------------------------------------------------------------
@pytest.fixture
async def svc2(
    svc: ObjectService, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[ObjectService]:
    """A second service over the same metadata file and volume: another worker process."""
    meta = await SqlMetadataStore.connect(f"sqlite:///{tmp_path / 'm.db'}", migrate=True)
    service = ObjectService(meta, SegmentStore([LocalVolume(tmp_path / "d0", "d0")]), clock=clock)
    yield service
    await service.close()


async def _until(svc: ObjectService, par: Par, done: Callable[[JobState], bool]) -> JobState:
    """Poll the job's state until ``done`` says so (bounded: the jobs here are small)."""
    deadline = time.monotonic() + 30
    while True:
        state = await svc.par_job_status(par)
        assert state is not None
        if done(state):
            return state
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.02)


async def _wait(svc: ObjectService, par: Par) -> JobState:
    """The job's final state."""
    return await _until(svc, par, lambda s: s.state != "running")


async def test_calculation_par_rules(svc: ObjectService) -> None:
    with pytest.raises(InvalidArgument, match="Unknown job"):
        await svc.create_par(OWNER, "mine", job="rm-rf", expires=T0 + 60)
    with pytest.raises(InvalidArgument, match="not a key"):
        await svc.create_par(OWNER, "mine", "k", job="verify", expires=T0 + 60)
    with pytest.raises(AccessDenied):
        await svc.create_par(OWNER, "theirs", job="verify", expires=T0 + 60)
    calc, _ = await svc.create_par(OWNER, "mine", readable=True, job="verify", expires=T0 + 60)
    assert calc.is_calculation and not (calc.readable or calc.writeable or calc.listable)
    for action, key in (("read", "k"), ("write", "k"), ("list", None)):
        with pytest.raises(AccessDenied):
            svc.par_target(calc, action, key)
    data, _ = await svc.create_par(OWNER, "mine", expires=T0 + 60)
    with pytest.raises(AccessDenied):
        await svc.start_par_job(data, {})
    assert await svc.par_job_status(calc) is None
    assert await svc.stop_par_job(calc) is None
    with pytest.raises(InvalidArgument):
        await svc.start_par_job(calc, {"prefix": "a", "other": "b"})
    assert await svc.par_job_status(calc) is None


async def test_verify_job_finds_corrupt_objects(svc: ObjectService, tmp_path: Path) -> None:
    for i in range(3):
        await svc.put_object(OWNER, PutRequest("mine", f"v/{i}", _body(b"%d" % i * 100_000)))
    await svc.put_object(OWNER, PutRequest("mine", "skip", _body(b"not under the prefix")))
    calc, _ = await svc.create_par(OWNER, "mine", job="verify", expires=T0 + 60)
    await svc.start_par_job(calc, {"prefix": "v/"})
    state = await _wait(svc, calc)
    assert (state.state, state.progress["objects"], state.result["bad"]) == ("done", 3, [])
    assert state.progress["bytes"] == 300_000
    # damage one stored block on disk: the job reports the object, the service keeps running
    victim = next(
        p for p in (tmp_path / "d0").rglob("*") if p.is_file() and p.stat().st_size > 50_000
    )
    raw = bytearray(victim.read_bytes())
    raw[-10] ^= 0xFF
    victim.write_bytes(bytes(raw))
    await svc.start_par_job(calc, {"prefix": "v/"})
    state = await _wait(svc, calc)
    assert state.state == "done" and state.progress["objects"] == 3
    assert len(state.result["bad"]) + len(state.result["unreadable"]) == 1


async def test_copy_prefix_job_and_stop(svc: ObjectService) -> None:
    for i in range(4):
        await svc.put_object(OWNER, PutRequest("mine", f"src/{i}", _body(b"x%d" % i)))
    calc, secret = await svc.create_par(OWNER, "mine", job="copy-prefix", expires=T0 + 60)
    with pytest.raises(InvalidArgument):
        await svc.start_par_job(calc, {"source": "src/", "destination": "src/sub/"})
    await svc.start_par_job(calc, {"source": "src/", "destination": "dst/"})
    with pytest.raises(Conflict):  # one run at a time
        await svc.start_par_job(calc, {"source": "src/", "destination": "dst/"})
    state = await _wait(svc, calc)
    assert (state.state, state.progress["copied"], state.result["failed"]) == ("done", 4, {})
    assert state.document()["args"] == {"source": "src/", "destination": "dst/"}
    read = await svc.get_object(OWNER, GetRequest("mine", "dst/2"))
    assert read.body is not None and b"".join([p async for p in read.body]) == b"x2"
    # stop: a fresh run is cancelled and says so; revoking stops a run too
    await svc.start_par_job(calc, {"source": "src/", "destination": "again/"})
    stopped = await svc.stop_par_job(calc)
    assert stopped is not None and stopped.state in ("stopped", "done")
    assert (await svc.par_job_status(calc)) == stopped
    await svc.start_par_job(calc, {"source": "src/", "destination": "third/"})
    await svc.revoke_par_with_secret(calc.id, secret)
    last = await svc.par_job_status(calc)
    assert last is not None and last.state in ("stopped", "done")


async def test_job_seen_and_stopped_from_another_process(
    svc: ObjectService, svc2: ObjectService, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(4):
        await svc.put_object(OWNER, PutRequest("mine", f"src/{i}", _body(b"x%d" % i)))
    calc, _ = await svc.create_par(OWNER, "mine", job="copy-prefix", expires=T0 + 60)
    copy = svc.copy_object

    async def held(who: Principal, req: CopyRequest) -> CopyResult:
        if req.src_key == "src/2":  # the first service's run hangs on its third object
            await asyncio.Event().wait()
        return await copy(who, req)

    monkeypatch.setattr(svc, "copy_object", held)
    await svc.start_par_job(calc, {"source": "src/", "destination": "dst/"})
    # the other process sees the progress the holder writes, and no second run starts
    state = await _until(svc2, calc, lambda s: s.progress.get("copied") == 2)
    assert (state.job, state.state, state.args) == (
        "copy-prefix",
        "running",
        {"source": "src/", "destination": "dst/"},
    )
    with pytest.raises(Conflict):
        await svc2.start_par_job(calc, {"source": "src/", "destination": "other/"})
    # a stop from the other process reaches the holder at its next write
    stopped = await svc2.stop_par_job(calc)
    assert stopped is not None and (stopped.state, stopped.progress) == ("stopped", {"copied": 2})
    assert await svc.par_job_status(calc) == stopped
    # a new run started there is watched from here
    await svc2.start_par_job(calc, {"source": "src/", "destination": "dst/"})
    state = await _wait(svc, calc)
    assert (state.state, state.progress, state.result) == ("done", {"copied": 4}, {"failed": {}})


async def test_stale_run_reported_failed_and_replaced(svc: ObjectService, clock: FakeClock) -> None:
    calc, _ = await svc.create_par(OWNER, "mine", job="verify", expires=T0 + 600)
    dead = ParJob(calc.id, "verify", {"prefix": ""}, "gone:1:abcd:1", started=T0, updated=T0)
    assert await svc.meta.start_par_job(dead, T0)  # a run of a process that then died
    state = await svc.par_job_status(calc)
    assert state is not None and (state.state, state.error) == ("running", "")
    with pytest.raises(Conflict):
        await svc.start_par_job(calc, {"prefix": ""})
    clock.advance(HEARTBEAT_TIMEOUT + 1)
    state = await svc.par_job_status(calc)
    assert state is not None and (state.state, state.error) == ("failed", STALE_ERROR)
    stopped = await asyncio.wait_for(svc.stop_par_job(calc), timeout=1)  # nothing to wait for
    assert stopped == state
    await svc.start_par_job(calc, {"prefix": ""})
    assert (await _wait(svc, calc)).state == "done"


async def test_job_state_swept_with_its_par(svc: ObjectService, clock: FakeClock) -> None:
    calc, _ = await svc.create_par(OWNER, "mine", job="verify", expires=T0 + 10)
    await svc.start_par_job(calc, {"prefix": ""})
    await _wait(svc, calc)
    svc.par_options = dataclasses.replace(svc.par_options, keep_expired=0)
    clock.advance(11)
    assert await svc.sweep_pars() == 1
    assert await svc.meta.get_par_job(calc.id) is None
