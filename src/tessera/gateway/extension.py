"""The JSON extension API under ``/_tessera/v1/``: what S3 lacks.

One route table drives both the dispatch and the OpenAPI document served at
``/_tessera/v1/openapi.json``, so the two cannot drift apart. Each feature module
(:mod:`tessera.gateway.ext_objects`, ``ext_pars``, ``ext_blocks``...) exports a
``ROUTES`` list of :class:`Route`; :data:`ROUTES` below concatenates them.

Contracts:

* Every route is SigV4-signed like an S3 request (service ``s3``), except those
  marked ``public`` (the OpenAPI document). The handler gets the authenticated
  :class:`~tessera.core.requests.Principal` (possibly anonymous: the core
  decides what anonymous may do).
* Path parameters are written ``{name}`` (one segment) or ``{name+}`` (the
  rest of the path, slashes included, e.g. an object key); values are
  percent-decoded.
* A handler returns a JSON-able value (answered ``200 application/json``) or an
  aiohttp response of its own (binary bodies). Errors are raised as domain
  errors or :class:`~tessera.protocol.s3.errors.S3Error`; the gateway renders
  them as ``{"error": {"code", "message", "request_id"}}`` with the S3 status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tessera.core.requests import Principal
from tessera.core.service import ObjectService
from tessera.gateway.body import Body
from tessera.protocol.s3.errors import S3Error

PREFIX = "/_tessera/v1/"
OPENAPI_PATH = PREFIX + "openapi.json"
MAX_JSON = 1 << 20


@dataclass(slots=True)
class ExtRequest:
    """One extension API call as a handler sees it."""

    request: web.Request
    principal: Principal
    service: ObjectService
    params: dict[str, str]
    """Decoded path parameters."""
    query: dict[str, str]
    body: Body
    app: web.Application

    async def json(self) -> dict[str, Any]:
        """The request body as a JSON object (``{}`` when empty). Raises S3Error
        MalformedJSON (400) for anything else, MaxMessageLengthExceeded beyond 1 MiB."""
        raw = await self.body.read_document(MAX_JSON)
        if not raw.strip():
            return {}
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise S3Error("MalformedJSON", f"The request body is not valid JSON: {e}") from e
        if not isinstance(doc, dict):
            raise S3Error("MalformedJSON", "The request body must be a JSON object")
        return doc

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter (``1``/``0``/``true``/``false``). Raises InvalidArgument."""
        value = self.query.get(name)
        if value is None or value == "":
            return default
        low = value.lower()
        if low in ("1", "true", "yes"):
            return True
        if low in ("0", "false", "no"):
            return False
        raise S3Error("InvalidArgument", f"{name} must be true or false")

    def integer(self, name: str, default: int | None = None) -> int | None:
        """An integer query parameter. Raises InvalidArgument."""
        value = self.query.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise S3Error("InvalidArgument", f"{name} must be an integer") from None


Handler = Callable[[ExtRequest], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    """One operation of the extension API."""

    method: str
    path: str
    """Relative to :data:`PREFIX`, e.g. ``containers/{bucket}/properties``."""
    handler: Handler
    summary: str
    tag: str
    query: tuple[str, ...] = ()
    """Query parameters it understands (documented in the OpenAPI document)."""
    body: str = ""
    """``json``, ``binary`` or empty (no body)."""
    public: bool = False
    """Served without a signature."""
    responds: str = "json"
    """``json`` or ``binary``."""
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = ""
        for part in re.split(r"(\{[a-z_]+\+?\})", self.path):
            if part.startswith("{"):
                name = part.strip("{}+")
                regex += f"(?P<{name}>.+)" if part.endswith("+}") else f"(?P<{name}>[^/]+)"
            else:
                regex += re.escape(part)
        object.__setattr__(self, "pattern", re.compile(regex + r"\Z"))


def match(routes: list[Route], method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
    """The route for ``method`` and the still-encoded path (after :data:`PREFIX`),
    with decoded parameters. Raises S3Error: 404 NoSuchEndpoint when no path
    matches, 405 MethodNotAllowed when the path exists for other methods."""
    allowed = []
    for r in routes:
        m = r.pattern.match(raw_path)
        if m is None:
            continue
        if r.method != method:
            allowed.append(r.method)
            continue
        return r, {k: unquote(v) for k, v in m.groupdict().items()}
    if allowed:
        raise S3Error(
            "MethodNotAllowed",
            f"{method} is not allowed here; use {', '.join(sorted(set(allowed)))}",
            status=405,
        )
    raise S3Error(
        "NoSuchEndpoint", f"No extension endpoint {method} {PREFIX}{raw_path}", status=404
    )


def json_response(doc: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(doc, default=str, separators=(",", ":")).encode(),
        content_type="application/json",
    )


def error_response(code: str, message: str, status: int, request_id: str) -> web.Response:
    doc = {"error": {"code": code, "message": message, "request_id": request_id}}
    return json_response(doc, status)


def openapi(routes: list[Route], version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        path = PREFIX + r.path.replace("+}", "}")
        params: list[dict[str, Any]] = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in re.findall(r"\{([a-z_]+)\+?\}", r.path)
        ]
        params += [
            {"name": q, "in": "query", "required": False, "schema": {"type": "string"}}
            for q in r.query
        ]
        op: dict[str, Any] = {
            "summary": r.summary,
            "tags": [r.tag],
            "operationId": f"{r.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', r.path.lower())}",
            "parameters": params,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json"
                        if r.responds == "json"
                        else "application/octet-stream": {}
                    },
                },
                "default": {"description": "Error: {error: {code, message, request_id}}"},
            },
        }
        if r.body:
            media = "application/json" if r.body == "json" else "application/octet-stream"
            op["requestBody"] = {"required": r.body == "binary", "content": {media: {}}}
        if r.public:
            op["security"] = []
        paths.setdefault(path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tessera extension API", "version": version},
        "components": {
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS Signature Version 4, service s3, as for S3 requests",
                }
            }
        },
        "security": [{"sigv4": []}],
        "paths": paths,
    }
