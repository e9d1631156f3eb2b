"""Signed HTTP to a Tessera server's extension API (``/_tessera/v1/``).

Requests are signed with SigV4 (service ``s3``) by botocore's signer and sent by
urllib3 over a pooled, keep-alive connection; errors come back as
``{"error": {"code", "message"}}`` documents and are raised as
:mod:`tessera.sdk.errors`. Shared by the remote backend, the block client and
the PAR client, so there is one place that knows how the server is spoken to.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tessera.sdk.errors import TesseraClientError, error_for

EXT_PREFIX = "/_tessera/v1/"
READ_SIZE = 1 << 20
_UNSIGNED_PAYLOAD = Config(s3={"payload_signing_enabled": False})


@dataclass(frozen=True)
class Endpoint:
    """Where a server is and who speaks to it."""

    url: str
    """``http(s)://host:port`` with no trailing slash."""
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    verify: bool | str = True
    """TLS verification: True, False, or a CA bundle path."""


def quote_path(text: str) -> str:
    """Percent-encode one path parameter (``/`` kept inside object keys). ``.``
    and ``..`` segments are encoded too: URL libraries (urllib3 among them)
    resolve them away, which would send ``a/../b`` as ``b``."""
    return "/".join(
        seg.replace(".", "%2E") if seg in (".", "..") else quote(seg, safe="~")
        for seg in text.split("/")
    )


class SignedClient:
    """A connection pool to one server that signs every request.

    Thread-safe (urllib3 pools are). ``timeout`` is (connect, read) seconds.
    """

    def __init__(
        self, endpoint: Endpoint, *, timeout: tuple[float, float] = (10.0, 300.0), pool: int = 10
    ) -> None:
        self.endpoint = endpoint
        self._credentials = Credentials(endpoint.access_key, endpoint.secret_key)
        kwargs: dict[str, Any] = {}
        if endpoint.url.startswith("https:"):
            if endpoint.verify is False:
                kwargs["cert_reqs"] = "CERT_NONE"
            elif isinstance(endpoint.verify, str):
                kwargs["ca_certs"] = endpoint.verify
        self._pool = urllib3.PoolManager(
            maxsize=pool,
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            retries=False,
            **kwargs,
        )

    def close(self) -> None:
        self._pool.clear()

    def _signed_headers(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        req = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        if body is None:
            # A streamed body is signed UNSIGNED-PAYLOAD; without this setting
            # botocore's S3 signer would sign the SHA-256 of an empty body.
            req.context["client_config"] = _UNSIGNED_PAYLOAD
        S3SigV4Auth(self._credentials, "s3", self.endpoint.region).add_auth(req)
        return dict(req.headers.items())

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """Send one signed request to ``path`` (absolute, already quoted). A
        non-2xx answer is raised as an SDK error. ``data`` as bytes is signed with
        its SHA-256; an iterable streams unsigned (chunked)."""
        url = self.endpoint.url + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        hdrs = dict(headers or {})
        body: bytes | Iterable[bytes] | None = data
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        signed = self._signed_headers(method, url, body if isinstance(body, bytes) else None, hdrs)
        try:
            resp = self._pool.request(
                method,
                url,
                body=body,
                headers=signed,
                preload_content=not stream,
                chunked=body is not None and not isinstance(body, bytes),
            )
        except urllib3.exceptions.HTTPError as e:
            raise TesseraClientError(
                f"{method} {url}: {e}", code="ConnectionError", status=0
            ) from e
        if resp.status >= 300:
            raise _error_of(resp)
        return resp

    def ext(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call an extension API route (``path`` relative to ``/_tessera/v1/``)
        and return its decoded JSON answer."""
        resp = self.request(method, EXT_PREFIX + path, **kwargs)
        raw = resp.data
        return json.loads(raw) if raw else None


def _error_of(resp: urllib3.BaseHTTPResponse) -> TesseraClientError:
    raw = resp.data if resp.status != 304 else b""
    code, message = "", ""
    try:
        doc = json.loads(raw)
        code = doc["error"]["code"]
        message = doc["error"].get("message", "")
    except (ValueError, KeyError, TypeError):
        text = raw.decode("utf-8", "replace")
        if "<Code>" in text:
            code = text.split("<Code>", 1)[1].split("</Code>", 1)[0]
        if "<Message>" in text:
            message = text.split("<Message>", 1)[1].split("</Message>", 1)[0]
    return error_for(code or f"HTTP{resp.status}", message, resp.status)


def iter_body(resp: urllib3.BaseHTTPResponse, size: int = READ_SIZE) -> Iterator[bytes]:
    """Yield a streamed response's body; the connection is released at the end
    or when the generator is closed early."""
    try:
        yield from resp.stream(size)
    finally:
        resp.release_conn()
