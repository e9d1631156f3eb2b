"""Contract of the PAR methods (and the job records of calculation PARs) of
:class:`tessera.meta.store.MetadataStore`, on
SQLite (a file in ``tmp_path``) and PostgreSQL (a throwaway server, one fresh
schema per test; skipped when the binaries are absent)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

import pgserver
from tessera.meta.sql import SqlMetadataStore
from tessera.meta.store import MetadataStore
from tessera.model.errors import Conflict, ParNotFound
from tessera.model.pars import Par, ParJob

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    try:
        with pgserver.postgres() as url:
            yield url
    except pgserver.Unavailable as e:
        pytest.skip(str(e))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    url: str = request.getfixturevalue("pg_url")
    schema = "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine.dispose()
    return f"{url}?options=-csearch_path%3D{schema}"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[SqlMetadataStore]:
    s = await SqlMetadataStore.connect(db_url)
    yield s
    await s.close()


def par(
    par_id: str,
    *,
    owner: str = "acct",
    bucket: str = "bkt",
    key: str | None = None,
    created: float = T0,
    expires: float = T0 + 3600,
) -> Par:
    return Par(
        id=par_id,
        owner=owner,
        bucket=bucket,
        key=key,
        readable=True,
        writeable=key is not None,
        listable=key is None,
        created=created,
        expires=expires,
        secret_hash="ab" * 32,
    )


async def test_create_get_round_trip(store: MetadataStore) -> None:
    full = replace(par("p1", key="dir/é \U0001f600"), job="verify", listable=False)
    await store.create_par(full)
    assert await store.get_par("p1") == full
    await store.create_par(par("p2"))
    got = await store.get_par("p2")
    assert got.key is None and got.listable and not got.writeable and not got.revoked


async def test_duplicate_id_conflicts(store: MetadataStore) -> None:
    await store.create_par(par("p1"))
    with pytest.raises(Conflict):
        await store.create_par(par("p1", bucket="other"))
    assert (await store.get_par("p1")).bucket == "bkt"


async def test_missing(store: MetadataStore) -> None:
    with pytest.raises(ParNotFound):
        await store.get_par("nope")
    with pytest.raises(ParNotFound):
        await store.revoke_par("nope")


async def test_list_by_owner_and_bucket(store: MetadataStore) -> None:
    await store.create_par(par("c", bucket="b2", created=T0 + 1))
    await store.create_par(par("a", bucket="b1", created=T0 + 2))
    await store.create_par(par("b", bucket="b1", created=T0 + 1))
    await store.create_par(par("z", owner="other", bucket="b1"))
    assert [p.id for p in await store.list_pars("acct")] == ["b", "a", "c"]
    assert [p.id for p in await store.list_pars("acct", "b1")] == ["b", "a"]
    assert [p.id for p in await store.list_pars("other")] == ["z"]
    assert await store.list_pars("acct", "b3") == []
    assert await store.list_pars("nobody") == []


async def test_revoke(store: MetadataStore) -> None:
    await store.create_par(par("p1"))
    revoked = await store.revoke_par("p1")
    assert revoked.revoked and revoked == replace(await store.get_par("p1"))
    assert (await store.revoke_par("p1")).revoked  # twice: harmless
    assert (await store.list_pars("acct"))[0].revoked


async def test_delete_expired(store: MetadataStore) -> None:
    for i in range(5):
        await store.create_par(par(f"e{i}", expires=T0 + i))
    await store.create_par(par("live", expires=T0 + 100))
    await store.revoke_par("e1")
    assert await store.delete_expired_pars(T0 + 3, limit=2) == 2  # e0, e1: oldest first
    assert {p.id for p in await store.list_pars("acct")} == {"e2", "e3", "e4", "live"}
    assert await store.delete_expired_pars(T0 + 3) == 1  # e2 (e3 is not before T0 + 3)
    assert await store.delete_expired_pars(T0 + 3) == 0
    with pytest.raises(ParNotFound):
        await store.get_par("e2")
    assert {p.id for p in await store.list_pars("acct")} == {"e3", "e4", "live"}


async def test_concurrent_creates_of_one_id(store: MetadataStore) -> None:
    results = await asyncio.gather(
        *(store.create_par(par("same", bucket=f"b{i}")) for i in range(6)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if r is not None)


# -- jobs of calculation PARs ----------------------------------------------------------------------
def job(par_id: str, holder: str = "h:1", *, updated: float = T0) -> ParJob:
    return ParJob(par_id, "copy-prefix", {"source": "s/", "destination": "d/"}, holder, T0, updated)


async def test_job_round_trip_and_updates(store: MetadataStore) -> None:
    await store.create_par(replace(par("p1"), job="copy-prefix"))
    assert await store.get_par_job("p1") is None
    first = replace(job("p1"), progress={"copied": 0}, result={"failed": {}})
    assert await store.start_par_job(first, T0 - 30)
    assert await store.get_par_job("p1") == first
    progress, result = {"copied": 2}, {"failed": {"s/é \U0001f600": "gone"}}
    assert (
        await store.update_par_job(
            "p1", "other", state="done", progress={}, result={}, error="", updated=T0 + 9
        )
        is None
    )  # not the holder: nothing changes
    assert await store.get_par_job("p1") == first
    assert (
        await store.update_par_job(
            "p1", "h:1", state="running", progress=progress, result=result, error="", updated=T0 + 1
        )
        is False
    )
    assert await store.get_par_job("p1") == replace(
        first, progress=progress, result=result, updated=T0 + 1
    )
    assert await store.request_par_job_stop("p1")
    assert (await store.get_par_job("p1")) == replace(
        first, progress=progress, result=result, updated=T0 + 1, stop_requested=True
    )
    assert (
        await store.update_par_job(
            "p1", "h:1", state="stopped", progress=progress, result={}, error="x", updated=T0 + 2
        )
        is True
    )  # the flag is kept and read back
    final = await store.get_par_job("p1")
    assert final is not None and (final.state, final.error, final.result) == ("stopped", "x", {})
    assert not await store.request_par_job_stop("p1")  # the run is over
    assert not await store.request_par_job_stop("p2")  # never ran
    assert (
        await store.update_par_job(
            "p2", "h:1", state="done", progress={}, result={}, error="", updated=T0
        )
        is None
    )


async def test_job_start_refused_while_a_live_run_exists(store: MetadataStore) -> None:
    await store.create_par(replace(par("p1"), job="copy-prefix"))
    running = job("p1", "h:1", updated=T0 + 10)
    assert await store.start_par_job(running, T0)
    assert not await store.start_par_job(job("p1", "h:2"), T0 + 10)  # updated == stale_before
    assert await store.get_par_job("p1") == running
    assert await store.start_par_job(job("p1", "h:3"), T0 + 10.5)  # older: its process stopped
    assert (await store.get_par_job("p1")) == job("p1", "h:3")
    await store.update_par_job(
        "p1", "h:3", state="failed", progress={}, result={}, error="e", updated=T0 + 20
    )
    assert await store.start_par_job(job("p1", "h:4", updated=T0 + 21), T0)  # over: replaced
    fresh = await store.get_par_job("p1")
    assert fresh == job("p1", "h:4", updated=T0 + 21) and not fresh.stop_requested


async def test_job_needs_its_par(store: MetadataStore) -> None:
    with pytest.raises(ParNotFound):
        await store.start_par_job(job("nope"), T0)
    assert await store.get_par_job("nope") is None


async def test_job_records_swept_with_their_pars(store: MetadataStore) -> None:
    await store.create_par(replace(par("old", expires=T0 + 1), job="verify"))
    await store.create_par(replace(par("new", expires=T0 + 100), job="verify"))
    assert await store.start_par_job(job("old"), T0)
    assert await store.start_par_job(job("new"), T0)
    assert await store.delete_expired_pars(T0 + 50) == 1
    assert await store.get_par_job("old") is None
    assert await store.get_par_job("new") == job("new")
    with pytest.raises(ParNotFound):  # a job cannot outlive its PAR
        await store.start_par_job(job("old"), T0)


async def test_concurrent_job_starts(store: MetadataStore) -> None:
    await store.create_par(replace(par("p1"), job="copy-prefix"))
    results = await asyncio.gather(
        *(store.start_par_job(job("p1", f"h:{i}"), T0 - 30) for i in range(6))
    )
    assert sum(results) == 1
    stored = await store.get_par_job("p1")
    assert stored is not None and stored.holder == f"h:{results.index(True)}"
