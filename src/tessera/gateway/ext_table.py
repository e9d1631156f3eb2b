"""The extension API's route table: every feature module's ``ROUTES`` in one
list (see :mod:`tessera.gateway.extension`). Order matters only where two
patterns could match one path: the more specific route comes first."""

from __future__ import annotations

from typing import Any

from tessera._version import __version__
from tessera.gateway import admin, ext_blocks, ext_objects, ext_pars
from tessera.gateway.extension import ExtRequest, Route, openapi


async def _openapi(req: ExtRequest) -> Any:
    return openapi(ROUTES, __version__)


async def _whoami(req: ExtRequest) -> Any:
    return {"account": req.principal.account_id}


ROUTES: list[Route] = [
    Route("GET", "openapi.json", _openapi, "This document", "meta", public=True),
    Route("GET", "whoami", _whoami, "The account the request is signed for", "meta"),
    *ext_blocks.ROUTES,
    *ext_pars.ROUTES,
    *ext_objects.ROUTES,
    *admin.ROUTES,
]
