"""Where a segment goes: weighted rendezvous (highest-random-weight) hashing.

Every (key, volume) pair gets a pseudo-random score; the volumes sorted by score,
best first, are the key's *placement order*. Writers use the first volumes of the
order that accept the data; a rebalancer moves a fragment when its volume is no
longer among the first ones. Properties (tested):

* **Deterministic and stateless**: the order depends only on the key and the
  ``(volume id, weight)`` set, not on list order, process or time.
* **Balanced**: each volume is first for a share of keys proportional to its
  weight. The score is ``-weight / ln(u)`` with ``u`` uniform in ``(0, 1)``
  derived from a hash of key and volume id (Resch & Schindelhauer's logarithmic
  method); with equal weights this is plain rendezvous hashing.
* **Minimal movement**: adding a volume changes the first choice only of the keys
  for which the new volume scores best (about ``weight / total`` of them);
  removing one moves only the keys it held. Relative order of the other
  volumes never changes.

This module is pure (no I/O). Cluster placement over distinct failure domains
(zones, servers, disks; DESIGN.md §4) is :mod:`tessera.data.topology`, which
builds on :func:`rank` by ranking at each level.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping

_SCALE = float(1 << 64)


def _unit(key: bytes, volume: str) -> float:
    """A uniform value in ``(0, 1)`` from ``key`` and ``volume`` (64-bit BLAKE2b)."""
    h = hashlib.blake2b(key, digest_size=8, person=b"tessera-hrw")
    h.update(volume.encode())
    # (x + 0.5) / 2^64 is never 0 nor 1 (a 64-bit int rounds to at most 2^64 - 2048)
    return (int.from_bytes(h.digest(), "big") + 0.5) / _SCALE


def score(key: str, volume: str, weight: float = 1.0) -> float:
    """The rendezvous score of ``volume`` for ``key``; higher is preferred.

    Zero for a weight of zero or less (such a volume is ranked last and only
    chosen when nothing else is left).
    """
    if weight <= 0:
        return 0.0
    u = _unit(key.encode(), volume)
    return -weight / math.log(u)


def rank(key: str, volumes: Mapping[str, float] | Iterable[str]) -> list[str]:
    """Volume ids in placement order for ``key`` (a segment hash), best first.

    ``volumes`` is either a mapping of id to weight (e.g. capacity in TB) or a
    plain iterable of ids (all weight 1). Ties (practically impossible) are
    broken by id so the result is always deterministic.
    """
    weights = volumes if isinstance(volumes, Mapping) else dict.fromkeys(volumes, 1.0)
    # the hash state after the key, copied per volume: same value as _unit, less work
    base = hashlib.blake2b(key.encode(), digest_size=8, person=b"tessera-hrw")
    log = math.log

    def sort_key(vid: str) -> tuple[float, str]:
        w = weights[vid]
        if w <= 0:
            return (0.0, vid)
        h = base.copy()
        h.update(vid.encode())
        u = (int.from_bytes(h.digest(), "big") + 0.5) / _SCALE
        return (w / log(u), vid)  # w / ln(u) = -score: ascending sort puts the best first

    return sorted(weights, key=sort_key)


def first(key: str, volumes: Mapping[str, float] | Iterable[str], n: int = 1) -> list[str]:
    """The ``n`` first volumes of the placement order (for replicas/fragments later)."""
    return rank(key, volumes)[:n]
