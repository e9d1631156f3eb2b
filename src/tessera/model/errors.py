"""Domain errors: what went wrong, in Tessera's terms.

No HTTP status or S3 code lives here; the gateway maps these to S3 error codes
in one table (``tessera.gateway.errors``). Every error carries the identifiers a
client needs to understand it as attributes.
"""

from __future__ import annotations


class TesseraError(Exception):
    """Base of all domain errors."""

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__doc__ or self.__class__.__name__
        self.details = details


# --- not found -------------------------------------------------------------
class NotFound(TesseraError):
    """Something named does not exist."""


class BucketNotFound(NotFound):
    """The specified bucket does not exist."""


class ObjectNotFound(NotFound):
    """The specified key does not exist."""


class VersionNotFound(NotFound):
    """The specified version does not exist."""


class UploadNotFound(NotFound):
    """The specified multipart upload does not exist."""


class AccountNotFound(NotFound):
    """The specified account does not exist."""


class AccessKeyNotFound(NotFound):
    """The access key id does not exist."""


class ServerNotFound(NotFound):
    """No chunk server with that id in the cluster map."""


class TagSetNotFound(NotFound):
    """There is no tag set on this resource."""


class ConfigurationNotFound(NotFound):
    """The requested bucket configuration (CORS, policy, lifecycle...) is not set."""


class ObjectDrained(NotFound):
    """The object's data was drained: its record remains (listings and HEAD show
    it) but its bytes are gone, so it cannot be read, copied or linked."""


# --- conflicts ---------------------------------------------------------------
class Conflict(TesseraError):
    """The request conflicts with the current state."""


class BucketAlreadyExists(Conflict):
    """The bucket name is taken by another account."""


class BucketAlreadyOwnedByYou(Conflict):
    """The caller already owns a bucket of that name."""


class BucketNotEmpty(Conflict):
    """The bucket still holds objects, versions or uploads."""


class AccountAlreadyExists(Conflict):
    """An account of that id already exists."""


class AccountNotEmpty(Conflict):
    """The account still owns buckets; delete them first."""


class FrozenBucket(Conflict):
    """The bucket is a snapshot (frozen): its objects cannot be written,
    changed or deleted; the bucket itself can be deleted."""


# --- bad requests ------------------------------------------------------------
class InvalidRequest(TesseraError):
    """The request is not valid."""


class InvalidArgument(InvalidRequest):
    """An argument is not valid."""


class InvalidBucketName(InvalidRequest):
    """The bucket name does not follow the naming rules."""


class KeyTooLong(InvalidRequest):
    """The key is longer than 1024 bytes of UTF-8."""


class InvalidPart(InvalidRequest):
    """A listed part was not uploaded or its ETag does not match."""


class InvalidPartOrder(InvalidRequest):
    """The parts of a completion request are not in ascending order."""


class PartTooSmall(InvalidRequest):
    """A part other than the last is smaller than the minimum part size."""


class EntityTooLarge(InvalidRequest):
    """The body is larger than allowed."""


class BadDigest(InvalidRequest):
    """The data does not match the digest or checksum the client sent."""


class IncompleteBody(InvalidRequest):
    """The body ended before the declared length (or ran past it)."""


class InvalidRange(InvalidRequest):
    """The requested range cannot be satisfied."""

    def __init__(self, size: int) -> None:
        super().__init__("The requested range is not satisfiable", size=size)
        self.size = size


class InvalidTag(InvalidRequest):
    """A tag key or value is not valid, or there are too many tags."""


class MalformedDocument(InvalidRequest):
    """A request document could not be parsed."""


# --- preconditions -----------------------------------------------------------
class PreconditionFailed(TesseraError):
    """At least one of the preconditions did not hold."""


class NotModified(TesseraError):
    """The object was not modified (conditional GET/HEAD): answer 304."""

    def __init__(self, etag: str = "", last_modified: float = 0.0) -> None:
        super().__init__("Not Modified")
        self.etag = etag
        self.last_modified = last_modified


class MethodNotAllowed(TesseraError):
    """The operation is not allowed on this resource (e.g. GET of a delete marker version)."""


class DeleteMarkerHit(NotFound):
    """The latest version (or the named version) is a delete marker."""

    def __init__(
        self, message: str, *, version_id: str, named: bool, last_modified: float | None = None
    ) -> None:
        super().__init__(message)
        self.version_id = version_id
        self.named = named
        """True when the request named the delete marker's version id explicitly."""
        self.last_modified = last_modified
        """When the delete marker was written (S3 answers it as Last-Modified)."""


# --- permissions ---------------------------------------------------------------
class AccessDenied(TesseraError):
    """The caller is not allowed to do this."""


class ParNotFound(AccessDenied):
    """No usable pre-authenticated request has that id and secret (unknown, wrong
    secret or revoked: the three are not told apart)."""


class ParExpired(AccessDenied):
    """The pre-authenticated request has expired."""


# --- capacity and availability -----------------------------------------------------
class StorageFull(TesseraError):
    """No volume has room for the data."""


class Unavailable(TesseraError):
    """Not enough storage answered to meet quorum. This does not mean data is lost."""

    def __init__(self, message: str, causes: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.causes = causes or {}


class DataCorruption(TesseraError):
    """Stored data failed its checksum and no good copy could be found."""


class NotSupported(TesseraError):
    """The operation or option is not implemented."""


class MetadataTooLarge(InvalidRequest):
    """User metadata exceeds the allowed size."""


class InvalidPartNumber(InvalidRequest):
    """The requested part number is not satisfiable."""


class InvalidObjectState(TesseraError):
    """The operation is not valid for the object's current state."""
