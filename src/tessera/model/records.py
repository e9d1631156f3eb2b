"""Frozen records of the data model (DESIGN.md §3).

Timestamps are floats (seconds since the epoch, UTC). Keys are arbitrary UTF-8
strings of at most 1024 bytes and are never interpreted as paths. Records are
immutable: changes go through the metadata store and produce new records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from tessera.model.manifest import Manifest

T = TypeVar("T")

VERSIONING_STATES = ("unversioned", "enabled", "suspended")


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    """Account id (also the canonical user id shown as Owner)."""
    display_name: str
    created: float
    email: str = ""
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccessKey:
    access_key_id: str
    secret: str
    account_id: str
    created: float
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    owner: str
    """Account id of the owner."""
    created: float
    region: str = "us-east-1"
    versioning: str = "unversioned"
    """One of ``unversioned``, ``enabled``, ``suspended``."""
    policy: str = "plain"
    """Default storage policy for new objects."""
    object_lock: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)
    """Opaque stored sub-resource documents by name (``cors``, ``policy``, ``lifecycle``,
    ``acl``...): the gateway stores and returns them verbatim."""


@dataclass(frozen=True, slots=True)
class ObjectPart:
    """One part of a completed multipart object."""

    number: int
    """The part number it was uploaded with (1..10000). Reads and
    GetObjectAttributes number parts by position instead (1..N), so that the
    two agree when an upload skipped numbers; this one is kept as a record."""
    size: int
    checksums: dict[str, str] = field(default_factory=dict)
    """The part's checksum in the object's checksum algorithm (base64), if the
    upload named one; empty otherwise."""


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    bucket: str
    key: str
    version_id: str
    """``null`` for objects written while versioning was off or suspended."""
    last_modified: float
    size: int = 0
    etag: str = ""
    """Unquoted ETag: hex md5, or ``<hex>-N`` for multipart objects."""
    delete_marker: bool = False
    is_latest: bool = True
    """Filled by the metadata store on reads; ignored on writes."""
    content_type: str = "binary/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    """Stored representation headers: content-encoding, content-disposition,
    content-language, cache-control, expires (lower-case names)."""
    user_metadata: dict[str, str] = field(default_factory=dict)
    """``x-amz-meta-*`` values, keyed without the prefix (lower-case)."""
    tags: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    """Additional checksums keyed by algorithm (``CRC32``...), base64. A value
    with a ``-N`` suffix is a ``COMPOSITE`` multipart checksum; any other is of
    type ``FULL_OBJECT`` (see :func:`tessera.common.checksums.checksum_type_of`)."""
    storage_class: str = "STANDARD"
    owner: str = ""
    """Account id of the writer."""
    inline: bytes | None = None
    """Whole content of a small object; None when the data is in :attr:`manifest`."""
    manifest: Manifest = field(default_factory=Manifest)
    parts: tuple[ObjectPart, ...] = ()
    """The parts of a multipart object in object order (``partNumber`` reads,
    GetObjectAttributes); empty for other objects."""
    acl: str = "private"
    """Canned ACL (``private``, ``public-read``...; see ``core.access``). Listing
    records always say ``private``: listings do not read it."""
    upload_id: str = ""
    """Id of the multipart upload whose completion created this version, else
    empty. Lets a repeated CompleteMultipartUpload find what it created; never
    copied to another version. Listing records leave it empty."""


@dataclass(frozen=True, slots=True)
class Upload:
    """An in-progress multipart upload."""

    bucket: str
    key: str
    upload_id: str
    initiated: float
    owner: str
    content_type: str = "binary/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    user_metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    policy: str = "plain"
    checksum_algorithm: str = ""
    """Algorithm named at creation (``x-amz-checksum-algorithm``), or empty."""
    checksum_type: str = ""
    """``COMPOSITE`` or ``FULL_OBJECT`` when an algorithm was named, else empty."""
    acl: str = "private"
    """Canned ACL the completed object will carry."""


@dataclass(frozen=True, slots=True)
class Part:
    upload_id: str
    number: int
    """1..10000."""
    size: int
    etag: str
    """Unquoted hex md5 of the part."""
    last_modified: float
    md5: bytes = b""
    """Binary md5 (for the multipart ETag)."""
    checksums: dict[str, str] = field(default_factory=dict)
    inline: bytes | None = None
    manifest: Manifest = field(default_factory=Manifest)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing."""

    items: list[T]
    truncated: bool
