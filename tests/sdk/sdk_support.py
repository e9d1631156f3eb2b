"""Helpers of the SDK contract suite (fixtures are in ``conftest.py``)."""

from __future__ import annotations

import importlib.util
import random
import uuid
from collections.abc import Callable
from typing import Any

from tessera.sdk import ObjectStorageApi

EMBEDDED_MISSING = "tessera.server.embedded does not exist yet (tessera.open is not available)"

Login = Callable[[str], ObjectStorageApi]
"""``login(account)`` -> an API acting for ``account``."""


def embedded_available() -> bool:
    return importlib.util.find_spec("tessera.server.embedded") is not None


def unique(prefix: str = "sdk") -> str:
    """A fresh name usable as a container or account id."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` pseudo-random bytes, the same for the same ``seed``."""
    return random.Random(seed).randbytes(size)


def read_all(api: ObjectStorageApi, container: str, name: str, **kw: Any) -> bytes:
    _, stream = api.object_fetch(container, name, **kw)
    return stream.read()
