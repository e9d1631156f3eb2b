"""What the SDK returns: plain frozen records, the same from every backend.

Times are floats (seconds since the epoch, UTC). ``properties`` are the
object's user metadata (``x-amz-meta-*`` over S3), the container's or the
account's free key/value pairs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AccountInfo:
    id: str
    display_name: str = ""
    created: float = 0.0
    properties: dict[str, str] = field(default_factory=dict)
    containers: int = 0
    objects: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AccessKeyInfo:
    access_key_id: str
    secret: str
    account: str


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    name: str
    owner: str = ""
    created: float = 0.0
    objects: int = 0
    bytes: int = 0
    versioning: str = "unversioned"
    policy: str = ""
    frozen: bool = False
    """True for a snapshot (read-only)."""
    properties: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    container: str
    name: str
    version: str = "null"
    size: int = 0
    etag: str = ""
    """Unquoted: hex MD5, or ``<hex>-N`` for a multipart object."""
    mtime: float = 0.0
    mime_type: str = "binary/octet-stream"
    properties: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    policy: str = ""
    deleted: bool = False
    """True for a delete marker."""
    is_latest: bool = True
    checksums: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ObjectList:
    """One page of an object listing."""

    objects: list[ObjectInfo]
    prefixes: list[str]
    truncated: bool
    next_marker: str = ""
    """Pass as ``marker`` to get the next page ("" when not truncated)."""
    next_version_marker: str = ""
    """With ``versions=True``: pass as ``version_marker`` too."""


@dataclass(frozen=True, slots=True)
class FragmentLocation:
    index: int
    block: str
    size: int
    server: str
    """Chunk server (or local disk) id holding it."""


@dataclass(frozen=True, slots=True)
class SegmentLocation:
    offset: int
    size: int
    policy: str
    hash: str
    fragments: list[FragmentLocation]


@dataclass(frozen=True, slots=True)
class ObjectLocation:
    """Where an object's bytes are (``object_locate``)."""

    container: str
    name: str
    version: str
    size: int
    inline: bool
    """True when the object is small enough to live in its metadata row."""
    segments: list[SegmentLocation]
