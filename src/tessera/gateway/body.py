"""Request bodies as verified byte sources.

Decodes ``aws-chunked`` (signed or unsigned, with trailers) and checks a signed
``x-amz-content-sha256`` while streaming; a mismatch raises from the iterator,
so the data path aborts the write and keeps nothing. Bodies are never buffered
whole: pieces flow from the socket to the data path as they arrive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from aiohttp import web

from tessera.common.streams import ByteSource
from tessera.gateway.auth import (
    UNSIGNED,
    AuthContext,
)
from tessera.protocol.s3.chunked import AwsChunkedDecoder
from tessera.protocol.s3.errors import S3Error

READ_SIZE = 1 << 20
MAX_DOCUMENT = 1 << 20


class Body:
    """A request body: :attr:`source` streams it; :attr:`trailers` fills once it ended."""

    def __init__(self, request: web.Request, ctx: AuthContext) -> None:
        self.request = request
        self.ctx = ctx
        self.trailers: dict[str, str] = {}
        self.declared_size: int | None = None
        self._continued = False
        decoded = request.headers.get("x-amz-decoded-content-length")
        if ctx.streaming:
            if decoded is None and request.headers.get("Content-Length") is not None:
                raise S3Error(
                    "MissingContentLength",
                    "You must provide the x-amz-decoded-content-length header.",
                    status=411,
                )
            self.declared_size = int(decoded) if decoded and decoded.isdigit() else None
        elif request.content_length is not None:
            self.declared_size = request.content_length

    def source(self) -> ByteSource:
        if self.ctx.streaming:
            return self._chunked()
        if self.ctx.payload_hash == UNSIGNED or self.ctx.payload_hash.upper() == UNSIGNED:
            return self._raw()
        return self._sha256()

    async def accept(self) -> None:
        """Answer ``Expect: 100-continue`` for a handler that reads the request
        stream itself (POST Object forms) rather than through :meth:`source`."""
        await self._continue()

    async def _continue(self) -> None:
        """Answer ``Expect: 100-continue`` now that the request is accepted and its
        body is wanted; at most once. The gateway's expect handler sends nothing,
        so a request refused before its body is read gets its error at once and
        the client never sends the body."""
        if self._continued:
            return
        self._continued = True
        if self.request.headers.get("Expect", "").lower() == "100-continue":
            await self.request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def _raw(self) -> ByteSource:
        await self._continue()
        async for data in self.request.content.iter_chunked(READ_SIZE):
            if data:
                yield data

    async def _sha256(self) -> ByteSource:
        expected = self.ctx.payload_hash.lower()
        if len(expected) != 64:
            raise S3Error(
                "InvalidArgument",
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or a hex SHA-256",
            )
        h = hashlib.sha256()
        await self._continue()
        async for data in self.request.content.iter_chunked(READ_SIZE):
            h.update(data)
            yield data
        if h.hexdigest() != expected:
            raise S3Error(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )

    async def _chunked(self) -> ByteSource:
        decoder = AwsChunkedDecoder(signing=self.ctx.chunk_signing)
        await self._continue()
        async for data in self.request.content.iter_chunked(READ_SIZE):
            for piece in decoder.feed(data):
                if piece:
                    yield piece
        decoder.close()
        self.trailers = dict(decoder.trailers)
        # A trailer promised in x-amz-trailer must come: its checksum is what the
        # client relies on, and an upload without it would be stored unverified.
        promised = self.request.headers.get("x-amz-trailer", "")
        missing = [t for t in (n.strip().lower() for n in promised.split(",")) if t]
        missing = [t for t in missing if t not in self.trailers]
        if missing:
            raise S3Error("MalformedTrailerError", f"The promised trailer {missing[0]} is missing.")
        if self.declared_size is not None and decoder.decoded_length != self.declared_size:
            raise S3Error(
                "IncompleteBody",
                "The decoded body length does not match x-amz-decoded-content-length.",
            )

    async def read_document(self, limit: int = MAX_DOCUMENT) -> bytes:
        """A small body (XML document) read whole, refusing more than ``limit`` bytes."""
        out = bytearray()
        async for piece in self.source():
            out += piece
            if len(out) > limit:
                raise S3Error("MaxMessageLengthExceeded", "Your request was too big.")
        return bytes(out)

    def expected_checksums(self, header_values: dict[str, str]) -> Callable[[], dict[str, str]]:
        """A callable giving the checksums to verify once the body has been read:
        header values plus any ``x-amz-checksum-*`` trailers."""

        def expected() -> dict[str, str]:
            out = dict(header_values)
            for name, value in self.trailers.items():
                if name.startswith("x-amz-checksum-"):
                    out[name[len("x-amz-checksum-") :].upper()] = value
            return out

        return expected
