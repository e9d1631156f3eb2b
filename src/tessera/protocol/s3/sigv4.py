"""AWS Signature Version 4 for S3: parsing, canonical requests, verification,
and the client side (signed headers, presigned URLs) used by tests and the SDK.

Contract: :func:`verify` either returns the signing key (needed to check the
chunk signatures of an aws-chunked body) or raises :class:`S3Error`; nothing is
trusted before it returns.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import parse_amz_date, uri_encode

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_PRESIGNED_EXPIRES = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Credential:
    """``AKID/20261122/us-east-1/s3/aws4_request``."""

    access_key: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"

    @classmethod
    def parse(cls, value: str, *, error: str) -> Credential:
        parts = value.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
            raise S3Error(
                error,
                'Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
            )
        return cls(parts[0], parts[1], parts[2], parts[3])


@dataclass(frozen=True, slots=True)
class Authorization:
    """A parsed SigV4 signature, from the Authorization header or a presigned URL."""

    credential: Credential
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    expires: int | None = None
    """Lifetime in seconds of a presigned URL; None for header auth."""

    @property
    def presigned(self) -> bool:
        return self.expires is not None


def parse_authorization_header(value: str, amz_date: str) -> Authorization:
    """Parse ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``.

    A client's requests differ only in their signature (and, each second, their
    date), so in the usual shape, signature last, the rest is parsed once and
    cached."""
    head, comma, last = value.rpartition(",")
    name, eq, signature = last.strip().partition("=")
    if comma and eq and name == "Signature":
        credential, headers = _scope(head, amz_date)
        return Authorization(credential, headers, signature.strip().lower(), amz_date)
    return _parse_authorization(value, amz_date)


@lru_cache(maxsize=256)
def _scope(head: str, amz_date: str) -> tuple[Credential, tuple[str, ...]]:
    """Credential and signed headers of an Authorization header without its
    signature (errors are raised, never cached)."""
    auth = _parse_authorization(f"{head}, Signature=0", amz_date)
    return auth.credential, auth.signed_headers


def _parse_authorization(value: str, amz_date: str) -> Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        if algorithm == "AWS":
            raise S3Error(
                "InvalidRequest", "Signature Version 2 is not supported; use AWS4-HMAC-SHA256."
            )
        raise S3Error(
            "AuthorizationHeaderMalformed", f"Unsupported authorization type {algorithm!r}"
        )
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, val = item.strip().partition("=")
        if sep:
            fields[name.strip()] = val.strip()
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        raise S3Error(
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; it must contain Credential, SignedHeaders and Signature.",
        )
    credential = Credential.parse(fields["Credential"], error="AuthorizationHeaderMalformed")
    if parse_amz_date(amz_date) is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    if credential.date != amz_date[:8]:
        raise S3Error(
            "AuthorizationHeaderMalformed",
            f'The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date: "{credential.date}".',
        )
    headers = tuple(h for h in fields["SignedHeaders"].lower().split(";") if h)
    return Authorization(credential, headers, fields["Signature"].lower(), amz_date)


def parse_presigned_query(query: Sequence[tuple[str, str]]) -> Authorization:
    """Parse the ``X-Amz-*`` parameters of a presigned URL."""
    q = dict(query)
    if q.get("X-Amz-Algorithm") != ALGORITHM:
        raise S3Error(
            "AuthorizationQueryParametersError", 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"'
        )
    missing = [
        n
        for n in (
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        )
        if n not in q
    ]
    if missing:
        raise S3Error(
            "AuthorizationQueryParametersError",
            f"Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters (missing {', '.join(missing)}).",
        )
    credential = Credential.parse(q["X-Amz-Credential"], error="AuthorizationQueryParametersError")
    raw_expires = q["X-Amz-Expires"]
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if not re.fullmatch(r"-?[0-9]+", raw_expires):
        raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires should be a number")
    expires = int(raw_expires)
    # A link that can never be valid is refused as an authorization failure (403,
    # as RGW answers; AWS says 400 AuthorizationQueryParametersError for the
    # upper bound).
    if expires < 0:
        raise S3Error("AccessDenied", "Request has expired")
    if expires > MAX_PRESIGNED_EXPIRES:
        raise S3Error(
            "AccessDenied", "X-Amz-Expires must be less than a week (in seconds) that is 604800"
        )
    amz_date = q["X-Amz-Date"]
    if parse_amz_date(amz_date) is None:
        raise S3Error(
            "AuthorizationQueryParametersError",
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
        )
    headers = tuple(h for h in q["X-Amz-SignedHeaders"].lower().split(";") if h)
    return Authorization(credential, headers, q["X-Amz-Signature"].lower(), amz_date, expires)


def check_time(auth: Authorization, now: float, *, skew: int) -> None:
    """Refuse requests signed too far from ``now`` and expired presigned URLs."""
    ts = parse_amz_date(auth.amz_date)
    if ts is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    if auth.expires is not None:
        if ts - now > skew:
            raise S3Error("AccessDenied", "Request is not valid yet")
        if now > ts + auth.expires:
            raise S3Error(
                "AccessDenied",
                "Request has expired",
                extra={
                    "X-Amz-Expires": str(auth.expires),
                    "Expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts + auth.expires)),
                    "ServerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                },
            )
        return
    if abs(now - ts) > skew:
        raise S3Error(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            extra={
                "RequestTime": auth.amz_date,
                "ServerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                "MaxAllowedSkewMilliseconds": str(skew * 1000),
            },
        )


def _normalize(value: str) -> str:
    return " ".join(value.split())


def canonical_query(query: Iterable[tuple[str, str]]) -> str:
    pairs = sorted((uri_encode(k), uri_encode(v)) for k, v in query)
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    """The SigV4 canonical request. ``path`` is decoded (S3 does not normalize it);
    ``headers`` maps lower-case names to values."""
    lines = [method.upper(), uri_encode(path or "/", keep_slash=True), canonical_query(query)]
    lines.append("".join(f"{h}:{_normalize(headers.get(h, ''))}\n" for h in signed_headers))
    lines.append(";".join(signed_headers))
    lines.append(payload_hash)
    return "\n".join(lines)


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def verify(
    auth: Authorization,
    secret: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    payload_hash: str,
) -> bytes:
    """Check the signature; return the signing key. Raises SignatureDoesNotMatch."""
    c = auth.credential
    canonical = canonical_request(method, path, query, headers, auth.signed_headers, payload_hash)
    to_sign = string_to_sign(auth.amz_date, c.scope, canonical)
    key = signing_key(secret, c.date, c.region, c.service)
    if not hmac.compare_digest(sign(key, to_sign), auth.signature):
        raise S3Error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            extra={
                "AWSAccessKeyId": c.access_key,
                "StringToSign": to_sign,
                "SignatureProvided": auth.signature,
                "CanonicalRequest": canonical,
            },
        )
    return key


def chunk_string_to_sign(amz_date: str, scope: str, previous: str, chunk_sha256: str) -> str:
    return f"{ALGORITHM}-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{EMPTY_SHA256}\n{chunk_sha256}"


def trailer_string_to_sign(amz_date: str, scope: str, previous: str, trailer_sha256: str) -> str:
    return f"{ALGORITHM}-TRAILER\n{amz_date}\n{scope}\n{previous}\n{trailer_sha256}"


# ---------------------------------------------------------------- client side


def _amz_now(now: float | None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))


def sign_headers(
    method: str,
    url: str,
    headers: Mapping[str, str],
    *,
    access_key: str,
    secret: str,
    region: str = "us-east-1",
    payload_hash: str = UNSIGNED_PAYLOAD,
    now: float | None = None,
) -> dict[str, str]:
    """``headers`` plus Host, x-amz-date, x-amz-content-sha256 and Authorization.
    ``url`` must be already percent-encoded as it will be sent."""
    from urllib.parse import parse_qsl, unquote

    parts = urlsplit(url)
    amz_date = _amz_now(now)
    out = {k.lower(): v for k, v in headers.items()}
    out["host"] = parts.netloc
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_hash
    signed = sorted(out)
    cred = Credential(access_key, amz_date[:8], region, "s3")
    query = parse_qsl(parts.query, keep_blank_values=True)
    canonical = canonical_request(
        method, unquote(parts.path) or "/", query, out, signed, payload_hash
    )
    key = signing_key(secret, cred.date, region, "s3")
    signature = sign(key, string_to_sign(amz_date, cred.scope, canonical))
    out["authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{cred.scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return out


def presign_url(
    method: str,
    url: str,
    *,
    access_key: str,
    secret: str,
    expires: int = 3600,
    region: str = "us-east-1",
    now: float | None = None,
) -> str:
    """A presigned URL for ``url`` (percent-encoded, without X-Amz-* parameters)."""
    from urllib.parse import parse_qsl, unquote

    parts = urlsplit(url)
    amz_date = _amz_now(now)
    cred = Credential(access_key, amz_date[:8], region, "s3")
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key}/{cred.scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    canonical = canonical_request(
        method,
        unquote(parts.path) or "/",
        query,
        {"host": parts.netloc},
        ["host"],
        UNSIGNED_PAYLOAD,
    )
    key = signing_key(secret, cred.date, region, "s3")
    signature = sign(key, string_to_sign(amz_date, cred.scope, canonical))
    query.append(("X-Amz-Signature", signature))
    return parts._replace(query=canonical_query(query)).geturl()
