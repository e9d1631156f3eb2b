"""Block reference counts and garbage claiming.

A write transaction collects the references it adds and releases into one
:class:`RefDelta` and applies it once, at its end, with :func:`apply_refs`: one
executemany of one upsert, whatever the number of fragments. Pairs whose net
change is zero (a completed upload reusing its parts' blocks) are not touched.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tessera.meta.sql.dialects import Dialect
from tessera.meta.sql.schema import blocks
from tessera.meta.sql.transactions import StoreBase

_b = blocks.c


class RefDelta:
    """Net reference changes of one transaction, by ``(volume, block)``."""

    __slots__ = ("_d",)

    def __init__(self) -> None:
        self._d: dict[tuple[str, str], int] = {}

    def add(self, refs: Iterable[tuple[str, str]]) -> None:
        d = self._d
        for ref in refs:
            d[ref] = d.get(ref, 0) + 1

    def release(self, refs: Iterable[tuple[str, str]]) -> None:
        d = self._d
        for ref in refs:
            d[ref] = d.get(ref, 0) - 1

    def params(self, now: float) -> list[dict[str, Any]]:
        """Upsert parameters, sorted by pair (a fixed lock order), zero deltas dropped."""
        return [
            {
                "volume": volume,
                "block": block,
                "delta": delta,
                "initial": max(delta, 0),
                "initial_zero": now if delta <= 0 else None,
                "now": now,
            }
            for (volume, block), delta in sorted(self._d.items())
            if delta
        ]


def apply_refs(conn: Connection, dialect: Dialect, delta: RefDelta, now: float) -> None:
    """Apply ``delta`` in the current transaction (one statement, executemany)."""
    params = delta.params(now)
    if params:
        dialect.executemany(conn, dialect.adjust_refs_sql, params)


_REFCOUNT = sa.select(_b.refs).where(_b.volume == sa.bindparam("v"), _b.block == sa.bindparam("b"))


@functools.cache
def _claim_statement(skip_locked: bool) -> Any:
    candidates = (
        sa.select(_b.volume, _b.block)
        .where(_b.refs == sa.literal_column("0"), _b.zero_since < sa.bindparam("before"))
        .order_by(_b.zero_since)
        .limit(sa.bindparam("n", type_=sa.Integer))
    )
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        sa.delete(blocks)
        .where(
            sa.tuple_(_b.volume, _b.block).in_(candidates),
            _b.refs == sa.literal_column("0"),
        )
        .returning(_b.volume, _b.block)
    )


class BlocksMixin(StoreBase):
    async def known_blocks(self, volume: str, names: Sequence[str]) -> set[str]:
        """The ``names`` that have a reference row on ``volume`` (any count, zero
        included: those are the garbage collector's). A stored block that is not
        known is an orphan: written by a writer that never committed."""
        if not names:
            return set()

        def tx(conn: Connection) -> set[str]:
            out: set[str] = set()
            for i in range(0, len(names), 500):
                # Through SQLAlchemy, not the precompiled fast path: the IN list
                # varies in length (an occasional scan, not a hot path).
                stmt = sa.select(_b.block).where(
                    _b.volume == volume, _b.block.in_(list(names[i : i + 500]))
                )
                out.update(r[0] for r in conn.execute(stmt))
            return out

        return await self._db.read(tx)

    async def block_refcount(self, volume: str, block: str) -> int:
        """Current reference count (0 when unknown)."""

        scalar = self._dialect.scalar

        def tx(conn: Connection) -> int:
            return int(scalar(conn, _REFCOUNT, {"v": volume, "b": block}) or 0)

        return await self._db.read(tx)

    async def claim_garbage(
        self, dropped_before: float, limit: int = 1000
    ) -> list[tuple[str, str]]:
        """Atomically forget and return up to ``limit`` ``(volume, block)`` pairs
        whose count has been zero since strictly before ``dropped_before``; the
        longest-dropped are chosen first (the list itself is unordered). On PostgreSQL rows locked by a concurrent writer are skipped
        (``SKIP LOCKED``), so collectors never wait on, nor steal from, writers."""
        if limit <= 0:
            return []
        d = self._dialect
        stmt = _claim_statement(d.name == "postgresql")
        params = {"before": dropped_before, "n": limit}

        def tx(conn: Connection) -> list[tuple[str, str]]:
            return [(r[0], r[1]) for r in d.rows(conn, stmt, params)]

        return await self._db.write(tx)
