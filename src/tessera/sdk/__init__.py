"""Tessera's Python SDK (DESIGN.md §7).

Imports only :mod:`tessera.protocol`, :mod:`tessera.common` and its HTTP
libraries (botocore/s3transfer, urllib3), so it can ship alone. Entry points:
``tessera.connect(endpoint, access_key, secret_key)`` and ``tessera.open(path)``
(see :mod:`tessera`), both returning an :class:`~tessera.sdk.api.ObjectStorageApi`.
:class:`~tessera.sdk.remote.RemoteBackend` is not imported here, so importing
the SDK (its errors, records) does not load botocore; ``Bucket``,
``BlockClient``, ``PAR``/``create_par`` and the storage volumes are imported on
first use (``from tessera.sdk import Bucket`` works).
"""

from typing import Any

from tessera.sdk.api import ContainerList, ObjectStorageApi, ObjectStream
from tessera.sdk.backend import Backend
from tessera.sdk.errors import (
    BadRequest,
    Conflict,
    ContainerNotEmpty,
    DeadlineReached,
    EtagMismatch,
    Forbidden,
    NoSuchAccount,
    NoSuchContainer,
    NoSuchObject,
    NotFound,
    PreconditionFailed,
    RangeNotSatisfiable,
    ServiceUnavailable,
    TesseraClientError,
    Unauthorized,
)
from tessera.sdk.records import (
    AccessKeyInfo,
    AccountInfo,
    ContainerInfo,
    FragmentLocation,
    ObjectInfo,
    ObjectList,
    ObjectLocation,
    SegmentLocation,
)

__all__ = [
    "AccessKeyInfo",
    "AccountInfo",
    "Backend",
    "BadRequest",
    "Conflict",
    "ContainerInfo",
    "ContainerList",
    "ContainerNotEmpty",
    "DeadlineReached",
    "EtagMismatch",
    "Forbidden",
    "FragmentLocation",
    "NoSuchAccount",
    "NoSuchContainer",
    "NoSuchObject",
    "NotFound",
    "ObjectInfo",
    "ObjectList",
    "ObjectLocation",
    "ObjectStorageApi",
    "ObjectStream",
    "PreconditionFailed",
    "RangeNotSatisfiable",
    "SegmentLocation",
    "ServiceUnavailable",
    "TesseraClientError",
    "Unauthorized",
]

_LAZY = {
    "AsyncObjectStorageApi": "tessera.sdk.aio",
    "AsyncObjectStream": "tessera.sdk.aio",
    "Bucket": "tessera.sdk.bucket",
    "BlockClient": "tessera.sdk.blocks",
    "BlockWriteError": "tessera.sdk.blocks",
    "PAR": "tessera.sdk.par",
    "create_par": "tessera.sdk.par",
    "PARTimeoutError": "tessera.sdk.par_links",
    "ComputeRunner": "tessera.sdk.par_links",
    "StorageVolume": "tessera.sdk.volumes",
    "FileSystemVolume": "tessera.sdk.volumes",
    "S3Volume": "tessera.sdk.volumes",
    "TesseraVolume": "tessera.sdk.volumes",
    "volume_from_dict": "tessera.sdk.volumes",
}
__all__ += list(_LAZY)


def __getattr__(name: str) -> Any:
    """The heavier SDK parts, imported when first named."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tessera.sdk' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
