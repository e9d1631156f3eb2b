"""Operator endpoints under ``/_tessera/v1/admin/`` (JSON, SigV4, root only).

* ``GET  heal`` — the healer's counters (current or last pass, rate, totals);
* ``POST heal?mode=heal|verify&deep=0|1&wait=0|1`` — run a full pass (``verify``
  only counts; ``deep`` re-reads every fragment). With ``wait=1`` the answer is
  the finished pass's counters; otherwise the pass runs in the background (202);
* ``GET  scrub`` — the scrubber's counters (one-node server only);
* ``GET  servers`` — the cluster map (gateway only);
* ``POST servers/<id>?state=active|draining|removed`` — the operator's intent
  for a chunk server (drain moves its fragments away; removed rebuilds them).

Requests are signed like S3 requests (SigV4 with service ``s3``), by an access
key of the root account; anyone else gets 403 AccessDenied. The server wires
what exists through :class:`AdminHooks`; a missing hook answers 501.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from aiohttp import web

from tessera.core.requests import Principal
from tessera.protocol.s3.errors import S3Error

log = logging.getLogger(__name__)

PREFIX = "/_tessera/v1/admin/"
ROOT_ACCOUNT = "root"


@dataclass(frozen=True)
class AdminHooks:
    """What the admin endpoints can reach (None: not available on this node)."""

    heal_status: Callable[[], dict[str, Any]] | None = None
    heal_pass: Callable[..., Awaitable[Any]] | None = None
    scrub_status: Callable[[], dict[str, Any]] | None = None
    cluster: Callable[[], list[dict[str, Any]]] | None = None
    set_server_state: Callable[[str, str], Awaitable[Any]] | None = None


_background: set[asyncio.Task[Any]] = set()


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(doc, indent=1, default=str).encode(),
        content_type="application/json",
    )


def _need(hook: Any, what: str) -> Any:
    if hook is None:
        raise S3Error("NotImplemented", f"{what} is not available on this node", status=501)
    return hook


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "0").lower()
    if value not in ("0", "1", "true", "false", ""):
        raise S3Error("InvalidArgument", f"{name} must be 0 or 1")
    return value in ("1", "true")


async def handle(
    request: web.Request, hooks: AdminHooks, principal: Principal, query: dict[str, str]
) -> web.Response:
    """Answer one admin request (see the module docstring). Raises S3Error."""
    if principal.account_id != ROOT_ACCOUNT:
        raise S3Error("AccessDenied", "Admin endpoints need the root account's credentials")
    path = request.path[len(PREFIX) :].strip("/")
    method = request.method
    if path == "heal" and method == "GET":
        return _json(_need(hooks.heal_status, "healing")())
    if path == "heal" and method == "POST":
        run = _need(hooks.heal_pass, "healing")
        mode = query.get("mode", "heal")
        if mode not in ("heal", "verify"):
            raise S3Error("InvalidArgument", "mode must be heal or verify")
        call = run(repair=mode == "heal", deep=_flag(query, "deep"))
        if _flag(query, "wait"):
            stats = await call
            return _json(asdict(stats) if is_dataclass(stats) else stats)  # type: ignore[arg-type]
        task = asyncio.ensure_future(call)
        _background.add(task)
        task.add_done_callback(_background.discard)
        return _json({"started": mode}, status=202)
    if path == "scrub" and method == "GET":
        return _json(_need(hooks.scrub_status, "scrubbing")())
    if path == "servers" and method == "GET":
        return _json(_need(hooks.cluster, "the cluster map")())
    if path.startswith("servers/") and method == "POST":
        set_state = _need(hooks.set_server_state, "the cluster map")
        server_id = path.removeprefix("servers/")
        state = query.get("state", "")
        info = await set_state(server_id, state)
        log.info("chunk server %s set to %s by the operator", server_id, state)
        return _json(asdict(info) if is_dataclass(info) else info)  # type: ignore[arg-type]
    raise S3Error("NoSuchKey", f"no admin endpoint {method} {request.path}", status=404)
