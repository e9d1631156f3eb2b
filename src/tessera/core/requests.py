"""Typed inputs and outputs of :class:`~tessera.core.service.ObjectService`.

The gateway (and the embedded SDK) build these from their own wire formats; the
core never sees HTTP. Header-shaped values are already parsed here: dates are
floats, ETags unquoted, ranges are :class:`~tessera.common.ranges.RangeSpec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tessera.common.ranges import ByteRange, RangeSpec
from tessera.common.streams import ByteSource
from tessera.model.records import ObjectPart, ObjectVersion, Upload


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an authenticated account."""

    account_id: str


@dataclass(frozen=True, slots=True)
class Conditions:
    """Conditional-request inputs (If-* headers); ETags unquoted; ``*`` allowed."""

    if_match: tuple[str, ...] | None = None
    if_none_match: tuple[str, ...] | None = None
    if_modified_since: float | None = None
    if_unmodified_since: float | None = None

    @property
    def empty(self) -> bool:
        return (
            self.if_match is None
            and self.if_none_match is None
            and self.if_modified_since is None
            and self.if_unmodified_since is None
        )


@dataclass(frozen=True, slots=True)
class DeleteConditions:
    """What the version to delete must be (``If-Match``,
    ``x-amz-if-match-last-modified-time``, ``x-amz-if-match-size``, or the
    ``ETag``, ``LastModifiedTime`` and ``Size`` of a DeleteObjects entry)."""

    if_match: tuple[str, ...] | None = None
    """Unquoted ETags; ``*`` matches any version, a delete marker too."""
    last_modified: float | None = None
    """Compared in whole seconds (the precision of HTTP dates)."""
    size: int | None = None

    @property
    def empty(self) -> bool:
        return self.if_match is None and self.last_modified is None and self.size is None


@dataclass(frozen=True, slots=True)
class DeleteTarget:
    """One object of a DeleteObjects request."""

    key: str
    version_id: str | None = None
    conditions: DeleteConditions = field(default_factory=DeleteConditions)


@dataclass(frozen=True, slots=True)
class ObjectAttributes:
    """What a writer says about the object besides its bytes."""

    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    user_metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    acl: str = "private"
    """Canned ACL of the new object (never copied from a copy source, as in S3)."""


@dataclass(frozen=True, slots=True)
class Integrity:
    """Digests the client promised for a body, checked after the body is read.

    ``expected`` is called once the whole body has been consumed, so checksums
    sent as aws-chunked trailers are known by then. ``algorithms`` are computed
    (and stored) even when no value is expected.
    """

    content_md5: bytes | None = None
    algorithms: tuple[str, ...] = ()
    expected: Callable[[], dict[str, str]] = dict
    declared_size: int | None = None
    """Size the body must have (Content-Length / decoded length) or None."""


@dataclass(frozen=True, slots=True)
class PutRequest:
    bucket: str
    key: str
    body: ByteSource
    attributes: ObjectAttributes = field(default_factory=ObjectAttributes)
    integrity: Integrity = field(default_factory=Integrity)
    conditions: Conditions = field(default_factory=Conditions)
    """If-Match / If-None-Match on writes (conditional PUT; dates are ignored)."""


@dataclass(frozen=True, slots=True)
class GetRequest:
    bucket: str
    key: str
    version_id: str | None = None
    range: RangeSpec | None = None
    part_number: int | None = None
    conditions: Conditions = field(default_factory=Conditions)


@dataclass(slots=True)
class ObjectRead:
    """The answer to a GET or HEAD. ``body`` is None for HEAD."""

    version: ObjectVersion
    range: ByteRange | None
    """The served byte range, or None for the whole object."""
    parts_count: int | None = None
    body: ByteSource | None = None
    versioned: bool = False
    """True when the bucket has (or had) versioning on: the answer names the version id."""
    checksums: dict[str, str] = field(default_factory=dict)
    """Checksums of exactly the bytes served: the object's for a whole-object
    read, the part's for a ``partNumber`` read of a multipart object, none for
    a byte range."""
    checksum_type: str = ""
    """``FULL_OBJECT`` or ``COMPOSITE`` (the object's type) when :attr:`checksums`
    is not empty."""


@dataclass(frozen=True, slots=True)
class AttributesResult:
    """The answer to GetObjectAttributes."""

    version: ObjectVersion
    versioned: bool
    parts: list[tuple[int, ObjectPart]]
    """``(part number, part)`` of the listed page; parts are numbered by position
    (1..N), as ``partNumber`` reads number them."""
    truncated: bool


@dataclass(frozen=True, slots=True)
class CopyRequest:
    src_bucket: str
    src_key: str
    src_version_id: str | None
    dst_bucket: str
    dst_key: str
    metadata_directive: str = "COPY"
    """``COPY`` keeps the source's metadata; ``REPLACE`` uses :attr:`attributes`."""
    tagging_directive: str = "COPY"
    attributes: ObjectAttributes = field(default_factory=ObjectAttributes)
    source_conditions: Conditions = field(default_factory=Conditions)
    checksum_algorithm: str | None = None


@dataclass(frozen=True, slots=True)
class CopyResult:
    version: ObjectVersion
    source_version_id: str


@dataclass(frozen=True, slots=True)
class DeleteResult:
    key: str
    version_id: str | None
    """The version removed, or the delete marker's id created (None on unversioned buckets)."""
    delete_marker: bool = False
    """True when a delete marker was created or removed."""


@dataclass(frozen=True, slots=True)
class DeleteError:
    key: str
    version_id: str | None
    error: Exception


@dataclass(frozen=True, slots=True)
class ListRequest:
    bucket: str
    prefix: str = ""
    delimiter: str = ""
    after: str = ""
    """Start strictly after this key (marker / start-after / continuation)."""
    max_keys: int = 1000


@dataclass(slots=True)
class ListResult:
    objects: list[ObjectVersion]
    common_prefixes: list[str]
    truncated: bool
    next_after: str = ""
    """Last key or prefix returned: the position to continue from."""


@dataclass(frozen=True, slots=True)
class VersionListRequest:
    bucket: str
    prefix: str = ""
    delimiter: str = ""
    key_marker: str = ""
    version_id_marker: str = ""
    max_keys: int = 1000


@dataclass(slots=True)
class VersionListResult:
    versions: list[ObjectVersion]
    common_prefixes: list[str]
    truncated: bool
    next_key_marker: str = ""
    next_version_id_marker: str = ""


@dataclass(frozen=True, slots=True)
class UploadListRequest:
    bucket: str
    prefix: str = ""
    delimiter: str = ""
    key_marker: str = ""
    upload_id_marker: str = ""
    max_uploads: int = 1000


@dataclass(slots=True)
class UploadListResult:
    uploads: list[Upload]
    common_prefixes: list[str]
    truncated: bool
    next_key_marker: str = ""
    next_upload_id_marker: str = ""
