"""Tessera: a distributed, S3-compatible object store.

This package root holds the version and the SDK entry points (``connect``,
``open``); the layers live in sub-packages
(see DESIGN.md section 2 and ``.importlinter``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera._version import __version__

if TYPE_CHECKING:
    from tessera.sdk.aio import AsyncObjectStorageApi
    from tessera.sdk.api import ObjectStorageApi

__all__ = ["__version__", "aconnect", "aopen", "connect", "open"]


def connect(endpoint: str, access_key: str, secret_key: str, **kw: Any) -> ObjectStorageApi:
    """An :class:`~tessera.sdk.api.ObjectStorageApi` on the Tessera server at
    ``endpoint`` (``http(s)://host:port``), acting for the account of
    ``access_key``. ``kw`` go to :class:`~tessera.sdk.remote.RemoteBackend`
    (``region``, ``verify``, ``timeout``). Raises Unauthorized for bad
    credentials, TesseraClientError (code ``ConnectionError``) when unreachable."""
    from tessera.sdk.api import ObjectStorageApi
    from tessera.sdk.remote import RemoteBackend

    return ObjectStorageApi(RemoteBackend(endpoint, access_key, secret_key, **kw))


def open(path: str | Path, *, account: str = "root") -> ObjectStorageApi:
    """An :class:`~tessera.sdk.api.ObjectStorageApi` over the data directory
    ``path`` (``str`` or ``Path``; created when missing), served in this process
    by :class:`~tessera.server.embedded.EmbeddedBackend`: no server. Acts for
    ``account`` (root by default). Raises Conflict (``DataDirectoryInUse``) while
    a server holds the directory. Close the API to release it."""
    from tessera.sdk.api import ObjectStorageApi
    from tessera.server.embedded import open_embedded

    return ObjectStorageApi(open_embedded(path, account=account))


async def aconnect(
    endpoint: str, access_key: str, secret_key: str, **kw: Any
) -> AsyncObjectStorageApi:
    """:func:`connect` (run in a worker thread), wrapped in an
    :class:`~tessera.sdk.aio.AsyncObjectStorageApi` with its default pool.
    Same arguments and errors; ``async with await tessera.aconnect(...)``."""
    import asyncio

    from tessera.sdk.aio import AsyncObjectStorageApi

    api = await asyncio.to_thread(connect, endpoint, access_key, secret_key, **kw)
    return AsyncObjectStorageApi(api)


async def aopen(path: str | Path, *, account: str = "root") -> AsyncObjectStorageApi:
    """:func:`open` (run in a worker thread), wrapped in an
    :class:`~tessera.sdk.aio.AsyncObjectStorageApi` with its default pool.
    Same arguments and errors; close it (``aclose`` or ``async with``) to
    release the directory."""
    import asyncio

    from tessera.sdk.aio import AsyncObjectStorageApi

    api = await asyncio.to_thread(open, path, account=account)
    return AsyncObjectStorageApi(api)
