"""The ``aws-chunked`` content encoding, decoded incrementally.

A body is a sequence of ``<hex-size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n``
chunks closed by a zero-size chunk, optionally followed by trailer lines
(``x-amz-checksum-crc32:<b64>``, and for signed trailers
``x-amz-trailer-signature:<sig>``) and an empty line.

Contract: :meth:`AwsChunkedDecoder.feed` returns the payload bytes in order as
soon as they arrive; with signing, a chunk's bytes are returned *before* its
signature can be checked (the signature follows the data), so a caller must not
commit anything until :meth:`close` returned without raising. Every violation
raises :class:`S3Error` (``IncompleteBody``, ``SignatureDoesNotMatch`` or
``InvalidArgument``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.sigv4 import (
    chunk_string_to_sign,
    sign,
    trailer_string_to_sign,
)

MAX_LINE = 4096
MAX_TRAILER_BYTES = 16384

_HEADER, _DATA, _DATA_END, _TRAILER, _DONE = range(5)
_HEX = re.compile(rb"[0-9a-fA-F]+")


@dataclass(frozen=True, slots=True)
class ChunkSigning:
    """What is needed to check chunk signatures: the request's signing key, its
    x-amz-date and scope, and the seed (the request's own signature)."""

    key: bytes
    amz_date: str
    scope: str
    seed_signature: str


def _bad(message: str) -> S3Error:
    return S3Error("IncompleteBody", message)


class AwsChunkedDecoder:
    """Incremental decoder; see the module docstring for the contract."""

    def __init__(self, *, signing: ChunkSigning | None = None) -> None:
        self.signing = signing
        self.trailers: list[tuple[str, str]] = []
        self.decoded_length = 0
        self._state = _HEADER
        self._buf = bytearray()
        self._remaining = 0
        self._chunk_signature = ""
        self._previous = signing.seed_signature if signing else ""
        self._hash = hashlib.sha256() if signing else None
        self._trailer_bytes = 0
        self._trailer_lines: list[str] = []
        self._trailer_signed = False

    @property
    def finished(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> list[bytes]:
        """Decode more of the body; returns the payload pieces it completed."""
        out: list[bytes] = []
        view = memoryview(data)
        pos = 0
        n = len(view)
        while pos < n:
            if self._state == _DATA:
                take = min(self._remaining, n - pos)
                piece = bytes(view[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._hash is not None:
                    self._hash.update(piece)
                out.append(piece)
                if self._remaining == 0:
                    self._state = _DATA_END
                continue
            if self._state == _DONE:
                if bytes(view[pos:]).strip(b"\r\n"):
                    raise _bad("Unexpected data after the final aws-chunked chunk")
                break
            # Line-oriented states: collect one line.
            end = data.find(b"\n", pos)
            if end < 0:
                self._buf += view[pos:]
                if len(self._buf) > MAX_LINE:
                    raise _bad("aws-chunked line too long")
                break
            self._buf += view[pos : end + 1]
            pos = end + 1
            if len(self._buf) > MAX_LINE:
                raise _bad("aws-chunked line too long")
            line = bytes(self._buf).rstrip(b"\r\n")
            self._buf.clear()
            self._line(line)
        return out

    def _line(self, line: bytes) -> None:
        if self._state == _DATA_END:
            if line:
                raise _bad("aws-chunked chunk data longer than its declared size")
            self._verify_chunk()
            self._state = _HEADER
        elif self._state == _HEADER:
            self._header(line)
        elif self._state == _TRAILER:
            self._trailer(line)

    def _header(self, line: bytes) -> None:
        size_text, _, ext = line.partition(b";")
        size_text = size_text.strip()
        # Hex digits only: int(x, 16) would also take "0x10", "+a" and "1_0".
        if not _HEX.fullmatch(size_text):
            raise _bad("Malformed aws-chunked chunk header")
        size = int(size_text, 16)
        signature = ""
        if ext:
            name, _, value = ext.partition(b"=")
            if name.strip() == b"chunk-signature":
                signature = value.strip().decode("ascii", "replace").lower()
        if self.signing is not None and not signature:
            raise S3Error("SignatureDoesNotMatch", "aws-chunked chunk is missing its signature")
        self._chunk_signature = signature
        self.decoded_length += size
        if size == 0:
            self._verify_chunk()
            self._state = _TRAILER
            return
        self._remaining = size
        self._state = _DATA

    def _verify_chunk(self) -> None:
        if self.signing is None or self._hash is None:
            return
        s = self.signing
        to_sign = chunk_string_to_sign(s.amz_date, s.scope, self._previous, self._hash.hexdigest())
        expected = sign(s.key, to_sign)
        if not hmac.compare_digest(expected, self._chunk_signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        self._previous = expected
        self._hash = hashlib.sha256()

    def _trailer(self, line: bytes) -> None:
        self._trailer_bytes += len(line)
        if self._trailer_bytes > MAX_TRAILER_BYTES:
            raise _bad("aws-chunked trailers too long")
        if not line:
            self._finish_trailers()
            self._state = _DONE
            return
        text = line.decode("utf-8", "replace")
        name, sep, value = text.partition(":")
        if not sep:
            raise _bad("Malformed aws-chunked trailer")
        name = name.strip().lower()
        if self._trailer_signed:
            # Nothing may follow the trailer signature: it would not be signed.
            raise S3Error("SignatureDoesNotMatch", "aws-chunked trailer after its signature")
        if name == "x-amz-trailer-signature":
            self._check_trailer_signature(value.strip().lower())
            return
        self.trailers.append((name, value.strip()))
        self._trailer_lines.append(f"{name}:{value.strip()}\n")

    def _check_trailer_signature(self, signature: str) -> None:
        if self.signing is None:
            return
        s = self.signing
        digest = hashlib.sha256("".join(self._trailer_lines).encode()).hexdigest()
        expected = sign(s.key, trailer_string_to_sign(s.amz_date, s.scope, self._previous, digest))
        if not hmac.compare_digest(expected, signature):
            raise S3Error("SignatureDoesNotMatch", "The trailer signature does not match.")
        self._trailer_signed = True

    def _finish_trailers(self) -> None:
        if self.signing is not None and self._trailer_lines and not self._trailer_signed:
            raise S3Error(
                "SignatureDoesNotMatch", "Signed aws-chunked trailers need x-amz-trailer-signature"
            )

    def close(self) -> None:
        """The body ended: raise IncompleteBody unless the final chunk was seen."""
        if self._state == _TRAILER and not self._buf and not self._trailer_lines:
            # "0\r\n" then end of stream: tolerated (no trailers, no closing line).
            self._state = _DONE
        if self._state != _DONE:
            raise _bad("The aws-chunked body ended before its final chunk")


def encode_chunked(
    data: bytes,
    *,
    chunk_size: int = 65536,
    signing: ChunkSigning | None = None,
    trailers: list[tuple[str, str]] | None = None,
) -> bytes:
    """Encode ``data`` as aws-chunked (client side, for tests and the SDK)."""
    out = bytearray()
    previous = signing.seed_signature if signing else ""
    pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for piece in pieces:
        ext = b""
        if signing is not None:
            h = hashlib.sha256(piece).hexdigest()
            previous = sign(
                signing.key, chunk_string_to_sign(signing.amz_date, signing.scope, previous, h)
            )
            ext = b";chunk-signature=" + previous.encode()
        out += b"%x" % len(piece) + ext + b"\r\n"
        if piece:
            out += piece + b"\r\n"
    lines = "".join(f"{n}:{v}\n" for n, v in (trailers or []))
    for name, value in trailers or []:
        out += f"{name}:{value}\r\n".encode()
    if signing is not None and trailers:
        digest = hashlib.sha256(lines.encode()).hexdigest()
        sig = sign(
            signing.key, trailer_string_to_sign(signing.amz_date, signing.scope, previous, digest)
        )
        out += f"x-amz-trailer-signature:{sig}\r\n".encode()
    out += b"\r\n"
    return bytes(out)
