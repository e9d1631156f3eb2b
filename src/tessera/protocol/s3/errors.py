"""S3 error codes, their HTTP statuses, and the XML error document.

:class:`S3Error` is the only exception the gateway answers with; domain errors
are translated into it by the one table in :mod:`tessera.gateway.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape as _sax_escape

from defusedxml import ElementTree

# code -> (HTTP status, default message)
ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Error parsing the X-Amz-Credential parameter."),
    "BadDigest": (400, "The Content-MD5 or checksum you specified did not match what we received."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available."),
    "BucketAlreadyOwnedByYou": (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    ),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size."),
    "EntityTooSmall": (
        400,
        "Your proposed upload is smaller than the minimum allowed object size.",
    ),
    "IllegalVersioningConfigurationException": (
        400,
        "The versioning configuration specified in the request is invalid.",
    ),
    "IncompleteBody": (
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    ),
    "InsufficientStorage": (507, "There is not enough space left to store the object."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (
        403,
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidBucketState": (409, "The request is not valid with the current state of the bucket."),
    "InvalidDigest": (400, "The Content-MD5 you specified was invalid."),
    "InvalidObjectState": (403, "The operation is not valid for the current state of the object."),
    "InvalidPart": (400, "One or more of the specified parts could not be found."),
    "InvalidPartNumber": (416, "The requested partnumber is not satisfiable."),
    "InvalidPolicyDocument": (
        400,
        "The content of the form does not meet the conditions specified in the policy document.",
    ),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order."),
    "InvalidRange": (416, "The requested range is not satisfiable."),
    "InvalidRequest": (400, "Invalid Request"),
    "InvalidStorageClass": (400, "The storage class you specified is not valid."),
    "InvalidTag": (400, "The tag provided was not a valid tag."),
    "InvalidURI": (400, "Couldn't parse the specified URI."),
    "KeyTooLongError": (400, "Your key is too long."),
    "MalformedTrailerError": (
        400,
        "The request contained trailing data that was not well-formed"
        " or did not conform to our published schema.",
    ),
    "MalformedXML": (
        400,
        "The XML you provided was not well-formed or did not validate against our published schema.",
    ),
    "MalformedPOSTRequest": (
        400,
        "The body of your POST request is not well-formed multipart/form-data.",
    ),
    "MaxMessageLengthExceeded": (400, "Your request was too big."),
    "MaxPostPreDataLengthExceededError": (
        400,
        "Your POST request fields preceding the upload file were too large.",
    ),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "MissingRequestBodyError": (400, "Request Body is empty."),
    "MissingSecurityHeader": (400, "Your request is missing a required header."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchBucketPolicy": (404, "The bucket policy does not exist."),
    "NoSuchCORSConfiguration": (404, "The CORS configuration does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchLifecycleConfiguration": (404, "The lifecycle configuration does not exist."),
    "NoSuchTagSet": (404, "The TagSet does not exist."),
    "NoSuchUpload": (404, "The specified multipart upload does not exist."),
    "NoSuchVersion": (404, "The specified version does not exist."),
    "NoSuchWebsiteConfiguration": (
        404,
        "The specified bucket does not have a website configuration.",
    ),
    "NoSuchPublicAccessBlockConfiguration": (
        404,
        "The public access block configuration was not found.",
    ),
    "NoSuchConfiguration": (404, "The specified configuration does not exist."),
    "NotImplemented": (501, "A header you provided implies functionality that is not implemented."),
    "ObjectLockConfigurationNotFoundError": (
        404,
        "Object Lock configuration does not exist for this bucket.",
    ),
    "OwnershipControlsNotFoundError": (404, "The bucket ownership controls were not found."),
    "PreconditionFailed": (412, "At least one of the preconditions you specified did not hold."),
    "RequestTimeTooSkewed": (
        403,
        "The difference between the request time and the server's time is too large.",
    ),
    "RequestTimeout": (
        400,
        "Your socket connection to the server was not read from or written to within the timeout period.",
    ),
    "ServerSideEncryptionConfigurationNotFoundError": (
        404,
        "The server side encryption configuration was not found.",
    ),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided.",
    ),
    "SlowDown": (503, "Please reduce your request rate."),
    "XAmzContentSHA256Mismatch": (
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
}


_CONTROL_REFS = {chr(c): f"&#x{c:x};" for c in range(0x20) if c not in (0x09, 0x0A)}


class S3Error(Exception):
    """An error answered to an S3 client: code, HTTP status, message, extra XML
    elements for the error document and extra response headers."""

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        status: int | None = None,
        extra: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        default_status, default_message = ERRORS.get(code, (400, code))
        self.code = code
        self.message = message or default_message
        self.status = status if status is not None else default_status
        self.extra: dict[str, str] = dict(extra or {})
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(f"{code}: {self.message}")


def error_document(
    code: str,
    message: str,
    *,
    resource: str = "",
    request_id: str = "",
    extra: Mapping[str, str] | None = None,
) -> bytes:
    """The XML body of an error response."""

    def escape(text: str) -> str:
        # As xml.render: "\r" would read back as "\n", other C0 controls have no
        # raw form in XML 1.0 (keys and StringToSign may hold them).
        return _sax_escape(text, _CONTROL_REFS)

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>",
    ]
    for name, value in (extra or {}).items():
        parts.append(f"<{name}>{escape(value)}</{name}>")
    if resource:
        parts.append(f"<Resource>{escape(resource)}</Resource>")
    parts.append(
        f"<RequestId>{escape(request_id)}</RequestId><HostId>{escape(request_id)}</HostId>"
    )
    parts.append("</Error>")
    return "".join(parts).encode("utf-8")


def parse_error_document(body: bytes) -> tuple[str, str]:
    """(code, message) of an error document; ("", "") when it is not one."""
    try:
        root = ElementTree.fromstring(body)
    except Exception:
        return "", ""
    if root.tag.rsplit("}", 1)[-1] != "Error":
        return "", ""
    code = root.findtext("Code") or ""
    return code, root.findtext("Message") or ""
