"""What the core layer may call on the data path (implemented in ``data.store``).

* :meth:`DataStore.write` consumes a byte source and returns where the bytes went;
  nothing is referenced until the caller commits the returned manifest to the
  metadata store. On failure it deletes what it wrote (best effort) and raises;
  blocks it fails to delete are garbage the GC reclaims.
* :meth:`DataStore.read` streams a range of stored content; it never returns
  wrong bytes: a checksum mismatch on every copy raises DataCorruption.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tessera.common.ranges import ByteRange
from tessera.common.streams import ByteSource
from tessera.model.manifest import Manifest


@dataclass(frozen=True, slots=True)
class CreatedBlock:
    """A block a write created: where, and the mtime that write gave it."""

    volume: str
    block: str
    mtime: float


@dataclass(frozen=True, slots=True)
class WriteResult:
    size: int
    md5: bytes
    """Binary MD5 of the whole content (the ETag is its hex)."""
    checksums: dict[str, str] = field(default_factory=dict)
    """Base64 digests of the requested additional algorithms."""
    inline: bytes | None = None
    """The content itself when it is at most the inline threshold (no blocks written)."""
    manifest: Manifest = field(default_factory=Manifest)
    created: tuple[CreatedBlock, ...] = ()
    """The blocks this call created (they did not exist before it). A caller that
    decides not to commit the manifest hands the result to :meth:`DataStore.discard`,
    which deletes exactly these, and only if nobody stored them again meanwhile:
    blocks that already existed may be referenced by other objects (dedup)."""

    def created_refs(self) -> list[tuple[str, str]]:
        """``(volume, block)`` of the created blocks."""
        return [(c.volume, c.block) for c in self.created]


class DataStore(Protocol):
    async def write(
        self,
        source: ByteSource,
        *,
        policy: str = "plain",
        algorithms: Iterable[str] = (),
        max_size: int | None = None,
        allow_inline: bool = True,
    ) -> WriteResult:
        """Store all bytes of ``source``.

        Content of at most the inline threshold is returned in ``inline`` (when
        ``allow_inline``); larger content is cut into segments written to volumes.
        Raises EntityTooLarge past ``max_size`` bytes, StorageFull when no volume
        has room, Unavailable when quorum is not reached; any exception raised by
        ``source`` propagates after cleanup.
        """
        ...

    def read(
        self, inline: bytes | None, manifest: Manifest, byte_range: ByteRange | None = None
    ) -> ByteSource:
        """Stream the content (or the range of it). Raises DataCorruption or
        Unavailable from the iterator when no good copy of a segment can be read."""
        ...

    async def discard(self, result: WriteResult) -> int:
        """Undo a write whose manifest will not be committed: delete the blocks it
        created, except those another writer stored again since (dedup keeps them
        alive). Never raises for a single block; what is left is garbage for the GC.
        Returns how many blocks were deleted."""
        ...

    async def delete_blocks(
        self, refs: Sequence[tuple[str, str]], *, older_than: float | None = None
    ) -> int:
        """Delete the ``(volume, block)`` pairs; missing blocks are ignored. With
        ``older_than``, a block modified at or after that time is kept (it was
        written again). Returns how many were deleted."""
        ...
