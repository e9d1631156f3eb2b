"""Checksums as S3 spells them: MD5 ETags and the additional checksum algorithms.

S3 sends and returns additional checksums base64-encoded, big-endian for the CRCs.
:class:`MultiHasher` computes MD5 plus any requested algorithms in one pass over
the data; every ``update`` accepts bytes, bytearray or memoryview without copying.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterable
from typing import Protocol

import crc32c as _crc32c

ALGORITHMS = ("CRC32", "CRC32C", "SHA1", "SHA256")
"""Additional checksum algorithms Tessera validates and stores (S3 names, upper case)."""

Buffer = bytes | bytearray | memoryview


class _Hash(Protocol):
    def update(self, data: Buffer, /) -> None: ...
    def digest(self) -> bytes: ...


class _Crc:
    """A CRC accumulator with the hashlib interface (big-endian 4-byte digest)."""

    __slots__ = ("_fn", "_value")

    def __init__(self, fn: str) -> None:
        self._fn = fn
        self._value = 0

    def update(self, data: Buffer, /) -> None:
        if self._fn == "CRC32":
            self._value = zlib.crc32(data, self._value)
        else:
            self._value = _crc32c.crc32c(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


def new_hash(algorithm: str) -> _Hash:
    """A fresh hasher for one S3 checksum algorithm (``CRC32``, ``CRC32C``, ``SHA1``, ``SHA256``)."""
    algorithm = algorithm.upper()
    if algorithm in ("CRC32", "CRC32C"):
        return _Crc(algorithm)
    if algorithm == "SHA1":
        return hashlib.sha1()
    if algorithm == "SHA256":
        return hashlib.sha256()
    raise ValueError(f"unknown checksum algorithm {algorithm!r}")


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def checksum_b64(algorithm: str, data: Buffer) -> str:
    """The base64 S3 checksum of ``data`` in one call."""
    h = new_hash(algorithm)
    h.update(data)
    return b64(h.digest())


def crc32c_value(data: Buffer, value: int = 0) -> int:
    """CRC32C as an int (continues from ``value``); used for stored block checksums."""
    return int(_crc32c.crc32c(data, value))


class MultiHasher:
    """MD5 (for the ETag) plus any additional checksums, updated together.

    ``md5`` may be disabled for callers that do not need an ETag (block API).
    """

    def __init__(self, algorithms: Iterable[str] = (), md5: bool = True) -> None:
        self._md5 = hashlib.md5() if md5 else None
        self._extra: dict[str, _Hash] = {a.upper(): new_hash(a) for a in algorithms}
        self.size = 0

    def update(self, data: Buffer) -> None:
        self.size += len(data)
        if self._md5 is not None:
            self._md5.update(data)
        for h in self._extra.values():
            h.update(data)

    def md5_digest(self) -> bytes:
        if self._md5 is None:
            raise ValueError("md5 disabled")
        return self._md5.digest()

    def checksums(self) -> dict[str, str]:
        """Base64 digests of the additional algorithms, keyed by S3 algorithm name."""
        return {name: b64(h.digest()) for name, h in self._extra.items()}


def multipart_etag(part_md5s: Iterable[bytes]) -> str:
    """The S3 ETag of a multipart object: md5 of the parts' binary md5s, ``-N`` (unquoted)."""
    parts = list(part_md5s)
    return f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"


def composite_checksum(algorithm: str, part_checksums_b64: Iterable[str]) -> str:
    """S3's composite multipart checksum: checksum of the parts' raw digests, ``-N``."""
    parts = [base64.b64decode(c) for c in part_checksums_b64]
    return f"{checksum_b64(algorithm, b''.join(parts))}-{len(parts)}"
