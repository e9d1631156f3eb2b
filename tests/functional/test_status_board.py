"""Shared status documents (core/status.py) between "processes": boards over one
real SQLite metadata store, each with its own holder and snapshot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tessera.common.clock import FakeClock
from tessera.core.status import StatusBoard, is_running
from tessera.meta.sql import SqlMetadataStore

T0 = 1_700_000_000.0
IDLE = {"running": False, "started": None, "rows": 0}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def meta(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqlMetadataStore]:
    store = await SqlMetadataStore.connect(f"sqlite:///{tmp_path / 'meta.db'}", clock=clock)
    yield store
    await store.close()


class Counters:
    """What a healer's stats look like to its board."""

    def __init__(self) -> None:
        self.d: dict[str, Any] = dict(IDLE)

    def snapshot(self) -> dict[str, Any]:
        return dict(self.d)


def board(meta: SqlMetadataStore, clock: FakeClock, holder: str, c: Counters | None) -> StatusBoard:
    snap = c.snapshot if c is not None else None
    return StatusBoard(meta, "heal", snap, idle=IDLE, holder=holder, clock=clock)


async def test_the_pass_runner_publishes_and_any_process_reads_it(
    meta: SqlMetadataStore, clock: FakeClock
) -> None:
    a_stats, b_stats = Counters(), Counters()
    a, b = board(meta, clock, "host:1", a_stats), board(meta, clock, "host:2", b_stats)
    reader = board(meta, clock, "host:3", None)  # a process that never runs passes
    assert await reader.read() == {**IDLE, "holder": None, "updated": None, "interrupted": False}
    assert not await b.publish()  # never ran a pass: writes nothing

    a_stats.d.update(running=True, started=T0, rows=10)
    assert await a.publish()
    assert not await a.publish()  # unchanged
    seen = await reader.read()
    assert seen["rows"] == 10 and seen["running"] is True
    assert (seen["holder"], seen["updated"], seen["interrupted"]) == ("host:1", T0, False)
    assert not await b.publish()  # b's idle counters do not overwrite a's pass

    clock.advance(3)
    a_stats.d.update(running=False, rows=12)  # a's pass ends; a has not published yet
    assert (await a.read())["rows"] == 12  # its own newer view, at once
    assert (await reader.read())["rows"] == 10
    assert await a.publish()
    assert (await reader.read())["rows"] == 12

    clock.advance(60)
    b_stats.d.update(running=True, started=T0 + 63, rows=1)  # a later pass, in b
    assert (await b.read())["holder"] == "host:2"
    assert (await a.read())["rows"] == 12  # not published yet
    await b.publish()
    seen = await a.read()  # a's local pass is older than the shared one
    assert (seen["holder"], seen["rows"], seen["started"]) == ("host:2", 1, T0 + 63)


async def test_a_running_pass_nobody_refreshes_is_interrupted(
    meta: SqlMetadataStore, clock: FakeClock
) -> None:
    stats = Counters()
    runner, reader = board(meta, clock, "host:1", stats), board(meta, clock, "host:2", None)
    stats.d.update(running=True, started=T0, rows=5)
    await runner.publish()
    clock.advance(reader.stale_after - 1)
    assert (await reader.read())["interrupted"] is False
    clock.advance(2)  # the runner died: its document was not refreshed in time
    seen = await reader.read()
    assert seen["interrupted"] is True and seen["running"] is False and seen["rows"] == 5
    stats.d.update(running=False)
    await runner.publish()
    assert (await reader.read())["interrupted"] is False  # a finished pass is never stale


async def test_run_publishes_changes_and_refreshes_a_long_pass(
    meta: SqlMetadataStore, clock: FakeClock
) -> None:
    stats = Counters()
    b = StatusBoard(
        meta, "heal", stats.snapshot, holder="h", clock=clock, interval=0.005, stale_after=0.03
    )
    task = asyncio.create_task(b.run())
    try:
        stats.d.update(running=True, started=T0, rows=1)
        for _ in range(400):  # bounded: until the change is published
            got = await meta.get_status("heal")
            if got is not None and got.body["rows"] == 1:
                break
            await asyncio.sleep(0.005)
        else:
            pytest.fail("a changed snapshot was not published")
        clock.advance(10)  # the pass runs on with the same counters
        for _ in range(400):  # ... and is republished so that it does not look stale
            got = await meta.get_status("heal")
            if got is not None and got.updated == T0 + 10:
                break
            await asyncio.sleep(0.005)
        else:
            pytest.fail("a running pass's document was not refreshed")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_running_means_the_flag_or_started_and_not_finished() -> None:
    assert is_running({"running": True, "started": None})
    assert not is_running({"running": False, "started": 1.0, "finished": None})
    assert is_running({"started": 1.0, "finished": None})  # the scrubber's stats
    assert not is_running({"started": 1.0, "finished": 2.0})
    assert not is_running({"started": None, "finished": None})
