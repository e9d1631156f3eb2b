"""Conditional request evaluation (RFC 9110 §13 as S3 applies it).

Order, as S3 does it: If-Match, then If-Unmodified-Since (ignored when If-Match
is present and passes), then If-None-Match, then If-Modified-Since (ignored when
If-None-Match is present). For reads, a failed If-None-Match / If-Modified-Since
is ``NotModified`` (304); for writes and copy sources every failure is
``PreconditionFailed`` (412).
"""

from __future__ import annotations

from tessera.core.requests import Conditions
from tessera.model.errors import NotModified, PreconditionFailed
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
    """Conditional PUT: If-Match needs an existing object with that ETag;
    If-None-Match ``*`` needs no current object."""
    live = current if current is not None and not current.delete_marker else None
    if cond.if_match is not None and (live is None or not _matches(live.etag, cond.if_match)):
        raise PreconditionFailed(
            "At least one of the pre-conditions you specified did not hold", condition="If-Match"
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
