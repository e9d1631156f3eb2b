"""Byte ranges as values: resolution of an HTTP-style range spec against a size.

A :class:`RangeSpec` is what a client asked for (possibly open or a suffix);
:meth:`RangeSpec.resolve` turns it into a concrete half-open :class:`ByteRange`
for an object of known size, or ``None`` when it cannot be satisfied.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Half-open interval ``[start, end)`` of bytes; ``end > start`` unless empty object."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, total: int) -> str:
        """The value of a ``Content-Range`` header for this range."""
        return f"bytes {self.start}-{self.end - 1}/{total}"


@dataclass(frozen=True, slots=True)
class RangeSpec:
    """A single requested range: ``first-last``, ``first-`` or ``-suffix``.

    ``first`` is None for a suffix range; ``last`` is None for an open range.
    """

    first: int | None
    last: int | None

    def resolve(self, size: int) -> ByteRange | None:
        """The concrete range for an object of ``size`` bytes, or None if unsatisfiable.

        Follows RFC 9110: ``last`` beyond the end is clamped; a suffix longer than
        the object selects the whole object; ``first >= size`` is unsatisfiable;
        a zero-length suffix is unsatisfiable.
        """
        if self.first is None:
            n = self.last or 0
            if n <= 0 or size == 0:
                return None
            return ByteRange(max(0, size - n), size)
        if self.first >= size:
            return None
        end = size if self.last is None else min(self.last + 1, size)
        if end <= self.first:
            return None
        return ByteRange(self.first, end)
