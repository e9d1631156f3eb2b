"""Contract of the PAR methods of :class:`tessera.meta.store.MetadataStore`, on
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
from tessera.model.pars import Par

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
