"""How the embedded SDK backend stores a body: in the same shape as the remote
backend's uploads, so an object's ETag is the same whichever backend wrote it
(``Bucket`` sync compares local files to ETags by that rule).

* A body under :data:`~tessera.sdk.remote.MULTIPART_THRESHOLD` bytes is one
  PUT (ETag: MD5 of the content); from it on, a multipart upload with
  :data:`~tessera.sdk.remote.PART_SIZE` parts (ETag: ``md5(part md5s)-N``).
* Memory: the first ``MULTIPART_THRESHOLD`` bytes are buffered, since choosing
  between the two needs them (the remote backend does the same); every later
  part streams piece by piece from the caller's iterable into the data path.
* The caller's iterable is advanced one ``next`` at a time in a worker thread,
  so a slow or blocking source (a file, a socket) never blocks the event loop.
* ``etag`` (hex MD5 of the whole content, or a multipart ETag) and ``size`` are
  checked before anything becomes visible: a mismatch aborts the upload
  (BadDigest, IncompleteBody) and the previous version stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from tessera.common.streams import from_bytes
from tessera.core.multipart import CompletedPartSpec
from tessera.core.requests import Integrity, ObjectAttributes, Principal, PutRequest
from tessera.core.service import ObjectService
from tessera.model.errors import BadDigest, IncompleteBody, InvalidArgument
from tessera.model.records import ObjectVersion
from tessera.sdk.remote import MULTIPART_THRESHOLD, PART_SIZE

_END = object()


class Feed:
    """The caller's iterable as byte pieces, cut at part boundaries on demand."""

    def __init__(self, data: Iterable[bytes]) -> None:
        self._it = iter(data)
        self._left = b""
        self.total = 0
        """Bytes handed out so far."""
        self.md5 = hashlib.md5(usedforsecurity=False)
        """MD5 of the bytes handed out so far."""

    async def _next(self) -> bytes | None:
        if self._left:
            left, self._left = self._left, b""
            return left
        loop = asyncio.get_running_loop()
        while True:
            piece: Any = await loop.run_in_executor(None, next, self._it, _END)
            if piece is _END:
                return None
            if piece:
                return bytes(piece)

    async def more(self) -> bool:
        """True while bytes remain (reads ahead one piece)."""
        piece = await self._next()
        if piece is None:
            return False
        self._left = piece
        return True

    async def part(self, limit: int) -> AsyncIterator[bytes]:
        """The next ``limit`` bytes (fewer at the end), piece by piece."""
        sent = 0
        while sent < limit:
            piece = await self._next()
            if piece is None:
                return
            if len(piece) > limit - sent:
                piece, self._left = piece[: limit - sent], piece[limit - sent :]
            sent += len(piece)
            self.total += len(piece)
            self.md5.update(piece)
            yield piece

    async def take(self, limit: int) -> bytes:
        """The next ``limit`` bytes (fewer at the end) as one buffer."""
        return b"".join([piece async for piece in self.part(limit)])


@dataclass(frozen=True, slots=True)
class Body:
    """Where a body goes and what the caller promised about it."""

    container: str
    name: str
    attributes: ObjectAttributes
    size: int | None = None
    etag: str | None = None


def _check_size(body: Body, actual: int) -> None:
    if body.size is not None and body.size != actual:
        raise IncompleteBody(f"The body has {actual} bytes, {body.size} were announced")


async def store_body(
    service: ObjectService, who: Principal, body: Body, data: Iterable[bytes]
) -> ObjectVersion:
    """Store ``data`` as the new version of ``body.name`` (see the module
    docstring). Raises BadDigest, IncompleteBody, InvalidArgument (``etag`` not
    an MD5) and the errors of a PUT or a multipart upload."""
    feed = Feed(data)
    first = await feed.take(MULTIPART_THRESHOLD)
    if len(first) < MULTIPART_THRESHOLD:
        _check_size(body, len(first))
        md5 = None
        if body.etag:
            try:
                md5 = bytes.fromhex(body.etag)
            except ValueError:
                raise InvalidArgument(f"etag must be a hex MD5, got {body.etag!r}") from None
        req = PutRequest(
            body.container,
            body.name,
            from_bytes(first),
            attributes=body.attributes,
            integrity=Integrity(content_md5=md5),
        )
        return await service.put_object(who, req)
    upload = await service.create_upload(who, body.container, body.name, body.attributes)
    try:
        part = await service.upload_part(
            who, body.container, body.name, upload.upload_id, 1, from_bytes(first), Integrity()
        )
        specs = [CompletedPartSpec(1, part.etag)]
        while await feed.more():
            number = len(specs) + 1
            part = await service.upload_part(
                who,
                body.container,
                body.name,
                upload.upload_id,
                number,
                feed.part(PART_SIZE),
                Integrity(),
            )
            specs.append(CompletedPartSpec(number, part.etag))
        _check_size(body, feed.total)
        if body.etag:
            digests = b"".join(bytes.fromhex(s.etag) for s in specs)
            multipart = f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(specs)}"
            actual = multipart if "-" in body.etag else feed.md5.hexdigest()
            if actual != body.etag.lower():
                raise BadDigest(f"The content's ETag is {actual}, not {body.etag}")
        return await service.complete_upload(
            who, body.container, body.name, upload.upload_id, specs
        )
    except BaseException:
        with contextlib.suppress(Exception):
            await service.abort_upload(who, body.container, body.name, upload.upload_id)
        raise
