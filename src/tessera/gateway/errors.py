"""THE table: domain errors -> S3 error codes. Nothing else maps errors.

Anything not in the table is an ``InternalError`` (500), logged with its traceback.
"""

from __future__ import annotations

from aiohttp import web

from tessera.core import blocks as B
from tessera.model import errors as E
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import format_http_date, quote_etag

# Most specific first: the first matching class wins.
_TABLE: list[tuple[type[E.TesseraError], str, int | None]] = [
    (B.NoSuchBlock, "NoSuchBlock", 404),
    (B.NoSuchBlockService, "NoSuchBlockService", 404),
    (B.SignatureExpired, "ExpiredSignature", 401),  # as Keep: unsigned or expired
    (B.SignatureInvalid, "InvalidSignature", 400),
    (B.ReadOnlyService, "ReadOnlyService", 403),
    (E.ObjectDrained, "ObjectDrained", 404),
    (E.FrozenBucket, "FrozenContainer", 409),
    (E.AccountNotEmpty, "AccountNotEmpty", 409),
    (E.BucketNotFound, "NoSuchBucket", None),
    (E.ObjectNotFound, "NoSuchKey", None),
    (E.VersionNotFound, "NoSuchVersion", None),
    (E.UploadNotFound, "NoSuchUpload", None),
    (E.AccessKeyNotFound, "InvalidAccessKeyId", None),
    (E.AccountNotFound, "InvalidArgument", 400),
    (E.TagSetNotFound, "NoSuchTagSet", None),
    (E.BucketAlreadyExists, "BucketAlreadyExists", None),
    (E.BucketAlreadyOwnedByYou, "BucketAlreadyOwnedByYou", None),
    (E.BucketNotEmpty, "BucketNotEmpty", None),
    (E.AccountAlreadyExists, "InvalidArgument", 409),
    (E.InvalidBucketName, "InvalidBucketName", None),
    (E.KeyTooLong, "KeyTooLongError", None),
    (E.InvalidPart, "InvalidPart", None),
    (E.InvalidPartOrder, "InvalidPartOrder", None),
    (E.PartTooSmall, "EntityTooSmall", None),
    (E.EntityTooLarge, "EntityTooLarge", None),
    (E.BadDigest, "BadDigest", None),
    (E.IncompleteBody, "IncompleteBody", None),
    (E.InvalidTag, "InvalidTag", None),
    (E.MalformedDocument, "MalformedXML", None),
    (E.MetadataTooLarge, "MetadataTooLarge", None),
    (E.InvalidPartNumber, "InvalidPart", 400),  # as S3 answers partNumber > parts count
    (E.InvalidArgument, "InvalidArgument", None),
    (E.InvalidRequest, "InvalidRequest", None),
    (E.PreconditionFailed, "PreconditionFailed", None),
    (E.MethodNotAllowed, "MethodNotAllowed", None),
    (E.InvalidObjectState, "InvalidObjectState", None),
    (E.AccessDenied, "AccessDenied", None),
    (E.StorageFull, "InsufficientStorage", 507),
    (E.Unavailable, "ServiceUnavailable", None),
    (E.DataCorruption, "InternalError", None),
    (E.NotSupported, "NotImplemented", None),
]

_CONFIG_MISSING = {
    "cors": "NoSuchCORSConfiguration",
    "policy": "NoSuchBucketPolicy",
    "lifecycle": "NoSuchLifecycleConfiguration",
    "encryption": "ServerSideEncryptionConfigurationNotFoundError",
    "object-lock": "ObjectLockConfigurationNotFoundError",
    "ownership": "OwnershipControlsNotFoundError",
    "public-access-block": "NoSuchPublicAccessBlockConfiguration",
    "website": "NoSuchWebsiteConfiguration",
}

# Domain detail names -> S3 XML element names.
_DETAILS = {
    "bucket": "BucketName",
    "key": "Key",
    "version_id": "VersionId",
    "upload_id": "UploadId",
    "part_number": "PartNumber",
    "condition": "Condition",
    "argument": "ArgumentName",
    "value": "ArgumentValue",
    "size": "ProposedSize",
    "min_size": "MinSizeAllowed",
}


def to_s3_error(err: E.TesseraError) -> S3Error:
    """The S3 error a domain error is answered with."""
    extra = {_DETAILS[k]: str(v) for k, v in err.details.items() if k in _DETAILS}
    headers: dict[str, str] = {}
    if isinstance(err, E.DeleteMarkerHit):
        headers = {"x-amz-delete-marker": "true", "x-amz-version-id": err.version_id}
        if err.last_modified is not None:
            headers["Last-Modified"] = format_http_date(err.last_modified)
        if err.named:
            return S3Error("MethodNotAllowed", err.message, status=405, headers=headers)
        return S3Error("NoSuchKey", err.message, status=404, headers=headers)
    if type(err) is E.ObjectNotFound:
        # Like RGW: say explicitly that no delete marker hides the key.
        headers = {"x-amz-delete-marker": "false"}
    if isinstance(err, E.InvalidRange):
        return S3Error(
            "InvalidRange",
            err.message,
            status=416,
            extra={"RangeRequested": "", "ActualObjectSize": str(err.size)},
            headers={"Content-Range": f"bytes */{err.size}"},
        )
    if isinstance(err, E.ConfigurationNotFound):
        code = _CONFIG_MISSING.get(str(err.details.get("kind", "")), "NoSuchConfiguration")
        return S3Error(code, err.message, status=404, extra=extra)
    for cls, code, status in _TABLE:
        if isinstance(err, cls):
            return S3Error(code, err.message, status=status, extra=extra, headers=headers)
    return S3Error("InternalError", "We encountered an internal error. Please try again.")


def not_modified(e: E.NotModified, request_id: str) -> web.Response:
    """The 304 answer to a conditional GET or HEAD (no body, the current validators)."""
    headers = {
        "x-amz-request-id": request_id,
        "ETag": quote_etag(e.etag),
        "Last-Modified": format_http_date(e.last_modified),
    }
    return web.Response(status=304, headers=headers)
