"""Object metadata between HTTP headers and core values, both directions."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from multidict import CIMultiDict

from tessera.common.checksums import ALGORITHMS, checksum_type_of
from tessera.core.requests import Conditions, DeleteConditions, ObjectAttributes
from tessera.model.records import ObjectVersion
from tessera.protocol.s3.acl import canned_from_headers
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import (
    format_http_date,
    parse_etag_list,
    parse_http_date,
    parse_timestamp,
    quote_etag,
)
from tessera.protocol.s3.xml import parse_tagging_header

STORED_HEADERS = (
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
)
STORAGE_CLASSES = {
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "OUTPOSTS",
    "SNOW",
    "EXPRESS_ONEZONE",
}
_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def attributes_from(
    headers: Mapping[str, str], *, with_tags: bool = True, owner: str = ""
) -> ObjectAttributes:
    """What a PUT / CreateMultipartUpload / CopyObject(REPLACE) says about the object.
    Object lock headers answer NotImplemented: a lock that is not enforced must not
    be accepted."""
    if any(name.startswith("x-amz-object-lock-") for name in headers):
        raise S3Error("NotImplemented", "Object lock is not supported.")
    stored: dict[str, str] = {}
    for name in STORED_HEADERS:
        if name in headers:
            value = headers[name]
            if name == "content-encoding":
                # aws-chunked describes the transfer, not the object: drop it and
                # keep the rest as the client wrote it ("deflate, gzip").
                value = ", ".join(
                    p.strip() for p in value.split(",") if p.strip() and p.strip() != "aws-chunked"
                )
                if not value:
                    continue
            stored[name] = value
    meta = {k[len("x-amz-meta-") :]: v for k, v in headers.items() if k.startswith("x-amz-meta-")}
    storage_class = headers.get("x-amz-storage-class", "STANDARD")
    if storage_class not in STORAGE_CLASSES:
        raise S3Error("InvalidStorageClass", "The storage class you specified is not valid")
    tags = (
        parse_tagging_header(headers["x-amz-tagging"])
        if with_tags and "x-amz-tagging" in headers
        else {}
    )
    return ObjectAttributes(
        content_type=headers.get("content-type"),
        headers=stored,
        user_metadata=meta,
        tags=tags,
        storage_class=storage_class,
        acl=canned_from_headers(headers, owner),
    )


def content_md5(headers: Mapping[str, str]) -> bytes | None:
    value = headers.get("content-md5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.") from e
    if len(digest) != 16:
        raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.")
    return digest


def checksum_request(headers: Mapping[str, str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """(algorithms to compute, values sent in headers) from x-amz-checksum-* /
    x-amz-sdk-checksum-algorithm / x-amz-trailer. More than one checksum value
    is InvalidRequest, as in S3."""
    algos: list[str] = []
    values = checksum_values(headers)
    if len(values) > 1:
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    algos.extend(values)
    for name in ("x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"):
        if name in headers:
            a = headers[name].upper()
            if a not in ALGORITHMS:
                raise S3Error("InvalidRequest", f"Checksum algorithm {a!r} is not supported")
            algos.append(a)
    trailer = headers.get("x-amz-trailer", "")
    for t in trailer.split(","):
        t = t.strip().lower()
        if t.startswith("x-amz-checksum-"):
            a = t[len("x-amz-checksum-") :].upper()
            if a not in ALGORITHMS:
                raise S3Error("InvalidRequest", f"Checksum algorithm {a!r} is not supported")
            algos.append(a)
    return tuple(dict.fromkeys(algos)), values


def checksum_values(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``x-amz-checksum-<algorithm>`` values sent, keyed by algorithm."""
    return {
        algo: headers["x-amz-checksum-" + algo.lower()]
        for algo in ALGORITHMS
        if "x-amz-checksum-" + algo.lower() in headers
    }


def checksum_type(checksums: Mapping[str, str]) -> str:
    """``FULL_OBJECT`` or ``COMPOSITE``, as a version's checksum values say."""
    return checksum_type_of(next(iter(checksums.values()), ""))


def checksum_headers(checksums: Mapping[str, str], type_: str = "") -> dict[str, str]:
    """``x-amz-checksum-<algorithm>`` headers and, when there are any,
    ``x-amz-checksum-type`` (from the values when ``type_`` is empty)."""
    h = {"x-amz-checksum-" + algo.lower(): value for algo, value in checksums.items()}
    if checksums:
        h["x-amz-checksum-type"] = type_ or checksum_type(checksums)
    return h


def conditions_from(headers: Mapping[str, str], prefix: str = "") -> Conditions:
    """If-* headers (``prefix`` = ``x-amz-copy-source-`` for copy sources)."""

    def etags(name: str) -> tuple[str, ...] | None:
        v = headers.get(prefix + name)
        return tuple(parse_etag_list(v)) if v is not None else None

    def date(name: str) -> float | None:
        v = headers.get(prefix + name)
        return parse_http_date(v) if v is not None else None

    return Conditions(
        if_match=etags("if-match"),
        if_none_match=etags("if-none-match"),
        if_modified_since=date("if-modified-since"),
        if_unmodified_since=date("if-unmodified-since"),
    )


def delete_conditions_from(headers: Mapping[str, str]) -> DeleteConditions:
    """``If-Match``, ``x-amz-if-match-last-modified-time`` and ``x-amz-if-match-size``
    of a DeleteObject. Unparsable values are InvalidArgument."""
    if_match = headers.get("if-match")
    mtime_text = headers.get("x-amz-if-match-last-modified-time")
    size_text = headers.get("x-amz-if-match-size")
    mtime = None if mtime_text is None else parse_timestamp(mtime_text)
    if mtime_text is not None and mtime is None:
        raise S3Error(
            "InvalidArgument",
            "Invalid x-amz-if-match-last-modified-time",
            extra={"ArgumentName": "x-amz-if-match-last-modified-time"},
        )
    size = None
    if size_text is not None:
        size_text = size_text.strip()
        if not size_text.isascii() or not size_text.isdigit():
            raise S3Error(
                "InvalidArgument",
                "Invalid x-amz-if-match-size",
                extra={"ArgumentName": "x-amz-if-match-size"},
            )
        size = int(size_text)
    return DeleteConditions(
        if_match=tuple(parse_etag_list(if_match)) if if_match is not None else None,
        last_modified=mtime,
        size=size,
    )


def object_headers(v: ObjectVersion, *, versioned: bool) -> CIMultiDict[str]:
    """Response headers describing a version (GET/HEAD); checksums are the
    caller's business (:func:`checksum_headers`)."""
    h: CIMultiDict[str] = CIMultiDict()
    h["ETag"] = quote_etag(v.etag)
    h["Last-Modified"] = format_http_date(v.last_modified)
    h["Content-Type"] = v.content_type
    h["Accept-Ranges"] = "bytes"
    for name, value in v.headers.items():
        h[name.title()] = value
    for name, value in v.user_metadata.items():
        h["x-amz-meta-" + name] = value
    if versioned or v.version_id != "null":
        h["x-amz-version-id"] = v.version_id
    if v.tags:
        h["x-amz-tagging-count"] = str(len(v.tags))
    if v.storage_class != "STANDARD":
        h["x-amz-storage-class"] = v.storage_class
    return h


def apply_overrides(h: CIMultiDict[str], query: Mapping[str, str]) -> None:
    """``response-*`` query parameters replace the matching response headers."""
    for param, header in _RESPONSE_OVERRIDES.items():
        if param in query:
            h[header] = query[param]
