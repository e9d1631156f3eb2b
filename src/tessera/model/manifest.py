"""Where an object's bytes live.

An object's data is either stored *inline* in its metadata row (small objects)
or described by a :class:`Manifest`: an ordered list of :class:`Segment` s, each
a contiguous piece of the object's plaintext. A segment is stored as one or more
*fragments* (blocks on volumes): one block for ``plain``, N identical blocks for
``rep/n=N``, k+m blocks for ``ec/k=K,m=M``. Each :class:`FragmentRef` names the
block and the volume it was written to, so readers never need to re-run placement.

Blocks are reference-counted by ``(volume, block)`` in the metadata store, in the
same transaction as the rows (versions, parts) whose manifests name them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FragmentRef:
    index: int
    """Fragment index within the segment (0 for plain; replica number; EC index 0..k+m-1)."""
    block: str
    """Block name on its volume (hex content hash, plus a suffix for EC fragments)."""
    size: int
    """Stored size of the block in bytes."""
    volume: str
    """Id of the volume (disk or chunk server) the block was written to."""
    crc32c: int
    """CRC32C of the stored block, checked on every read."""


@dataclass(frozen=True, slots=True)
class Segment:
    size: int
    """Plaintext bytes of the object covered by this segment."""
    policy: str
    """Storage policy string, e.g. ``plain``, ``rep/n=3``, ``ec/k=4,m=2``."""
    hash: str
    """BLAKE3 hex digest of the segment's plaintext (identity; dedup)."""
    fragments: tuple[FragmentRef, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    segments: tuple[Segment, ...] = ()

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments)

    def block_refs(self) -> list[tuple[str, str]]:
        """Every ``(volume, block)`` this manifest references, with repetition."""
        return [(f.volume, f.block) for s in self.segments for f in s.fragments]

    def concat(self, other: Manifest) -> Manifest:
        return Manifest(self.segments + other.segments)

    # --- serialisation (stored as compact JSON in the metadata store) ---
    def to_json(self) -> str:
        return json.dumps(
            [
                [
                    s.size,
                    s.policy,
                    s.hash,
                    [[f.index, f.block, f.size, f.volume, f.crc32c] for f in s.fragments],
                ]
                for s in self.segments
            ],
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> Manifest:
        if not text:
            return cls()
        raw: list[Any] = json.loads(text)
        return cls(
            tuple(
                Segment(size, policy, h, tuple(FragmentRef(*f) for f in frags))
                for size, policy, h, frags in raw
            )
        )
