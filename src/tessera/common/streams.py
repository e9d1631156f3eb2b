"""Async byte-stream helpers shared by every layer that moves bytes.

A :data:`ByteSource` is an async iterator of non-empty byte chunks. Sources never
buffer a whole object: consumers pull chunks as they need them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

ByteSource = AsyncIterator[bytes]


async def from_bytes(data: bytes, chunk: int = 1 << 20) -> ByteSource:
    """A source over an in-memory buffer (for small bodies and tests)."""
    view = memoryview(data)
    for i in range(0, len(view), chunk):
        yield bytes(view[i : i + chunk])


async def from_iterable(chunks: Iterable[bytes]) -> ByteSource:
    for c in chunks:
        if c:
            yield c


async def read_all(source: ByteSource, limit: int | None = None) -> bytes:
    """Collect a whole source; raises ValueError past ``limit`` bytes (bounded parsing)."""
    out = bytearray()
    async for c in source:
        out += c
        if limit is not None and len(out) > limit:
            raise ValueError(f"body larger than {limit} bytes")
    return bytes(out)
