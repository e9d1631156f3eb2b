"""Operator endpoints under ``/_tessera/v1/admin/`` (JSON, SigV4, root only),
routes of the extension API (so they are in its OpenAPI document and answer
its JSON errors).

* ``GET  heal`` — the healer's counters (current or last pass, rate, totals), from
  whichever process ran that pass (``holder``; :mod:`tessera.core.status`);
* ``POST heal?mode=heal|verify&deep=0|1&wait=0|1`` — run a full pass (``verify``
  only counts; ``deep`` re-reads every fragment). With ``wait=1`` the answer is
  the finished pass's counters; otherwise the pass runs in the background (202);
* ``GET  scrub`` — the scrubber's counters (one-node server only; the scrubber runs
  in worker 0, any worker answers);
* ``GET  servers`` — the cluster map (gateway only);
* ``POST servers/<id>?state=active|draining|removed`` — the operator's intent
  for a chunk server (drain moves its fragments away; removed rebuilds them).

Requests are signed like S3 requests (SigV4 with service ``s3``), by an access
key of the root account; anyone else gets 403 AccessDenied. The server wires
what exists through :class:`AdminHooks`; a missing hook answers 501.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from aiohttp import web

from tessera.gateway.extension import ExtRequest, Route, json_response
from tessera.protocol.s3.errors import S3Error

log = logging.getLogger(__name__)

ROOT_ACCOUNT = "root"


@dataclass(frozen=True)
class AdminHooks:
    """What the admin endpoints can reach (None: not available on this node)."""

    heal_status: Callable[[], Awaitable[dict[str, Any]]] | None = None
    heal_pass: Callable[..., Awaitable[Any]] | None = None
    scrub_status: Callable[[], Awaitable[dict[str, Any]]] | None = None
    cluster: Callable[[], list[dict[str, Any]]] | None = None
    set_server_state: Callable[[str, str], Awaitable[Any]] | None = None


ADMIN_KEY: web.AppKey[AdminHooks] = web.AppKey("admin", AdminHooks)
"""Where the application keeps its :class:`AdminHooks` (an empty set when absent)."""

_background: set[asyncio.Task[Any]] = set()


def _hooks(req: ExtRequest) -> AdminHooks:
    """The node's hooks, once the caller is known to be root (AccessDenied otherwise)."""
    if req.principal.account_id != ROOT_ACCOUNT:
        raise S3Error("AccessDenied", "Admin endpoints need the root account's credentials")
    return req.app.get(ADMIN_KEY) or AdminHooks()


def _need(hook: Any, what: str) -> Any:
    if hook is None:
        raise S3Error("NotImplemented", f"{what} is not available on this node", status=501)
    return hook


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


async def _heal_status(req: ExtRequest) -> Any:
    return await _need(_hooks(req).heal_status, "healing")()


async def _heal_run(req: ExtRequest) -> Any:
    run = _need(_hooks(req).heal_pass, "healing")
    mode = req.query.get("mode", "heal")
    if mode not in ("heal", "verify"):
        raise S3Error("InvalidArgument", "mode must be heal or verify")
    call = run(repair=mode == "heal", deep=req.flag("deep"))
    if req.flag("wait"):
        return _plain(await call)
    task = asyncio.ensure_future(call)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return json_response({"started": mode}, status=202)


async def _scrub_status(req: ExtRequest) -> Any:
    return await _need(_hooks(req).scrub_status, "scrubbing")()


async def _servers(req: ExtRequest) -> Any:
    return _need(_hooks(req).cluster, "the cluster map")()


async def _set_server(req: ExtRequest) -> Any:
    set_state = _need(_hooks(req).set_server_state, "the cluster map")
    server_id = req.params["server"]
    info = await set_state(server_id, req.query.get("state", ""))
    log.info("chunk server %s set to %s by the operator", server_id, req.query.get("state"))
    return _plain(info)


ROUTES: list[Route] = [
    Route("GET", "admin/heal", _heal_status, "The healer's counters", "admin"),
    Route(
        "POST",
        "admin/heal",
        _heal_run,
        "Run a full healing (or verify) pass",
        "admin",
        query=("mode", "deep", "wait"),
    ),
    Route("GET", "admin/scrub", _scrub_status, "The scrubber's counters", "admin"),
    Route("GET", "admin/servers", _servers, "The cluster map: chunk servers", "admin"),
    Route(
        "POST",
        "admin/servers/{server}",
        _set_server,
        "Set a chunk server's state (active, draining, removed)",
        "admin",
        query=("state",),
    ),
]
