"""The cluster map: chunk servers, their disks and their state (table ``servers``).

A chunk server registers at start-up and heartbeats every few seconds; the
operator changes its state (``active``/``draining``/``removed``) or deletes it.
The map is small (one row per machine) and read whole.

Disk ids are unique across the cluster (manifests name a fragment's disk by id
alone). The disks are JSON text in their server's row, so no index can enforce
that: :meth:`ClusterMixin.register_server` checks it against every other
server's disks while holding a cluster-wide lock (PostgreSQL: an advisory
transaction lock; SQLite: the single writer), so two registrations cannot both
claim one disk. Heartbeats only change capacities, never disk ids, and take
the server's row lock (``FOR UPDATE``) so that a heartbeat racing a
re-registration cannot write back the disk list it read before.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tessera.meta.sql.dialects import dialect_for
from tessera.meta.sql.schema import leases, servers, statuses
from tessera.meta.sql.transactions import StoreBase
from tessera.model.cluster import SERVER_STATES, DiskInfo, ServerInfo, SharedStatus
from tessera.model.errors import InvalidArgument, ServerNotFound

_s = servers.c
SERVER_COLUMNS = tuple(servers.c)
_ID: sa.BindParameter[str] = sa.bindparam("id")
_GET = sa.select(*SERVER_COLUMNS).where(_s.id == _ID)
_LIST = sa.select(*SERVER_COLUMNS).order_by(_s.id)
_OTHER_DISKS = sa.select(_s.id, _s.disks).where(_s.id != _ID)
_DISKS_FOR_UPDATE = sa.select(_s.disks).where(_s.id == _ID).with_for_update()
_HEARTBEAT = (
    sa.update(servers)
    .where(_s.id == _ID)
    .values(disks=sa.bindparam("disks"), heartbeat=sa.bindparam("now"))
)
_SET_STATE = (
    sa.update(servers)
    .where(_s.id == _ID)
    .values(state=sa.bindparam("state"))
    .returning(*SERVER_COLUMNS)
)
_DELETE = sa.delete(servers).where(_s.id == _ID)
_l = leases.c
_LEASE = sa.select(_l.holder, _l.expires).where(_l.name == sa.bindparam("name"))
_LEASE_INSERT = sa.insert(leases).values(
    name=sa.bindparam("name"), holder=sa.bindparam("holder"), expires=sa.bindparam("expires")
)
_LEASE_TAKE = (
    sa.update(leases)
    .where(_l.name == sa.bindparam("name"))
    .values(holder=sa.bindparam("holder"), expires=sa.bindparam("expires"))
)
_t = statuses.c
_STATUS = sa.select(_t.holder, _t.body, _t.updated).where(_t.name == sa.bindparam("name"))
_REFRESHED = ("url", "zone", "disks", "heartbeat")
"""Columns a re-registration replaces; ``state`` and ``registered`` are kept."""


@functools.cache
def _register_statement(dialect_name: str) -> Any:
    """``INSERT ... ON CONFLICT (id) DO UPDATE`` of the refreshed columns, returning the row."""
    insert = dialect_for(dialect_name).insert(servers)
    insert = insert.values({c.name: sa.bindparam(c.name) for c in servers.c})
    return insert.on_conflict_do_update(
        index_elements=[_s.id], set_={name: insert.excluded[name] for name in _REFRESHED}
    ).returning(*SERVER_COLUMNS)


@functools.cache
def _put_status_statement(dialect_name: str) -> Any:
    """``INSERT ... ON CONFLICT (name) DO UPDATE`` of holder, body and updated."""
    insert = dialect_for(dialect_name).insert(statuses)
    insert = insert.values({c.name: sa.bindparam(c.name) for c in statuses.c})
    return insert.on_conflict_do_update(
        index_elements=[_t.name],
        set_={n: insert.excluded[n] for n in ("holder", "body", "updated")},
    )


def dump_disks(disks: Sequence[DiskInfo]) -> str:
    """Compact JSON text: ``[{"id", "weight", "total", "free"}, ...]`` in the given order."""
    return json.dumps(
        [{"id": d.id, "weight": d.weight, "total": d.total, "free": d.free} for d in disks],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def load_disks(text: str | None) -> tuple[DiskInfo, ...]:
    if not text:
        return ()
    return tuple(
        DiskInfo(d["id"], float(d["weight"]), int(d["total"]), int(d["free"]))
        for d in json.loads(text)
    )


def server_from_row(row: Sequence[Any]) -> ServerInfo:
    """From a row of :data:`SERVER_COLUMNS`."""
    id_, url, zone, disks, state, heartbeat, registered = row
    return ServerInfo(id_, url, zone, load_disks(disks), state, heartbeat, registered)


def _missing(server_id: str) -> ServerNotFound:
    return ServerNotFound("No chunk server with that id in the cluster map.", server_id=server_id)


def _check_disk_ids(server: ServerInfo, others: Sequence[Any]) -> None:
    """Raise InvalidArgument when ``server`` lists a disk id twice, or one that
    another server (rows of ``(id, disks)``) already has."""
    seen: set[str] = set()
    for disk in server.disks:
        if disk.id in seen:
            raise InvalidArgument(
                f"Disk {disk.id!r} is listed twice by server {server.id!r}.",
                server_id=server.id,
                disk_id=disk.id,
            )
        seen.add(disk.id)
    for other_id, disks in others:
        for disk in load_disks(disks):
            if disk.id in seen:
                raise InvalidArgument(
                    f"Disk {disk.id!r} already belongs to server {other_id!r}; "
                    "disk ids must be unique in the cluster.",
                    server_id=server.id,
                    disk_id=disk.id,
                    other_server_id=other_id,
                )


def _refresh_capacities(stored: tuple[DiskInfo, ...], reported: Sequence[DiskInfo]) -> str:
    """The stored disks with ``total`` and ``free`` of the reported disks of the
    same id; weights, order and disks not reported are kept, unknown ids ignored."""
    fresh = {d.id: d for d in reported}
    merged = []
    for disk in stored:
        new = fresh.get(disk.id)
        merged.append(disk if new is None else DiskInfo(disk.id, disk.weight, new.total, new.free))
    return dump_disks(merged)


class ClusterMixin(StoreBase):
    async def register_server(self, server: ServerInfo) -> ServerInfo:
        """Insert or refresh the chunk server ``server.id`` and return the stored record.

        A new server is stored ``active`` with ``registered`` and ``heartbeat``
        both ``server.heartbeat`` (``state`` and ``registered`` of the input are
        ignored). An existing one gets ``url``, ``zone``, ``disks`` and
        ``heartbeat`` replaced and keeps its ``state`` and ``registered`` (a
        removed server stays removed). Raises InvalidArgument, changing nothing,
        when a disk id is listed twice or already belongs to another server."""
        d = self._dialect
        stmt = _register_statement(d.name)
        params = {
            "id": server.id,
            "url": server.url,
            "zone": server.zone,
            "disks": dump_disks(server.disks),
            "state": SERVER_STATES[0],
            "heartbeat": server.heartbeat,
            "registered": server.heartbeat,
        }

        def tx(conn: Connection) -> ServerInfo:
            d.lock(conn, "cluster-map")
            _check_disk_ids(server, d.rows(conn, _OTHER_DISKS, {"id": server.id}))
            return server_from_row(d.first(conn, stmt, params))

        return await self._db.write(tx)

    async def heartbeat_server(
        self, server_id: str, disks: tuple[DiskInfo, ...], now: float
    ) -> bool:
        """Record a heartbeat at ``now`` with fresh capacities (``total``, ``free``)
        of the server's disks, matched by id; stored weights are kept, disks not
        reported keep their last capacities and unknown disk ids are ignored (a
        server whose disks changed registers again). ``state`` is never changed
        (a removed server's heartbeat is recorded too). Returns False, changing
        nothing, when the server is not in the map (it should register again)."""
        d = self._dialect

        def tx(conn: Connection) -> bool:
            row = d.first(conn, _DISKS_FOR_UPDATE, {"id": server_id})
            if row is None:
                return False
            merged = _refresh_capacities(load_disks(row[0]), disks)
            d.execute(conn, _HEARTBEAT, {"id": server_id, "disks": merged, "now": now})
            return True

        return await self._db.write(tx)

    async def list_servers(self) -> list[ServerInfo]:
        """Every server in the map, ordered by id (UTF-8 byte order)."""
        rows = self._dialect.rows

        def tx(conn: Connection) -> list[ServerInfo]:
            return [server_from_row(r) for r in rows(conn, _LIST)]

        return await self._db.read(tx)

    async def get_server(self, server_id: str) -> ServerInfo:
        """Raises ServerNotFound."""
        first = self._dialect.first

        def tx(conn: Connection) -> Any:
            return first(conn, _GET, {"id": server_id})

        row = await self._db.read(tx)
        if row is None:
            raise _missing(server_id)
        return server_from_row(row)

    async def set_server_state(self, server_id: str, state: str) -> ServerInfo:
        """Set the operator state and return the updated record. Raises
        InvalidArgument for a state not in SERVER_STATES, ServerNotFound."""
        if state not in SERVER_STATES:
            raise InvalidArgument(
                f"Server state must be one of {', '.join(SERVER_STATES)}.",
                server_id=server_id,
                state=state,
            )
        first = self._dialect.first

        def tx(conn: Connection) -> Any:
            return first(conn, _SET_STATE, {"id": server_id, "state": state})

        row = await self._db.write(tx)
        if row is None:
            raise _missing(server_id)
        return server_from_row(row)

    async def delete_server(self, server_id: str) -> None:
        """Forget the server (its disk ids become free for another server).
        Raises ServerNotFound."""
        execute = self._dialect.execute

        def tx(conn: Connection) -> int:
            return execute(conn, _DELETE, {"id": server_id})

        if await self._db.write(tx) == 0:
            raise _missing(server_id)


class LeasesMixin(StoreBase):
    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until now + ``ttl``.

        True when ``holder`` holds it afterwards: it was free, expired, or
        already ``holder``'s (renewed). False while another holder's lease runs.
        Atomic: two callers never both get True for the same unexpired lease."""
        d = self._dialect
        now = self._clock.now()
        params = {"name": name, "holder": holder, "expires": now + ttl}

        def tx(conn: Connection) -> bool:
            d.lock(conn, "lease", name)
            row = d.first(conn, _LEASE, {"name": name})
            if row is None:
                d.execute(conn, _LEASE_INSERT, params)
                return True
            if row[0] == holder or row[1] < now:
                d.execute(conn, _LEASE_TAKE, params)
                return True
            return False

        return await self._db.write(tx)


class StatusesMixin(StoreBase):
    async def put_status(self, name: str, holder: str, body: dict[str, Any]) -> None:
        """Store ``body`` (JSON-serialisable) as the status ``name``, published by
        ``holder`` now, replacing any earlier one. Atomic (one upsert)."""
        stmt = _put_status_statement(self._dialect.name)
        params = {
            "name": name,
            "holder": holder,
            "body": json.dumps(body, separators=(",", ":")),
            "updated": self._clock.now(),
        }
        execute = self._dialect.execute

        def tx(conn: Connection) -> int:
            return execute(conn, stmt, params)

        await self._db.write(tx)

    async def get_status(self, name: str) -> SharedStatus | None:
        """The status ``name`` as last published; None when it never was."""
        first = self._dialect.first

        def tx(conn: Connection) -> Any:
            return first(conn, _STATUS, {"name": name})

        row = await self._db.read(tx)
        if row is None:
            return None
        return SharedStatus(name, row[0], json.loads(row[1]), row[2])
