"""Systematic Reed-Solomon erasure coding over GF(2^8): pure, no I/O.

Contract
--------
* :func:`encode` ``(segment, k, m)`` splits a segment into ``k`` data fragments of
  ``ceil(len/k)`` bytes (the last one zero-padded) and adds ``m`` parity fragments of the
  same length. Fragment ``i < k`` *is* slice ``i`` of the segment, so a healthy read joins
  the data fragments and decodes nothing. Fragments are raw bytes: no header, no
  checksum (checksums are the block layer's job; sizes live in the manifest).
* :func:`decode` ``(fragments, k, m, size)`` returns the segment from any ``k`` fragments,
  given by index; :func:`reconstruct` rebuilds chosen missing fragments (healing).
* Parity row ``r`` (``k <= r < k+m``) has coefficients ``1 / (r XOR j)`` for data column
  ``j`` -- exactly ISA-L's ``gf_gen_cauchy1_matrix`` (polynomial 0x11d). Every square
  submatrix of a Cauchy matrix is invertible, so any ``k`` of the ``k+m`` fragments
  suffice for every loss pattern (MDS), unlike ISA-L's Vandermonde matrix for m >= 5.
* Wrong input raises domain errors: fewer than ``k`` fragments -> :class:`Unavailable`;
  fragments of unequal length, or too short for ``size`` -> :class:`DataCorruption`;
  bad ``k``/``m``/indexes -> :class:`InvalidArgument`.

Why two kernels and not pyeclib
-------------------------------
pyeclib (``isa_l_rs_cauchy``) prefixes every fragment with an 80-byte liberasurecode
header and holds the GIL. We want raw fragments that a pure-Python fallback can produce
byte-identically, and EC that runs in parallel threads. So the matrix algebra (tiny k x k
matrices: Cauchy rows, inversion, products) is done here in Python, once per call, and
only the bulk kernel "out_r = XOR_j c[r][j] * src_j" differs:

* :class:`IsalKernel` calls ISA-L's ``ec_init_tables``/``ec_encode_data`` through ctypes
  (the call releases the GIL; 6-10 GB/s per core measured). The library is Debian's
  ``libisal2`` if present, else the ``libisal-pyeclib.so.2`` bundled in the pyeclib wheel
  (a dependency for that reason only), or the path in ``TESSERA_ISAL_LIB``.
* :class:`PythonKernel` multiplies by a constant with ``bytes.translate`` (one 256-byte
  table per coefficient) and XORs as big integers: slow, but the same bytes.

The kernel is chosen at import time (:data:`DEFAULT`); set ``TESSERA_CODEC=python`` or
``=isal`` to force one (``isal`` fails loudly if ISA-L cannot be loaded), or pass
``kernel=`` to any function.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from tessera.model.errors import DataCorruption, InvalidArgument, Unavailable

Matrix = list[list[int]]
"""Rows of GF(2^8) coefficients."""

MAX_FRAGMENTS = 255
"""``k + m`` must stay below the field size for the Cauchy construction."""

# --- GF(2^8), polynomial x^8+x^4+x^3+x^2+1 (0x11d), as ISA-L -------------------------
_EXP = [0] * 512
_LOG = [0] * 256
_x = 1
for _i in range(255):
    _EXP[_i] = _EXP[_i + 255] = _x
    _LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= 0x11D


def gf_mul(a: int, b: int) -> int:
    """Product of two field elements."""
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def gf_inv(a: int) -> int:
    """Multiplicative inverse of a non-zero element."""
    return _EXP[255 - _LOG[a]]


@functools.cache
def _mul_table(c: int) -> bytes:
    """``bytes.translate`` table multiplying every byte by ``c``."""
    return bytes(gf_mul(c, x) for x in range(256))


def cauchy_matrix(k: int, m: int) -> Matrix:
    """The ``(k+m) x k`` encoding matrix: identity over ISA-L's Cauchy parity rows."""
    ident = [[int(i == j) for j in range(k)] for i in range(k)]
    return ident + [[gf_inv(r ^ j) for j in range(k)] for r in range(k, k + m)]


def invert(matrix: Matrix) -> Matrix:
    """Inverse of a square matrix by Gauss-Jordan elimination.

    Raises :class:`DataCorruption` if singular (never for Cauchy submatrices).
    """
    n = len(matrix)
    a = [row[:] + [int(i == j) for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r][col]), None)
        if pivot is None:
            raise DataCorruption("erasure-code matrix is singular")
        a[col], a[pivot] = a[pivot], a[col]
        inv = gf_inv(a[col][col])
        a[col] = [gf_mul(inv, v) for v in a[col]]
        for r in range(n):
            f = a[r][col]
            if r != col and f:
                a[r] = [v ^ gf_mul(f, p) for v, p in zip(a[r], a[col], strict=True)]
    return [row[n:] for row in a]


def _row_times(row: Sequence[int], matrix: Matrix) -> list[int]:
    out = [0] * len(matrix[0])
    for coeff, mrow in zip(row, matrix, strict=True):
        if coeff:
            for j, v in enumerate(mrow):
                out[j] ^= gf_mul(coeff, v)
    return out


@functools.lru_cache(maxsize=1024)
def _decode_rows(k: int, m: int, used: tuple[int, ...], missing: tuple[int, ...]) -> Matrix:
    """Coefficients producing fragments ``missing`` from fragments ``used`` (cached)."""
    matrix = cauchy_matrix(k, m)
    inverse = invert([matrix[i] for i in used])
    return [_row_times(matrix[i], inverse) for i in missing]


# --- kernels -------------------------------------------------------------------------
class Kernel(Protocol):
    """Bulk GF(2^8) matrix application over equal-length buffers."""

    name: str

    def apply(
        self,
        rows: Matrix,
        sources: Sequence[bytes],
        length: int,
        outs: Sequence[bytearray] | None = None,
    ) -> list[bytes]:
        """Return ``[XOR_j rows[r][j] * sources[j] for r]``; each source has ``length``
        bytes. With ``outs`` (one writable buffer of ``length`` bytes per row) the
        results are written there and ``outs`` is returned: callers that reuse
        buffers avoid touching fresh memory (~0.8 GB/s on these machines)."""
        ...


class PythonKernel:
    """Pure Python: ``bytes.translate`` for multiplication, big-int XOR for addition."""

    name = "python"

    def apply(
        self,
        rows: Matrix,
        sources: Sequence[bytes],
        length: int,
        outs: Sequence[bytearray] | None = None,
    ) -> list[bytes]:
        """See :meth:`Kernel.apply`."""
        out: list[bytes] = []
        for row in rows:
            acc = 0
            for coeff, src in zip(row, sources, strict=True):
                if coeff == 1:
                    acc ^= int.from_bytes(src, "little")
                elif coeff:
                    acc ^= int.from_bytes(bytes(src).translate(_mul_table(coeff)), "little")
            out.append(acc.to_bytes(length, "little"))
        if outs is not None:
            for buf, value in zip(outs, out, strict=True):
                buf[:length] = value
            return list(outs)  # type: ignore[arg-type]
        return out


class IsalKernel:
    """ISA-L ``ec_encode_data`` through ctypes (releases the GIL during the call)."""

    name = "isal"

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        self._init = lib.ec_init_tables
        self._init.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p]
        self._init.restype = None
        self._encode = lib.ec_encode_data
        self._encode.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_char_p]
        self._encode.argtypes += [ctypes.c_void_p, ctypes.c_void_p]
        self._encode.restype = None
        self.path = path

    @functools.lru_cache(maxsize=256)  # noqa: B019 - a few kernels live forever
    def _tables(self, rows: tuple[tuple[int, ...], ...]) -> bytes:
        k = len(rows[0])
        tables = ctypes.create_string_buffer(32 * k * len(rows))
        self._init(k, len(rows), bytes(v for row in rows for v in row), tables)
        return tables.raw

    def apply(
        self,
        rows: Matrix,
        sources: Sequence[bytes],
        length: int,
        outs: Sequence[bytearray] | None = None,
    ) -> list[bytes]:
        """See :meth:`Kernel.apply`."""
        if length == 0 or not rows:
            return [b""] * len(rows)
        tables = self._tables(tuple(tuple(r) for r in rows))
        if outs is None:
            outs = [bytearray(length) for _ in rows]
        if len(outs) != len(rows) or any(len(o) < length for o in outs):
            raise InvalidArgument("output buffers do not match the rows")
        keep: list[object] = []  # the buffers behind the raw pointers, alive until the call ends
        src_ptrs = (ctypes.c_void_p * len(sources))(*(_address(b, keep) for b in sources))
        out_ptrs = (ctypes.c_void_p * len(outs))(*(_address(o, keep) for o in outs))
        self._encode(length, len(sources), len(rows), tables, src_ptrs, out_ptrs)
        del keep
        return list(outs)  # type: ignore[arg-type]  # bytearrays: no copy of fresh pages


def _address(buf: bytes | bytearray | memoryview, keep: list[object]) -> int | None:
    """The address of ``buf``'s first byte, without copying it when it is ``bytes``
    or writable (a read-only view is copied once); what backs it goes in ``keep``."""
    if isinstance(buf, bytes):
        keep.append(buf)
        return ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p).value
    view = memoryview(buf).cast("B")
    if view.readonly:
        copy = bytes(view)
        keep.append(copy)
        return ctypes.cast(ctypes.c_char_p(copy), ctypes.c_void_p).value
    array = (ctypes.c_char * view.nbytes).from_buffer(view)
    keep.append(array)
    return ctypes.addressof(array)


def find_isal() -> str | None:
    """Path of a loadable ISA-L: ``$TESSERA_ISAL_LIB``, system ``libisal``, pyeclib's copy."""
    if env := os.environ.get("TESSERA_ISAL_LIB"):
        return env
    if system := ctypes.util.find_library("isal"):
        return system
    spec = importlib.util.find_spec("pyeclib")
    if spec and spec.origin:
        libs = Path(spec.origin).parent.parent / "pyeclib.libs"
        for candidate in sorted(libs.glob("libisal*.so*")):
            return str(candidate)
    return None


def select_kernel(name: str | None = None) -> Kernel:
    """The kernel named ``name`` (``isal``/``python``), else ``$TESSERA_CODEC``, else the best.

    Forcing ``isal`` raises :class:`OSError` if ISA-L is missing; ``auto`` falls back.
    """
    name = (name or os.environ.get("TESSERA_CODEC") or "auto").lower()
    if name == "python":
        return PythonKernel()
    path = find_isal()
    if name == "isal":
        if path is None:
            raise OSError("TESSERA_CODEC=isal but no ISA-L library was found")
        return IsalKernel(path)
    if name != "auto":
        raise InvalidArgument(f"unknown codec kernel {name!r}", kernel=name)
    if path is not None:
        try:
            return IsalKernel(path)
        except (OSError, AttributeError):
            pass
    return PythonKernel()


DEFAULT: Kernel = select_kernel()
"""The kernel chosen at import time."""


# --- the codec -----------------------------------------------------------------------
def _check_km(k: int, m: int) -> None:
    if k < 1 or m < 0 or k + m > MAX_FRAGMENTS:
        raise InvalidArgument(f"bad erasure-code shape k={k} m={m}", k=k, m=m)


def fragment_size(size: int, k: int) -> int:
    """Length of every fragment of a ``size``-byte segment split ``k`` ways."""
    return -(-size // k)


def encode(
    segment: bytes | bytearray | memoryview,
    k: int,
    m: int,
    kernel: Kernel | None = None,
    parity: Sequence[bytearray] | None = None,
) -> list[bytes | memoryview]:
    """Return ``k + m`` fragments of :func:`fragment_size` bytes; the first ``k`` are data.

    Data fragments that need no padding are *views* of ``segment`` (no copy): the
    caller keeps ``segment`` alive and unchanged while it uses them. ``parity``
    (``m`` buffers of at least the fragment size) receives the parity fragments,
    which are then views of those buffers."""
    _check_km(k, m)
    n = fragment_size(len(segment), k)
    view = memoryview(segment).cast("B")
    pieces: list[bytes | memoryview] = [view[i * n : (i + 1) * n] for i in range(k)]
    pieces = [p if len(p) == n else bytes(p) + bytes(n - len(p)) for p in pieces]  # padding
    outs = None if parity is None else [memoryview(b)[:n] for b in parity]
    out = (kernel or DEFAULT).apply(cauchy_matrix(k, m)[k:], pieces, n, outs)  # type: ignore[arg-type]
    return [*pieces, *out]


def _sources(fragments: Mapping[int, bytes], k: int, m: int) -> tuple[list[int], int]:
    """The ``k`` lowest usable indexes and the common fragment length, validated."""
    for i in fragments:
        if not 0 <= i < k + m:
            raise InvalidArgument(f"fragment index {i} outside 0..{k + m - 1}", index=i)
    if len(fragments) < k:
        raise Unavailable(f"need {k} fragments to decode, have {len(fragments)}")
    lengths = {len(f) for f in fragments.values()}
    if len(lengths) != 1:
        raise DataCorruption(f"fragments have unequal lengths {sorted(lengths)}")
    return sorted(fragments)[:k], lengths.pop()


def reconstruct(
    fragments: Mapping[int, bytes],
    k: int,
    m: int,
    missing: Sequence[int],
    kernel: Kernel | None = None,
) -> dict[int, bytes]:
    """Rebuild the fragments at indexes ``missing`` from any ``k`` of ``fragments``.

    Returns exactly the bytes :func:`encode` produced for those indexes.
    """
    _check_km(k, m)
    used, n = _sources(fragments, k, m)
    for i in missing:
        if not 0 <= i < k + m:
            raise InvalidArgument(f"fragment index {i} outside 0..{k + m - 1}", index=i)
    rows = _decode_rows(k, m, tuple(used), tuple(missing))
    sources = [bytes(fragments[i]) for i in used]
    return dict(zip(missing, (kernel or DEFAULT).apply(rows, sources, n), strict=True))


def decode(
    fragments: Mapping[int, bytes],
    k: int,
    m: int,
    size: int,
    kernel: Kernel | None = None,
) -> bytes:
    """Return the ``size``-byte segment from any ``k`` fragments (index -> bytes).

    With all data fragments present this only joins them (no GF arithmetic).
    """
    _check_km(k, m)
    _, n = _sources(fragments, k, m)
    if n * k < size or n != fragment_size(size, k):
        raise DataCorruption(f"fragments of {n} bytes cannot hold a {size}-byte segment")
    lost = [i for i in range(k) if i not in fragments]
    rebuilt = reconstruct(fragments, k, m, lost, kernel) if lost else {}
    parts = [rebuilt[i] if i in rebuilt else fragments[i] for i in range(k)]
    return b"".join(parts)[:size]
