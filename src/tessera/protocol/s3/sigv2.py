"""AWS Signature Version 2 for S3 (HMAC-SHA1), header and query-string forms.

boto3 still signs presigned URLs with it by default (``AWSAccessKeyId``,
``Signature``, ``Expires``), so a store that only speaks SigV4 breaks the most
common way of sharing a link. Verification only; Tessera never signs with V2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tessera.protocol.s3.errors import S3Error

# Query parameters that are part of the V2 canonical resource.
SUBRESOURCES = frozenset(
    [
        "accelerate",
        "acl",
        "cors",
        "defaultObjectAcl",
        "location",
        "logging",
        "partNumber",
        "policy",
        "requestPayment",
        "torrent",
        "versioning",
        "versionId",
        "versions",
        "website",
        "uploads",
        "uploadId",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "delete",
        "lifecycle",
        "tagging",
        "restore",
        "storageClass",
        "notification",
        "replication",
        "analytics",
        "metrics",
        "inventory",
        "select",
        "select-type",
        "object-lock",
    ]
)


@dataclass(frozen=True, slots=True)
class V2Signature:
    access_key: str
    signature: str
    expires: int | None = None
    """Seconds since the epoch after which a presigned URL is refused; None for headers."""


def parse_v2_header(value: str) -> V2Signature:
    """``AWS AKID:signature``."""
    _, _, rest = value.strip().partition(" ")
    access_key, sep, signature = rest.rpartition(":")
    if not sep or not access_key or not signature:
        raise S3Error(
            "InvalidArgument",
            "AWS authorization header is invalid. Expected AwsAccessKeyId:signature",
        )
    return V2Signature(access_key.strip(), signature.strip())


def parse_v2_query(query: Sequence[tuple[str, str]]) -> V2Signature:
    q = dict(query)
    if not q.get("AWSAccessKeyId") or not q.get("Signature") or not q.get("Expires"):
        raise S3Error(
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        )
    if not (q["Expires"].isascii() and q["Expires"].isdigit()):
        raise S3Error("AccessDenied", "Invalid date (should be seconds since epoch)")
    return V2Signature(q["AWSAccessKeyId"], q["Signature"], int(q["Expires"]))


def canonical_resource(path: str, query: Sequence[tuple[str, str]]) -> str:
    """``path`` as sent (percent-encoded, bucket included) plus the sub-resources."""
    subs = sorted((k, v) for k, v in query if k in SUBRESOURCES)
    if not subs:
        return path
    return path + "?" + "&".join(f"{k}={v}" if v else k for k, v in subs)


def string_to_sign(
    method: str,
    headers: Mapping[str, str],
    resource: str,
    *,
    expires: int | None = None,
) -> str:
    """The V2 string to sign; ``headers`` maps lower-case names to values."""
    amz: dict[str, str] = {}
    for name, value in headers.items():
        if name.startswith("x-amz-"):
            # Repeated headers arrive joined with ","; a single value keeps its
            # inner whitespace ("a, b" is signed as is by boto and botocore).
            amz[name] = value.strip()
    if expires is not None:
        date = str(expires)
    elif "x-amz-date" in headers:
        date = ""
    else:
        date = headers.get("date", "")
    lines = [method.upper(), headers.get("content-md5", ""), headers.get("content-type", ""), date]
    lines += [f"{k}:{amz[k]}" for k in sorted(amz)]
    lines.append(resource)
    return "\n".join(lines)


def verify_v2(sig: V2Signature, secret: str, to_sign: str) -> None:
    """Raise SignatureDoesNotMatch unless ``sig`` signs ``to_sign`` with ``secret``."""
    mac = hmac.new(secret.encode(), to_sign.encode("utf-8", "surrogateescape"), hashlib.sha1)
    expected = base64.b64encode(mac.digest()).decode()
    if not hmac.compare_digest(expected, sig.signature):
        raise S3Error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            extra={
                "AWSAccessKeyId": sig.access_key,
                "StringToSign": to_sign,
                "SignatureProvided": sig.signature,
            },
        )
