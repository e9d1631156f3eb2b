"""Request -> typed :class:`Endpoint`: which S3 operation, on which bucket and key.

Path-style (``/bucket/key``) and virtual-host style (``bucket.<domain>/key``)
are both accepted. The key is taken from the *raw* request path and
percent-decoded exactly once, so ``a//b``, ``../x`` and ``%2F`` survive as the
client sent them; nothing here touches a file system.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from tessera.protocol.s3.errors import S3Error

# Bucket sub-resources Tessera does not implement: GET answers that none is set,
# DELETE succeeds, PUT answers NotImplemented (see _bucket_route).
BUCKET_CONFIGS = {
    "cors": "cors",
    "policy": "policy",
    "lifecycle": "lifecycle",
    "encryption": "encryption",
    "website": "website",
    "logging": "logging",
    "notification": "notification",
    "replication": "replication",
    "ownershipControls": "ownership",
    "publicAccessBlock": "public-access-block",
    "object-lock": "object-lock",
    "accelerate": "accelerate",
    "requestPayment": "request-payment",
    "analytics": "analytics",
    "metrics": "metrics",
    "inventory": "inventory",
    "intelligent-tiering": "intelligent-tiering",
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    op: str
    """Operation name as in the S3 API reference (``GetObject``, ``ListObjectsV2``...)."""
    bucket: str = ""
    key: str = ""
    query: dict[str, str] | None = None
    config: str = ""
    """For bucket configuration operations: which document (``cors``...)."""


def virtual_bucket(host: str, domains: tuple[str, ...]) -> str | None:
    """The bucket named by a virtual-host style Host header, or None (path style)."""
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    hostname = hostname.lower()
    for domain in domains:
        if hostname.endswith("." + domain):
            return hostname[: -len(domain) - 1]
    return None


def split_target(host: str, raw_path: str, domains: tuple[str, ...]) -> tuple[str, str]:
    """(bucket, key) from the Host header and the raw (still encoded) path."""
    path = raw_path.split("?", 1)[0]
    bucket = virtual_bucket(host, domains)
    if bucket is not None:
        key = unquote(path[1:], errors="strict") if path.startswith("/") else unquote(path)
        return bucket, key
    if not path.startswith("/"):
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.")
    rest = path[1:]
    bucket, _, key = rest.partition("/")
    return unquote(bucket), unquote(key, errors="strict")


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Decoded query pairs, in order, keeping blank values (``?uploads``)."""
    return parse_qsl(raw_query, keep_blank_values=True)


def route(
    method: str, bucket: str, key: str, query: dict[str, str], headers: dict[str, str]
) -> Endpoint:
    """The operation addressed by a request. Raises S3Error(NotImplemented/MethodNotAllowed)."""
    q = query
    if not bucket:
        if method in ("GET", "HEAD"):
            return Endpoint("ListBuckets", query=q)
        raise S3Error(
            "MethodNotAllowed", "The specified method is not allowed against this resource."
        )
    if not key:
        return _bucket_route(method, bucket, q)
    return _object_route(method, bucket, key, q, headers)


def _config(q: dict[str, str]) -> str:
    for name, kind in BUCKET_CONFIGS.items():
        if name in q:
            return kind
    return ""


def _bucket_route(method: str, bucket: str, q: dict[str, str]) -> Endpoint:
    config = _config(q)
    if method == "GET":
        for sub, op in (
            ("versioning", "GetBucketVersioning"),
            ("location", "GetBucketLocation"),
            ("versions", "ListObjectVersions"),
            ("uploads", "ListMultipartUploads"),
            ("tagging", "GetBucketTagging"),
            ("acl", "GetBucketAcl"),
        ):
            if sub in q:
                return Endpoint(op, bucket, query=q)
        if config:
            return Endpoint("GetBucketConfig", bucket, query=q, config=config)
        if q.get("list-type") == "2":
            return Endpoint("ListObjectsV2", bucket, query=q)
        return Endpoint("ListObjects", bucket, query=q)
    if method == "HEAD":
        return Endpoint("HeadBucket", bucket, query=q)
    if method == "PUT":
        for sub, op in (
            ("versioning", "PutBucketVersioning"),
            ("tagging", "PutBucketTagging"),
            ("acl", "PutBucketAcl"),
        ):
            if sub in q:
                return Endpoint(op, bucket, query=q)
        if config:
            # Accepting a configuration that has no effect would mislead: a user
            # would believe data is encrypted, locked or expired when it is not.
            raise S3Error("NotImplemented", f"The bucket {config} configuration is not supported.")
        return Endpoint("CreateBucket", bucket, query=q)
    if method == "DELETE":
        if "tagging" in q:
            return Endpoint("DeleteBucketTagging", bucket, query=q)
        if config:
            return Endpoint("DeleteBucketConfig", bucket, query=q, config=config)
        return Endpoint("DeleteBucket", bucket, query=q)
    if method == "POST":
        if "delete" in q:
            return Endpoint("DeleteObjects", bucket, query=q)
        return Endpoint("PostObject", bucket, query=q)  # browser-based upload (HTML form)
    raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")


def _object_route(
    method: str, bucket: str, key: str, q: dict[str, str], headers: dict[str, str]
) -> Endpoint:
    def ep(op: str) -> Endpoint:
        return Endpoint(op, bucket, key, query=q)

    if method == "GET":
        if "tagging" in q:
            return ep("GetObjectTagging")
        if "uploadId" in q:
            return ep("ListParts")
        if "acl" in q:
            return ep("GetObjectAcl")
        if "attributes" in q:
            return ep("GetObjectAttributes")
        if "retention" in q or "legal-hold" in q or "torrent" in q:
            raise S3Error("NotImplemented", "This operation is not implemented.")
        return ep("GetObject")
    if method == "HEAD":
        return ep("HeadObject")
    if method == "PUT":
        if "tagging" in q:
            return ep("PutObjectTagging")
        if "acl" in q:
            return ep("PutObjectAcl")
        if "retention" in q or "legal-hold" in q:
            raise S3Error("NotImplemented", "Object lock retention is not implemented.")
        if "uploadId" in q or "partNumber" in q:
            if "uploadId" not in q or "partNumber" not in q:
                raise S3Error("InvalidRequest", "UploadPart needs both uploadId and partNumber")
            return ep("UploadPartCopy" if "x-amz-copy-source" in headers else "UploadPart")
        if "x-amz-copy-source" in headers:
            return ep("CopyObject")
        return ep("PutObject")
    if method == "DELETE":
        if "tagging" in q:
            return ep("DeleteObjectTagging")
        if "uploadId" in q:
            return ep("AbortMultipartUpload")
        return ep("DeleteObject")
    if method == "POST":
        if "uploads" in q:
            return ep("CreateMultipartUpload")
        if "uploadId" in q:
            return ep("CompleteMultipartUpload")
        if "restore" in q or "select" in q:
            raise S3Error("NotImplemented", "This operation is not implemented.")
    raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")
