"""Read-range math for erasure-coded and replicated segments: pure, no I/O.

Layout (see :mod:`tessera.data.codec`): an ``ec/k=K,m=M`` segment of ``S`` bytes is cut
into ``k`` data fragments of ``f = fragment_size(S, k)`` bytes, fragment ``i`` holding
segment bytes ``[i*f, (i+1)*f)`` (the tail zero-padded), plus ``m`` parity fragments of
``f`` bytes. Reed-Solomon works column by column: byte ``c`` of every fragment depends
only on byte ``c`` of the data fragments. Hence:

* a **healthy** read of ``[a, b)`` fetches only the data fragments overlapping the range,
  each only its overlapping bytes, and concatenates them (no decode);
* a **degraded** read fetches the *same* column range ``[c0, c1)`` from any ``k``
  fragments, decodes those columns with ``codec.decode(slices, k, m, k * (c1 - c0))``
  (which returns the ``k`` data column slices joined), and keeps
  ``decoded[trim_start:trim_stop]``.

A replicated (or plain) segment is stored whole in every fragment, so ``[a, b)`` is read
as-is from any one replica (:func:`replica_range`).

This is the OpenIO ``segment-align -> fragment-range -> trim`` scheme, except that the
column range is the tight hull of the needed columns rather than whole fragment rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tessera.data.codec import fragment_size
from tessera.model.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class FragmentRead:
    """Bytes ``[start, stop)`` of data fragment ``index`` (a healthy-read piece)."""

    index: int
    start: int
    stop: int


@dataclass(frozen=True, slots=True)
class DegradedRead:
    """Columns to fetch from any ``k`` fragments, and how to trim the decoded output.

    Fetch bytes ``[col_start, col_stop)`` of ``k`` fragments, decode them with
    ``codec.decode(slices, k, m, k * (col_stop - col_start))`` and return
    ``decoded[trim_start:trim_stop]``. Empty ranges give an empty column range.
    """

    k: int
    col_start: int
    col_stop: int
    trim_start: int
    trim_stop: int

    @property
    def width(self) -> int:
        """Bytes fetched per fragment."""
        return self.col_stop - self.col_start

    @property
    def decoded_size(self) -> int:
        """The ``size`` to pass to ``codec.decode`` for ``k`` column slices."""
        return self.k * self.width


def _check(size: int, k: int, start: int, stop: int) -> None:
    """Raise :class:`InvalidArgument` unless ``k >= 1`` and ``0 <= start <= stop <= size``."""
    if k < 1:
        raise InvalidArgument(f"bad erasure-code width k={k}", k=k)
    if not 0 <= start <= stop <= size:
        raise InvalidArgument(f"range {start}-{stop} outside segment of {size} bytes")


def healthy_reads(size: int, k: int, start: int, stop: int) -> list[FragmentRead]:
    """Pieces of data fragments whose concatenation (in order) is segment ``[start, stop)``.

    Only fragments overlapping the range appear, each with a non-empty in-fragment range;
    padding is never read. An empty range gives ``[]``.
    """
    _check(size, k, start, stop)
    if start == stop:
        return []
    f = fragment_size(size, k)
    reads = []
    for i in range(start // f, (stop - 1) // f + 1):
        lo, hi = max(start, i * f), min(stop, (i + 1) * f)
        reads.append(FragmentRead(i, lo - i * f, hi - i * f))
    return reads


def degraded_read(size: int, k: int, start: int, stop: int) -> DegradedRead:
    """Column range and trim to rebuild segment ``[start, stop)`` from any ``k`` fragments.

    Within one data fragment ``i`` the columns are exactly ``[start - i*f, stop - i*f)``
    and the trim covers ``stop - start`` bytes of data slice ``i``. A range spanning
    several fragments needs columns that wrap around, so their hull is ``[0, f)`` and the
    decoded output is the padded segment itself (trim ``[start, stop)``).
    """
    _check(size, k, start, stop)
    if start == stop:
        return DegradedRead(k, 0, 0, 0, 0)
    f = fragment_size(size, k)
    first, last = start // f, (stop - 1) // f
    if first == last:
        c0, c1 = start - first * f, stop - first * f
        offset = first * (c1 - c0)
        return DegradedRead(k, c0, c1, offset, offset + (stop - start))
    return DegradedRead(k, 0, f, start, stop)


def replica_range(size: int, start: int, stop: int) -> tuple[int, int]:
    """The block range to read from any replica of a ``rep``/``plain`` segment: ``[start, stop)``."""
    _check(size, 1, start, stop)
    return start, stop


@dataclass(frozen=True, slots=True)
class SegmentPiece:
    """Bytes ``[start, stop)`` of segment ``segment`` (an index into the manifest)."""

    segment: int
    start: int
    stop: int


def map_object_range(sizes: Sequence[int], start: int, stop: int) -> list[SegmentPiece]:
    """Non-empty segment pieces, in order, whose concatenation is object ``[start, stop)``.

    ``sizes`` are the manifest's segment sizes (``[s.size for s in manifest.segments]``);
    empty segments never appear. Raises :class:`InvalidArgument` if the range is not
    within ``0 <= start <= stop <= sum(sizes)`` or a size is negative.
    """
    if any(s < 0 for s in sizes):
        raise InvalidArgument("negative segment size")
    total = sum(sizes)
    if not 0 <= start <= stop <= total:
        raise InvalidArgument(f"range {start}-{stop} outside content of {total} bytes")
    pieces = []
    offset = 0
    for index, s in enumerate(sizes):
        if offset >= stop:
            break
        lo, hi = max(start - offset, 0), min(stop - offset, s)
        if lo < hi:
            pieces.append(SegmentPiece(index, lo, hi))
        offset += s
    return pieces
