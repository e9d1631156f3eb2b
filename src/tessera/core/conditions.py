"""Conditional request evaluation (RFC 9110 §13 as S3 applies it).

Order, as S3 does it: If-Match, then If-Unmodified-Since (ignored when If-Match
is present and passes), then If-None-Match, then If-Modified-Since (ignored when
If-None-Match is present). For reads, a failed If-None-Match / If-Modified-Since
is ``NotModified`` (304); for writes and copy sources every failure is
``PreconditionFailed`` (412).

Writes (PutObject, CompleteMultipartUpload) look at the current version of the
key, a delete marker counting as no object: ``If-Match`` needs an object with
one of the ETags (``*``: any object) and answers ``NoSuchKey`` (404) when there
is none, as S3 does; ``If-None-Match`` fails when the object has one of the
ETags (``*``: when there is an object at all).

Deletes (DeleteObject, DeleteObjects) look at the version they would remove or
hide: the named version, else the current one, delete markers included. A
delete marker has no ETag and no size, so only ``If-Match: *`` and the
last-modified condition can match it. When there is no such version at all the
delete succeeds as a no-op (the caller's business: these functions get a version).
Last-modified times are compared in whole seconds, the precision of the HTTP
dates clients learn them from.

The object services evaluate these checks twice: once before the body is read
(to refuse early), and again inside the metadata transaction that commits the
change (a store ``guard``), so that no concurrent write can slip in between.
"""

from __future__ import annotations

from tessera.core.requests import Conditions, DeleteConditions
from tessera.model.errors import NotModified, ObjectNotFound, PreconditionFailed
from tessera.model.records import ObjectVersion


def _matches(etag: str, candidates: tuple[str, ...]) -> bool:
    return any(c == "*" or c == etag for c in candidates)


def check_read(cond: Conditions, v: ObjectVersion) -> None:
    """Raise PreconditionFailed or NotModified for a GET/HEAD of ``v``."""
    if cond.empty:
        return
    mtime = int(v.last_modified)
    if cond.if_match is not None:
        if not _matches(v.etag, cond.if_match):
            raise PreconditionFailed(
                "At least one of the pre-conditions you specified did not hold",
                condition="If-Match",
            )
    elif cond.if_unmodified_since is not None and mtime > cond.if_unmodified_since:
        raise PreconditionFailed(
            "At least one of the pre-conditions you specified did not hold",
            condition="If-Unmodified-Since",
        )
    if cond.if_none_match is not None:
        if _matches(v.etag, cond.if_none_match):
            raise NotModified(v.etag, v.last_modified)
    elif cond.if_modified_since is not None and mtime <= cond.if_modified_since:
        raise NotModified(v.etag, v.last_modified)


def check_copy_source(cond: Conditions, v: ObjectVersion) -> None:
    """Like :func:`check_read`, but every failure is PreconditionFailed (copy sources)."""
    try:
        check_read(cond, v)
    except NotModified as e:
        raise PreconditionFailed(
            "At least one of the pre-conditions you specified did not hold"
        ) from e


def check_write(cond: Conditions, current: ObjectVersion | None) -> None:
    """Conditional PUT against the key's latest version ``current`` (None: no
    version). Raises ObjectNotFound (If-Match, no object) or PreconditionFailed."""
    live = current if current is not None and not current.delete_marker else None
    if cond.if_match is not None:
        if live is None:
            raise ObjectNotFound("The specified key does not exist.")
        if not _matches(live.etag, cond.if_match):
            raise PreconditionFailed(
                "At least one of the pre-conditions you specified did not hold",
                condition="If-Match",
            )
    if (
        cond.if_none_match is not None
        and live is not None
        and _matches(live.etag, cond.if_none_match)
    ):
        raise PreconditionFailed(
            "At least one of the pre-conditions you specified did not hold",
            condition="If-None-Match",
        )


def check_delete(cond: DeleteConditions, v: ObjectVersion) -> None:
    """Conditional delete of ``v`` (the named or the current version, possibly a
    delete marker). Raises PreconditionFailed."""
    failed = None
    if cond.if_match is not None and not (
        "*" in cond.if_match or (not v.delete_marker and v.etag in cond.if_match)
    ):
        failed = "If-Match"
    elif cond.last_modified is not None and int(v.last_modified) != int(cond.last_modified):
        failed = "x-amz-if-match-last-modified-time"
    elif cond.size is not None and (v.delete_marker or v.size != cond.size):
        failed = "x-amz-if-match-size"
    if failed is not None:
        raise PreconditionFailed(
            "At least one of the pre-conditions you specified did not hold", condition=failed
        )
