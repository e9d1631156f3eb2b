"""The chunk-server wire contract (DESIGN.md section 5), shared by server and client.

Sans-IO: paths, header names, query parameters, the JSON error body and the one
table mapping error codes to HTTP statuses. ``tessera.chunkserver.app`` serves it,
``tessera.data.remote`` speaks it. Paths are versioned under ``/v1``; below,
``D`` = ``/v1/disks/{disk}`` and ``B`` = ``D/blocks/{name}`` (each segment
percent-encoded). Answers are 200 with a JSON document unless noted:

* ``PUT B``: body = the block's data (Content-Length required; optional
  ``X-Tessera-Crc32c``, decimal, checked before storing) -> ``{"crc32c", "created",
  "mtime"}`` (``Volume.put``'s :class:`~tessera.data.volume.Stored`).
* ``GET B?start=&end=&crc32c=`` -> the bytes ``[start, end)``, verified; ``crc32c``
  is the expected whole-block CRC. Header ``X-Tessera-Crc32c``: CRC of the body sent.
* ``HEAD B`` -> empty, headers ``X-Tessera-Length`` and ``X-Tessera-Mtime``.
* ``DELETE B?older_than=`` -> ``{"deleted": bool}`` (moves the block to the trash).
* ``POST B/verify`` -> ``{"result": "good"|"corrupt"|"missing"}``.
* ``POST B/undelete`` -> ``{"restored": bool}``.
* ``POST D/trash/empty?now=`` -> ``{"removed": int}`` (default ``now``: server clock).
* ``GET D/trash`` -> ``{"count": int, "bytes": int}``.
* ``GET D/quarantine`` -> ``{"blocks": [names]}`` (sorted).
* ``GET D/blocks?prefix=&after=&limit=`` -> ``{"blocks": [names], "next": name|null}``:
  sorted names after ``after``, at most ``limit`` (default 1000, at most 10000);
  ``next`` is the ``after`` of the next page, null on the last one.
* ``GET /v1/status`` -> ``{"server", "zone", "version", "disks": [{"id", "total",
  "free", "ok", "error"}]}``.

A PUT is atomic: the block is stored whole or not at all (a body shorter than its
Content-Length, or one failing ``X-Tessera-Crc32c``, stores nothing). A missing
block is a 404 ``NotFound`` for GET/HEAD, ``{"deleted": false}`` for DELETE and
``"missing"`` for verify. Every error answer carries the header ``X-Tessera-Error``
with its code (HEAD answers have no body) and, except for HEAD, the JSON body
``{"code": ..., "message": ...}``. With a cluster key configured, every request
must carry it in ``X-Tessera-Cluster-Key`` (else 403 ``AccessDenied``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

PREFIX = "/v1"
STATUS_PATH = f"{PREFIX}/status"

# aiohttp route templates (the server's router uses them as they are)
ROUTE_BLOCK = PREFIX + "/disks/{disk}/blocks/{name}"
ROUTE_VERIFY = ROUTE_BLOCK + "/verify"
ROUTE_UNDELETE = ROUTE_BLOCK + "/undelete"
ROUTE_BLOCKS = PREFIX + "/disks/{disk}/blocks"
ROUTE_TRASH = PREFIX + "/disks/{disk}/trash"
ROUTE_TRASH_EMPTY = ROUTE_TRASH + "/empty"
ROUTE_QUARANTINE = PREFIX + "/disks/{disk}/quarantine"
ROUTE_STAT = PREFIX + "/disks/{disk}/stat"
"""``POST`` ``{"names": [...]}`` -> ``{"blocks": {name: [length, mtime] | null}}``:
many HEADs in one request (the healer checks every fragment of a page of
manifests at once)."""
MAX_STAT_NAMES = 10_000

HEADER_CRC32C = "X-Tessera-Crc32c"
"""Decimal CRC32C of the body: sent with PUT (checked before storing), answered by GET."""
HEADER_LENGTH = "X-Tessera-Length"
"""HEAD answer: the block's data length."""
HEADER_MTIME = "X-Tessera-Mtime"
"""HEAD answer: the block's mtime (seconds, ``repr`` of a float)."""
HEADER_ERROR = "X-Tessera-Error"
"""Every error answer: its code (so HEAD errors, which have no body, are typed too)."""
HEADER_CLUSTER_KEY = "X-Tessera-Cluster-Key"
"""The shared cluster secret, when the server is configured with one."""

DEFAULT_LIST_LIMIT = 1000
MAX_LIST_LIMIT = 10_000
MAX_BLOCK_SIZE = 1 << 30
"""Default largest PUT body the server accepts (bytes)."""

VERIFY_RESULTS: dict[str, bool | None] = {"good": True, "corrupt": False, "missing": None}
"""Wire value of ``Volume.verify`` results, and back."""


def verify_word(result: bool | None) -> str:
    """The wire word for a ``Volume.verify`` result."""
    return "missing" if result is None else "good" if result else "corrupt"


# --- errors ---------------------------------------------------------------------
NOT_FOUND = "NotFound"
DATA_CORRUPTION = "DataCorruption"
STORAGE_FULL = "StorageFull"
INVALID_ARGUMENT = "InvalidArgument"
INVALID_RANGE = "InvalidRange"
BAD_DIGEST = "BadDigest"
INCOMPLETE_BODY = "IncompleteBody"
LENGTH_REQUIRED = "LengthRequired"
ENTITY_TOO_LARGE = "EntityTooLarge"
UNKNOWN_DISK = "UnknownDisk"
UNKNOWN_PATH = "UnknownPath"
ACCESS_DENIED = "AccessDenied"
METHOD_NOT_ALLOWED = "MethodNotAllowed"
NOT_SUPPORTED = "NotSupported"
INTERNAL_ERROR = "InternalError"

ERROR_STATUS: dict[str, int] = {
    NOT_FOUND: 404,  # the block does not exist
    UNKNOWN_DISK: 404,  # this server serves no disk of that id
    UNKNOWN_PATH: 404,  # no such route (e.g. another API version): not a missing block
    DATA_CORRUPTION: 409,  # stored data failed its checksum (or the expected CRC)
    STORAGE_FULL: 507,
    INVALID_ARGUMENT: 400,  # bad block name or query parameter
    BAD_DIGEST: 400,  # body does not match X-Tessera-Crc32c; nothing stored
    INCOMPLETE_BODY: 400,  # body shorter than Content-Length; nothing stored
    INVALID_RANGE: 416,  # start past the end of the block
    LENGTH_REQUIRED: 411,
    ENTITY_TOO_LARGE: 413,
    ACCESS_DENIED: 403,  # missing or wrong cluster key
    METHOD_NOT_ALLOWED: 405,
    NOT_SUPPORTED: 501,  # the volume does not implement the operation
    INTERNAL_ERROR: 500,
}
"""The one table: error code -> HTTP status. Codes are stable; messages are not."""

_CODE_BY_STATUS = {
    404: UNKNOWN_PATH,
    400: INVALID_ARGUMENT,
    405: METHOD_NOT_ALLOWED,
    411: LENGTH_REQUIRED,
    413: ENTITY_TOO_LARGE,
}


def status_of(code: str) -> int:
    """HTTP status for an error code (unknown codes: 500)."""
    return ERROR_STATUS.get(code, 500)


def code_for_status(status: int) -> str:
    """Best code for an error status raised without one (e.g. by the HTTP framework)."""
    return _CODE_BY_STATUS.get(status, INTERNAL_ERROR if status >= 500 else INVALID_ARGUMENT)


def error_body(code: str, message: str) -> bytes:
    """The JSON body of an error answer."""
    return json.dumps({"code": code, "message": message}).encode()


@dataclass(frozen=True, slots=True)
class WireError:
    """An error answer as the client decodes it."""

    status: int
    code: str | None
    """None when the answer did not come from a chunk server (no valid code)."""
    message: str


def parse_error(status: int, header_code: str | None, body: bytes) -> WireError:
    """Decode an error answer. The code comes from ``X-Tessera-Error`` (or the body);
    a code missing from :data:`ERROR_STATUS` yields ``code=None``: whatever answered
    is not a chunk server speaking this contract, and its 404 must not be taken for
    a missing block."""
    code, message = header_code, ""
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        code = code or (doc.get("code") if isinstance(doc.get("code"), str) else None)
        if isinstance(doc.get("message"), str):
            message = doc["message"]
    if code not in ERROR_STATUS:
        code = None
    if not message:
        message = body[:200].decode("utf-8", "replace") or f"HTTP {status}"
    return WireError(status, code, message)


# --- paths and parameters ---------------------------------------------------------
def _q(part: str) -> str:
    return quote(part, safe="")


def block_path(disk: str, name: str) -> str:
    return f"{PREFIX}/disks/{_q(disk)}/blocks/{_q(name)}"


def verify_path(disk: str, name: str) -> str:
    return block_path(disk, name) + "/verify"


def undelete_path(disk: str, name: str) -> str:
    return block_path(disk, name) + "/undelete"


def blocks_path(disk: str) -> str:
    return f"{PREFIX}/disks/{_q(disk)}/blocks"


def trash_path(disk: str) -> str:
    return f"{PREFIX}/disks/{_q(disk)}/trash"


def trash_empty_path(disk: str) -> str:
    return trash_path(disk) + "/empty"


def quarantine_path(disk: str) -> str:
    return f"{PREFIX}/disks/{_q(disk)}/quarantine"


def stat_path(disk: str) -> str:
    return f"{PREFIX}/disks/{_q(disk)}/stat"


class BadParameter(ValueError):
    """A query parameter or header is malformed (the server answers InvalidArgument)."""


def parse_int(
    value: str | None, what: str, *, default: int | None = None, minimum: int = 0
) -> int | None:
    """A decimal integer parameter (``None``/empty: ``default``); raises BadParameter."""
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 20:
        raise BadParameter(f"{what} must be a decimal integer, not {value[:40]!r}")
    number = int(value)
    if number < minimum:
        raise BadParameter(f"{what} must be at least {minimum}")
    return number


def parse_float(value: str | None, what: str) -> float | None:
    """A finite float parameter (``None``/empty: None); raises BadParameter."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadParameter(f"{what} must be a number, not {value[:40]!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise BadParameter(f"{what} must be finite")
    return number


def list_query(prefix: str, after: str | None, limit: int) -> dict[str, str]:
    """Query parameters of one listing page."""
    query = {"prefix": prefix, "limit": str(limit)}
    if after is not None:
        query["after"] = after
    return query


def status_disk(disk: str, total: int, free: int, error: str | None = None) -> dict[str, Any]:
    """One entry of ``/v1/status`` ``disks``."""
    return {"id": disk, "total": total, "free": free, "ok": error is None, "error": error}
