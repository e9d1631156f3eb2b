"""Rebuilding lost fragments of one segment (the healer's data half).

:func:`check_segment` stats every fragment a manifest names; :func:`rebuild`
recreates chosen fragment indexes on chosen disks from the segment's good
fragments. Neither touches metadata: the healer (``core.healer``) decides what
to rebuild where and records new locations in the manifests.

Contracts:

* **Never writes wrong bytes.** The sources are whole fragments verified by their
  volumes' CRC32Cs, and before anything is written the segment they encode is
  checked against its BLAKE3 identity (a replica directly; an EC segment decoded
  from the sources). A mismatch raises DataCorruption and writes nothing.
* **Idempotent.** Fragment names are fixed by (segment, policy, index), and a
  volume put of a block that already holds the same bytes only refreshes it, so
  rebuilding twice, or concurrently with a read repair, is harmless. A corrupt
  copy at the target is replaced atomically.
* ``plain`` segments have no redundancy: a lost plain block cannot be rebuilt
  (:class:`Unrecoverable`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import blake3

from tessera.data import codec
from tessera.data.store import SegmentStore
from tessera.data.volume import BlockNotFound
from tessera.data.writer import fragment_name
from tessera.model.errors import DataCorruption, TesseraError, Unavailable
from tessera.model.manifest import FragmentRef, Segment
from tessera.model.policy import Policy

log = logging.getLogger(__name__)


class Unrecoverable(DataCorruption):
    """Fewer good fragments exist than the segment needs: its data is lost."""


@dataclass(frozen=True, slots=True)
class FragmentState:
    """What :func:`check_segment` found for one fragment."""

    fragment: FragmentRef
    state: str
    """``ok``, ``missing`` (the disk answered: no such block, or wrong size),
    ``down`` (the disk did not answer or is on a down server) or ``gone`` (the
    disk is no longer in the cluster)."""


async def check_segment(store: SegmentStore, s: Segment) -> list[FragmentState]:
    """Stat every fragment ``s`` names, in parallel (no data is read)."""
    volumes = store.volumes
    down = store.down_disks

    async def one(f: FragmentRef) -> FragmentState:
        vol = volumes.get(f.volume)
        if vol is None:
            return FragmentState(f, "gone")
        if f.volume in down:
            return FragmentState(f, "down")
        try:
            st = await vol.stat(f.block)
        except (OSError, TesseraError):
            return FragmentState(f, "down")
        if st is None or st[0] != f.size:
            return FragmentState(f, "missing")
        return FragmentState(f, "ok")

    return list(await asyncio.gather(*(one(f) for f in s.fragments)))


async def check_segments(
    store: SegmentStore, segments: Sequence[Segment]
) -> list[list[FragmentState]]:
    """:func:`check_segment` for many segments with one :meth:`Volume.stat_many`
    per disk (one request per chunk server disk, not one per fragment)."""
    volumes = store.volumes
    down = store.down_disks
    wanted: dict[str, set[str]] = {}
    for s in segments:
        for f in s.fragments:
            if f.volume in volumes and f.volume not in down:
                wanted.setdefault(f.volume, set()).add(f.block)

    async def stat(
        disk: str, names: set[str]
    ) -> tuple[str, dict[str, tuple[int, float] | None] | None]:
        try:
            return disk, await volumes[disk].stat_many(sorted(names))
        except (OSError, TesseraError):
            return disk, None  # the disk did not answer: its fragments are "down"

    found = dict(await asyncio.gather(*(stat(d, n) for d, n in wanted.items())))
    out = []
    for s in segments:
        states = []
        for f in s.fragments:
            if f.volume not in volumes:
                states.append(FragmentState(f, "gone"))
                continue
            answers = found.get(f.volume)
            if f.volume in down or answers is None:
                states.append(FragmentState(f, "down"))
                continue
            st = answers.get(f.block)
            ok = st is not None and st[0] == f.size
            states.append(FragmentState(f, "ok" if ok else "missing"))
        out.append(states)
    return out


async def _read_whole(store: SegmentStore, f: FragmentRef) -> bytes | None:
    vol = store.volumes.get(f.volume)
    if vol is None or f.volume in store.down_disks:
        return None
    try:
        data = await vol.get(f.block, crc32c=f.crc32c)
    except (BlockNotFound, DataCorruption, ValueError, OSError, TesseraError) as e:
        log.info("heal source %s/%s unusable: %s", f.volume, f.block, e)
        return None
    return data if len(data) == f.size else None


async def _sources(
    store: SegmentStore, s: Segment, pol: Policy, exclude: set[int]
) -> dict[int, bytes]:
    """Whole good fragments: one replica, or k EC fragments (data ones first)."""
    need = pol.k if pol.kind == "ec" else 1
    candidates = sorted(
        (f for f in s.fragments if f.index not in exclude),
        key=lambda f: (f.volume in store.down_disks, f.index >= need, f.index),
    )
    got: dict[int, bytes] = {}
    for f in candidates:  # sequential: healing must not starve client reads
        if f.index in got:
            continue
        data = await _read_whole(store, f)
        if data is not None:
            got[f.index] = data
            if len(got) >= need:
                break
    if len(got) < need:
        raise Unrecoverable(
            f"segment {s.hash} has {len(got)} readable fragment(s), {need} needed",
            segment=s.hash,
        )
    return got


def _encode_missing(
    s: Segment, pol: Policy, got: Mapping[int, bytes], missing: list[int], kernel: codec.Kernel
) -> dict[int, bytes]:
    """Check the sources against the segment hash and compute ``missing`` fragments."""
    if pol.kind == "ec":
        segment = codec.decode(got, pol.k, pol.m, s.size, kernel)
        if blake3.blake3(segment).hexdigest() != s.hash:
            raise DataCorruption(f"fragments of segment {s.hash} do not decode to it")
        return codec.reconstruct(got, pol.k, pol.m, missing, kernel)
    (data,) = got.values()
    if blake3.blake3(data).hexdigest() != s.hash:
        raise DataCorruption(f"replica of segment {s.hash} does not match its hash")
    return dict.fromkeys(missing, data)


async def rebuild(
    store: SegmentStore, s: Segment, targets: Mapping[int, str]
) -> dict[int, FragmentRef]:
    """Recreate fragment ``index`` on disk ``targets[index]`` for each entry.

    Sources exclude the indexes being rebuilt. Returns the new refs of the
    fragments stored; a target that fails is left out (logged) and the caller
    retries later. Raises Unrecoverable (too few good fragments; plain segments
    always) or DataCorruption (sources inconsistent with the segment hash)."""
    pol = Policy.parse(s.policy)
    if not targets:
        return {}
    if pol.kind == "plain":
        raise Unrecoverable(f"plain segment {s.hash} has no redundancy to rebuild from")
    got = await _sources(store, s, pol, set(targets))
    built = await asyncio.to_thread(_encode_missing, s, pol, got, sorted(targets), store.kernel)
    refs: dict[int, FragmentRef] = {}
    for index, disk in targets.items():
        vol = store.volumes.get(disk)
        block = fragment_name(s.hash, pol, index)
        if vol is None:
            log.warning("cannot rebuild %s: disk %s unknown", block, disk)
            continue
        try:
            # A put keeps an existing block whose footer matches (same length and
            # CRC), which a block rotten in its data area still has: verify first,
            # so a corrupt copy is quarantined and the put writes a fresh one.
            await vol.verify(block)
            stored = await vol.put(block, built[index])
        except (OSError, TesseraError) as e:
            log.warning("rebuilding %s on %s failed: %s", block, disk, e)
            continue
        refs[index] = FragmentRef(index, block, len(built[index]), disk, stored.crc32c)
    if not refs:
        raise Unavailable(f"no rebuilt fragment of segment {s.hash} could be stored")
    return refs
