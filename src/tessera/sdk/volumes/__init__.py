"""flowserv-style storage volumes (issue 4): one contract
(:class:`StorageVolume`) over a local folder, any S3 bucket and a Tessera
container, and :func:`volume_from_dict` to rebuild any of them from its
:meth:`~StorageVolume.to_dict` document.

:class:`S3Volume` is imported on first use (it loads boto3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tessera.sdk.volumes.base import (
    FileHandle,
    InvalidKey,
    InvalidVolumeConfig,
    IOBuffer,
    IOHandle,
    StorageVolume,
)
from tessera.sdk.volumes.fs import FileSystemVolume
from tessera.sdk.volumes.tessera import TesseraVolume

if TYPE_CHECKING:
    from tessera.sdk.api import ObjectStorageApi
    from tessera.sdk.volumes.s3 import S3Volume

__all__ = [
    "FileHandle",
    "FileSystemVolume",
    "IOBuffer",
    "IOHandle",
    "InvalidKey",
    "InvalidVolumeConfig",
    "S3Volume",
    "StorageVolume",
    "TesseraVolume",
    "volume_from_dict",
]


def __getattr__(name: str) -> Any:
    if name == "S3Volume":
        from tessera.sdk.volumes.s3 import S3Volume

        return S3Volume
    raise AttributeError(name)


def volume_from_dict(doc: dict[str, Any], conn: ObjectStorageApi | None = None) -> StorageVolume:
    """The volume ``doc`` describes (``type`` ``fs`` — the default —, ``s3``
    or ``tessera``; a Tessera volume needs ``conn``). An S3 document without
    keys (the default of ``to_dict``) gives a volume on boto3's credential
    chain. Raises InvalidVolumeConfig for an unknown type or missing args."""
    kind = doc.get("type") or "fs"
    if kind == "fs":
        return FileSystemVolume.from_dict(doc)
    if kind == "s3":
        from tessera.sdk.volumes.s3 import S3Volume

        return S3Volume.from_dict(doc)
    if kind == "tessera":
        return TesseraVolume.from_dict(doc, conn)
    raise InvalidVolumeConfig(f"unknown volume type {kind!r}")
