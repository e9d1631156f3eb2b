"""S3 operation handlers, one module per resource family. ``HANDLERS`` maps an
operation name (see :mod:`tessera.gateway.router`) to its coroutine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from tessera.gateway.context import Ctx
from tessera.gateway.handlers import (
    acl,
    attributes,
    bucket,
    listing,
    multipart,
    objects,
    post_object,
)

Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]

HANDLERS: dict[str, Handler] = {
    **bucket.HANDLERS,
    **listing.HANDLERS,
    **objects.HANDLERS,
    **multipart.HANDLERS,
    **acl.HANDLERS,
    **attributes.HANDLERS,
    **post_object.HANDLERS,
}
