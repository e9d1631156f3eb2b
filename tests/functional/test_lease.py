"""Cluster-wide jobs gated by leases in a real SQLite metadata store."""

from __future__ import annotations

from pathlib import Path

from tessera.common.clock import FakeClock
from tessera.core.lease import Lease, process_id
from tessera.meta.sql import SqlMetadataStore


async def test_one_holder_then_takeover_after_expiry(tmp_path: Path) -> None:
    clock = FakeClock(1_000.0)
    meta = await SqlMetadataStore.connect(
        f"sqlite:///{tmp_path / 'meta.db'}", migrate=True, clock=clock
    )
    try:
        a, b = Lease(meta, "background", ttl=30), Lease(meta, "background", ttl=30)
        assert a.holder != b.holder and process_id() != a.holder
        assert await a.renew() and a()
        assert not await b.renew() and not b()
        clock.advance(20)
        assert await a.renew()  # renewed: valid until 1050
        clock.advance(25)
        assert not await b.renew()
        clock.advance(10)  # a died without renewing: expired
        assert await b.renew() and b()
        assert not await a.renew() and not a()
    finally:
        await meta.close()
