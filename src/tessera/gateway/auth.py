"""Who is calling: SigV4 header auth and presigned URLs, verified against the
account keys of the core. An unsigned request gets the anonymous principal,
which the core denies everything except what public canned ACLs grant.

The result says how the body is protected (plain, sha256-signed, aws-chunked
signed or unsigned with trailers) so :mod:`tessera.gateway.body` can decode and
verify it while streaming.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from tessera.core.access import ANONYMOUS
from tessera.core.requests import Principal
from tessera.core.service import ObjectService
from tessera.model.errors import AccessKeyNotFound
from tessera.protocol.s3 import sigv2, sigv4
from tessera.protocol.s3.chunked import ChunkSigning
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import format_http_date, parse_http_date

UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
_STREAMING = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)


@dataclass(frozen=True, slots=True)
class AuthContext:
    principal: Principal
    payload_hash: str
    """The x-amz-content-sha256 value: a hex digest, UNSIGNED-PAYLOAD or a STREAMING-* mode."""
    chunk_signing: ChunkSigning | None = None

    @property
    def streaming(self) -> bool:
        return self.payload_hash in _STREAMING


def signing_headers(request: web.Request) -> dict[str, str]:
    """Lower-case header name -> value (repeated headers joined with ``,``)."""
    out: dict[str, str] = {}
    for name, value in request.headers.items():
        low = name.lower()
        if low in out:
            out[low] = f"{out[low]},{value}"
        else:
            out[low] = value
    return out


def _amz_date(headers: dict[str, str]) -> str:
    if "x-amz-date" in headers:
        return headers["x-amz-date"]
    ts = parse_http_date(headers.get("date", ""))
    if ts is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts))


async def authenticate(
    request: web.Request,
    service: ObjectService,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    *,
    now: float,
    max_skew: int,
    v2_resource: str = "",
) -> AuthContext:
    """Verify the request's signature. ``path`` is the decoded request path and
    ``query`` the decoded query pairs, ``headers`` the request's
    :func:`signing_headers`; ``v2_resource`` is the still-encoded path with the
    bucket (what SigV2 signs). An unsigned request is anonymous. Raises S3Error
    (InvalidAccessKeyId, SignatureDoesNotMatch, RequestTimeTooSkewed...)."""
    authz = headers.get("authorization")
    if (authz and authz.startswith("AWS ")) or any(k == "AWSAccessKeyId" for k, _ in query):
        return await _authenticate_v2(
            request, service, query, headers, now=now, max_skew=max_skew, resource=v2_resource
        )
    presigned = any(k == "X-Amz-Algorithm" for k, _ in query)
    if authz and presigned:
        raise S3Error(
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        )
    if authz:
        amz_date = _amz_date(headers)
        auth = sigv4.parse_authorization_header(authz, amz_date)
        payload_hash = headers.get("x-amz-content-sha256")
        if payload_hash is None:
            raise S3Error(
                "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
            )
        sign_query = query
    elif presigned:
        auth = sigv4.parse_presigned_query(query)
        payload_hash = headers.get("x-amz-content-sha256", UNSIGNED)
        sign_query = [(k, v) for k, v in query if k != "X-Amz-Signature"]
    else:
        if headers.get("x-amz-content-sha256", "").startswith("STREAMING-"):
            raise S3Error("AccessDenied", "aws-chunked bodies need a signature")
        return AuthContext(ANONYMOUS, UNSIGNED)
    try:
        key = await service.lookup_key(auth.credential.access_key)
    except AccessKeyNotFound as e:
        raise S3Error(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ) from e
    sigv4.check_time(auth, now, skew=max_skew)
    if auth.credential.service != "s3":
        raise S3Error(
            "AuthorizationHeaderMalformed",
            f'The authorization header is malformed; incorrect service {auth.credential.service!r}. This endpoint belongs to "s3".',
        )
    signing_key = sigv4.verify(
        auth, key.secret, request.method, path, sign_query, headers, payload_hash
    )
    chunk_signing = None
    if payload_hash in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
        chunk_signing = ChunkSigning(
            key=signing_key,
            amz_date=auth.amz_date,
            scope=auth.credential.scope,
            seed_signature=auth.signature,
        )
    return AuthContext(Principal(key.account_id), payload_hash, chunk_signing)


async def _authenticate_v2(
    request: web.Request,
    service: ObjectService,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    *,
    now: float,
    max_skew: int,
    resource: str,
) -> AuthContext:
    authz = headers.get("authorization")
    if authz:
        sig = sigv2.parse_v2_header(authz)
        ts = parse_http_date(headers.get("x-amz-date") or headers.get("date", ""))
        if ts is None:
            raise S3Error(
                "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
            )
        if abs(now - ts) > max_skew:
            raise S3Error(
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
            )
    else:
        sig = sigv2.parse_v2_query(query)
        assert sig.expires is not None
        if now > sig.expires:
            raise S3Error("AccessDenied", "Request has expired")
    try:
        key = await service.lookup_key(sig.access_key)
    except AccessKeyNotFound as e:
        raise S3Error(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ) from e
    to_sign = sigv2.string_to_sign(
        request.method,
        headers,
        sigv2.canonical_resource(resource, query),
        expires=sig.expires,
    )
    sigv2.verify_v2(sig, key.secret, to_sign)
    payload_hash = headers.get("x-amz-content-sha256", UNSIGNED)
    if payload_hash in _STREAMING:
        raise S3Error("InvalidRequest", "aws-chunked bodies need SigV4")
    return AuthContext(Principal(key.account_id), payload_hash)


__all__ = ["AuthContext", "authenticate", "format_http_date", "signing_headers"]
