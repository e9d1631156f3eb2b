"""Delimiter listings read few rows beneath each common prefix (a real SQLite
store): the cost of a page of common prefixes must not grow with the number of
keys under each prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tessera.common.streams import from_bytes
from tessera.core.requests import ListRequest, Principal, PutRequest, VersionListRequest
from tessera.core.service import ObjectService
from tessera.data.store import SegmentStore
from tessera.data.volume import LocalVolume
from tessera.meta.sql import SqlMetadataStore

ROOT = Principal("root")


class CountingStore(SqlMetadataStore):
    rows = 0

    async def list_latest(self, *a: object, **kw: object):  # type: ignore[no-untyped-def, override]
        out = await super().list_latest(*a, **kw)  # type: ignore[arg-type]
        self.rows += len(out)
        return out

    async def list_versions(self, *a: object, **kw: object):  # type: ignore[no-untyped-def, override]
        out = await super().list_versions(*a, **kw)  # type: ignore[arg-type]
        self.rows += len(out)
        return out


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[ObjectService, CountingStore]]:
    meta = await CountingStore.connect(f"sqlite:///{tmp_path / 'meta.db'}", migrate=True)
    assert isinstance(meta, CountingStore)
    svc = ObjectService(meta, SegmentStore([LocalVolume(tmp_path / "d0", "d0")]))
    await svc.ensure_account("root", "root", [("AKROOT00000000000001", "secret" * 7)])
    await svc.create_bucket(ROOT, "bkt")
    for p in range(30):
        for k in range(60):
            await svc.put_object(ROOT, PutRequest("bkt", f"p{p:02}/k{k:02}", from_bytes(b"x")))
    await svc.put_object(ROOT, PutRequest("bkt", "top", from_bytes(b"x")))
    yield svc, meta
    await svc.close()


async def test_delimiter_pages_skip_the_keys_beneath(
    service: tuple[ObjectService, CountingStore],
) -> None:
    svc, meta = service
    seen: list[str] = []
    after = ""
    while True:
        meta.rows = 0
        page = await svc.list_objects(ROOT, ListRequest("bkt", "", "/", after, max_keys=7))
        assert meta.rows <= 7 * 4 + 60  # a few rows per entry, not the 60 keys of each
        seen += page.common_prefixes + [o.key for o in page.objects]
        if not page.truncated:
            break
        after = page.next_after
    assert seen == [f"p{p:02}/" for p in range(30)] + ["top"]
    meta.rows = 0
    page = await svc.list_objects(ROOT, ListRequest("bkt", "", "/", "", max_keys=1000))
    assert len(page.common_prefixes) == 30 and [o.key for o in page.objects] == ["top"]
    assert meta.rows < 30 * 6  # ~4 rows per prefix, not 60
    meta.rows = 0
    vpage = await svc.list_versions(ROOT, VersionListRequest("bkt", "", "/", max_keys=1000))
    assert len(vpage.common_prefixes) == 30 and len(vpage.versions) == 1
    assert meta.rows < 30 * 6


@pytest.mark.parametrize("max_keys", [1, 59, 60, 61, 1000, 1800, 1801, 1802])
async def test_plain_pages_walk_every_key_once(
    service: tuple[ObjectService, CountingStore], max_keys: int
) -> None:
    """Without a delimiter every row is an entry: pages of exactly ``max_keys``
    (the last one shorter), truncated exactly when a key is left, each page
    reading at most one row more than it returns."""
    svc, meta = service
    everything = sorted([f"p{p:02}/k{k:02}" for p in range(30) for k in range(60)] + ["top"])
    seen: list[str] = []
    after = ""
    for _ in range(len(everything) + 1):
        meta.rows = 0
        page = await svc.list_objects(ROOT, ListRequest("bkt", "", "", after, max_keys))
        keys = [o.key for o in page.objects]
        assert meta.rows <= max_keys + 1 and not page.common_prefixes
        seen += keys
        assert page.truncated == (len(seen) < len(everything))
        assert len(keys) == (
            max_keys if page.truncated else len(everything) - len(seen) + len(keys)
        )
        if not page.truncated:
            break
        assert page.next_after == keys[-1]
        after = page.next_after
    assert seen == everything
    page = await svc.list_objects(ROOT, ListRequest("bkt", "p07/", "", "p07/k30", 1000))
    assert [o.key for o in page.objects] == [f"p07/k{k:02}" for k in range(31, 60)]
    assert not page.truncated and page.next_after == "p07/k59"


async def test_short_seeks_run_as_lookups(
    service: tuple[ObjectService, CountingStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delimiter walk's seeks past each prefix ask for a few rows: they run as
    point lookups (no reader-thread hand-off); full pages stay reads."""
    svc, meta = service
    used: list[str] = []
    runner = meta._db
    for name in ("read", "lookup"):
        original = getattr(runner, name)

        def wrap(*a: object, _name: str = name, _f: object = original, **kw: object) -> object:
            used.append(_name)
            return _f(*a, **kw)  # type: ignore[operator]

        monkeypatch.setattr(runner, name, wrap)
    page = await svc.list_objects(ROOT, ListRequest("bkt", "", "/", "", max_keys=1000))
    assert len(page.common_prefixes) == 30
    assert used.count("lookup") >= 25 and used.count("read") <= 2, used
    used.clear()
    vpage = await svc.list_versions(ROOT, VersionListRequest("bkt", "", "/", max_keys=1000))
    assert len(vpage.common_prefixes) == 30
    assert used.count("lookup") >= 25 and used.count("read") <= 2, used
    used.clear()
    await svc.list_objects(ROOT, ListRequest("bkt", "", "", "", max_keys=1000))
    assert used == ["read"]  # a full page, and whether more follows, in one seek


async def test_a_long_delimiter_walk_lets_other_requests_run(
    service: tuple[ObjectService, CountingStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeks that complete without yielding (point lookups) are interleaved with
    other tasks: never more than 16 seeks in a row without the loop running
    something else."""
    import asyncio
    import itertools

    svc, meta = service
    ticks = 0
    seen: list[int] = []
    original = meta.list_latest

    async def counting(*a: object, **kw: object):  # type: ignore[no-untyped-def]
        seen.append(ticks)
        return await original(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(meta, "list_latest", counting)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(ticker())
    try:
        page = await svc.list_objects(ROOT, ListRequest("bkt", "", "/", "", max_keys=1000))
    finally:
        task.cancel()
    assert len(page.common_prefixes) == 30 and len(seen) >= 25
    run = longest = 1
    for before, now in itertools.pairwise(seen):
        run = run + 1 if now == before else 1
        longest = max(longest, run)
    assert longest <= 16
