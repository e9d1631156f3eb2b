"""Identifier generation.

Version ids and upload ids are opaque to clients. Version ids are built so that
they are unique across gateways without coordination: 64 bits of time plus 64
random bits, encoded url-safe. Ordering of versions is kept by the metadata
store (an insertion sequence), never by parsing these strings.
"""

from __future__ import annotations

import base64
import itertools
import os
import secrets
import time

NULL_VERSION = "null"
"""The S3 version id of objects written while versioning is off or suspended."""


def new_version_id() -> str:
    """A fresh, unique, URL-safe version id (no ``/``, ``+`` or ``=``)."""
    raw = time.time_ns().to_bytes(8, "big") + os.urandom(8)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def new_upload_id() -> str:
    """A fresh multipart upload id (URL-safe, 32 characters)."""
    return secrets.token_urlsafe(24)


def _request_id_counter() -> itertools.count[int]:
    return itertools.count(int.from_bytes(os.urandom(6), "big") << 16)


_request_ids = _request_id_counter()


def _reseed_after_fork() -> None:
    global _request_ids
    _request_ids = _request_id_counter()


os.register_at_fork(after_in_child=_reseed_after_fork)  # worker processes: own ranges


def new_request_id() -> str:
    """A request id for logs and the ``x-amz-request-id`` header (16 hex upper).

    Unique, not secret: a per-process counter from a random 48-bit start (a
    kernel ``getrandom`` call per request cost 12 us, a measurable share of a
    small request). Two processes' ids overlap only if their starts (random
    multiples of 65,536 among 2^48) lie closer together than the number of
    requests served."""
    return f"{next(_request_ids) & 0xFFFFFFFFFFFFFFFF:016X}"


def new_access_key_id() -> str:
    """An AWS-shaped access key id: 20 upper-case alphanumerics starting with ``TK``."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "TK" + "".join(secrets.choice(alphabet) for _ in range(18))


def new_secret_key() -> str:
    """A 40-character secret access key."""
    return secrets.token_urlsafe(30)[:40]
