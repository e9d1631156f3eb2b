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


async def _chain(head: list[bytes], rest: ByteSource) -> ByteSource:
    for c in head:
        yield c
    async for c in rest:
        yield c


async def peek_whole(source: ByteSource, limit: int) -> tuple[bytes | None, ByteSource]:
    """Read ``source`` until it ends or more than ``limit`` bytes came.

    Returns ``(content, source)`` when it ended within ``limit`` bytes (the
    source is then exhausted), else ``(None, same_bytes)``: a source yielding
    the chunks read so far, then the rest of ``source``. Exceptions of
    ``source`` propagate (nothing is lost: the caller fails as it would have
    when reading). Lets a consumer handle a small stream whole, without the
    machinery a long one needs."""
    head: list[bytes] = []
    size = 0
    async for c in source:
        if not c:
            continue
        head.append(c)
        size += len(c)
        if size > limit:
            return None, _chain(head, source)
    if len(head) == 1 and type(head[0]) is bytes:
        return head[0], source
    return b"".join(head), source


async def read_all(source: ByteSource, limit: int | None = None) -> bytes:
    """Collect a whole source; raises ValueError past ``limit`` bytes (bounded parsing)."""
    out = bytearray()
    async for c in source:
        out += c
        if limit is not None and len(out) > limit:
            raise ValueError(f"body larger than {limit} bytes")
    return bytes(out)
