"""Per-request context handed to every handler, and response helpers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tessera.core.requests import Principal
from tessera.core.service import ObjectService
from tessera.gateway.body import Body
from tessera.gateway.router import Endpoint
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.xml import render

XML_TYPE = "application/xml"


@dataclass(slots=True)
class Ctx:
    request: web.Request
    endpoint: Endpoint
    principal: Principal
    service: ObjectService
    body: Body
    headers: dict[str, str]
    """Lower-case request headers."""
    query: dict[str, str]
    request_id: str
    region: str = "us-east-1"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bucket(self) -> str:
        return self.endpoint.bucket

    @property
    def key(self) -> str:
        return self.endpoint.key

    def int_arg(self, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        """An integer query argument; InvalidArgument when it is not one or out of bounds."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError as e:
            raise S3Error(
                "InvalidArgument",
                f"Provided {name} not an integer or within integer range",
                extra={"ArgumentName": name, "ArgumentValue": raw},
            ) from e
        if value < low:
            raise S3Error(
                "InvalidArgument",
                f"Argument {name} must be an integer between {low} and 2147483647",
                extra={"ArgumentName": name, "ArgumentValue": raw},
            )
        if high is not None and value > high:
            value = high
        return value


def xml_response(
    root: str,
    content: Mapping[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    resp = web.Response(body=render(root, content), status=status, content_type=XML_TYPE)
    if headers:
        resp.headers.update(headers)
    return resp


def empty_response(status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    resp = web.Response(status=status)
    if headers:
        resp.headers.update(headers)
    return resp
