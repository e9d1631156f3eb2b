"""Errors the SDK raises, the same whichever backend (remote or embedded) served
the call. Each carries the S3-style ``code`` and HTTP ``status`` it maps to, so a
caller can branch on the class or on the code."""

from __future__ import annotations


class TesseraClientError(Exception):
    """Base of every SDK error."""

    code = "InternalError"
    status = 500

    def __init__(self, message: str = "", *, code: str | None = None, status: int | None = None):
        super().__init__(message or self.__class__.__name__)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class BadRequest(TesseraClientError):
    code, status = "InvalidArgument", 400


class Unauthorized(TesseraClientError):
    """Bad or expired credentials or signature."""

    code, status = "AccessDenied", 401


class Forbidden(TesseraClientError):
    """Authenticated, but not allowed (another account's container...)."""

    code, status = "AccessDenied", 403


class NotFound(TesseraClientError):
    code, status = "NotFound", 404


class NoSuchAccount(NotFound):
    code = "NoSuchAccount"


class NoSuchContainer(NotFound):
    code = "NoSuchBucket"


class NoSuchObject(NotFound):
    code = "NoSuchKey"


class Conflict(TesseraClientError):
    """The target exists, or is not empty, or changed meanwhile."""

    code, status = "Conflict", 409


class ContainerNotEmpty(Conflict):
    code = "BucketNotEmpty"


class PreconditionFailed(TesseraClientError):
    code, status = "PreconditionFailed", 412


class EtagMismatch(BadRequest):
    """The stored object's ETag differs from the one the caller promised."""

    code = "BadDigest"


class RangeNotSatisfiable(TesseraClientError):
    code, status = "InvalidRange", 416


class ServiceUnavailable(TesseraClientError):
    code, status = "ServiceUnavailable", 503


class DeadlineReached(TesseraClientError):
    """The call's ``deadline`` passed before it finished."""

    code, status = "RequestTimeout", 408


_BY_CODE: dict[str, type[TesseraClientError]] = {
    "NoSuchBucket": NoSuchContainer,
    "NoSuchKey": NoSuchObject,
    "NoSuchVersion": NoSuchObject,
    "NoSuchAccount": NoSuchAccount,
    "NoSuchUpload": NotFound,
    "NoSuchEndpoint": NotFound,
    "BucketNotEmpty": ContainerNotEmpty,
    "BucketAlreadyExists": Conflict,
    "BucketAlreadyOwnedByYou": Conflict,
    "AccountAlreadyExists": Conflict,
    "AccountNotEmpty": Conflict,
    "FrozenContainer": Conflict,
    "ObjectDrained": NoSuchObject,
    "PreconditionFailed": PreconditionFailed,
    "InvalidRange": RangeNotSatisfiable,
    "BadDigest": EtagMismatch,
    "ServiceUnavailable": ServiceUnavailable,
    "SlowDown": ServiceUnavailable,
    "RequestTimeout": DeadlineReached,
}
_BY_STATUS: dict[int, type[TesseraClientError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    416: RangeNotSatisfiable,
    503: ServiceUnavailable,
}


def error_for(code: str, message: str, status: int) -> TesseraClientError:
    """The SDK exception for an S3-style error ``code`` (falling back on ``status``)."""
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or TesseraClientError
    return cls(message or code, code=code, status=status)
