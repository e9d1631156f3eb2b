"""Quorum writes of one segment's fragments (DESIGN.md §4).

A segment becomes ``width`` fragments: 1 for ``plain``, N identical copies for
``rep/n=N``, k+m Reed-Solomon fragments for ``ec/k=K,m=M``. :func:`store_fragments`
writes them to distinct disks in parallel and returns once every put finished:

* **Targets and spares.** ``order`` is every placeable disk in spread order for
  the segment (zones, then servers, then disks; :mod:`topology`). Fragment ``i``
  goes to ``order[i]``; when that put fails (disk full, I/O error, server down) the
  slot takes the next unused disk of ``order[width:]``, so a full or broken disk
  costs one retry, not the write. Each slot tries at most ``attempts`` disks.
* **Quorum.** The write succeeds when at least ``quorum`` fragments are stored
  (:attr:`Policy.write_quorum`: k+1 for EC, k when m=1; a majority of replicas,
  never fewer than two of two). Fragments that could not be stored are simply
  absent from the result: the manifest records only what exists and the healer
  completes the segment later. Below quorum it raises :class:`Unavailable` (or
  :class:`StorageFull` when every failure was a full disk) with each disk's cause;
  the blocks that *were* created are reported through ``created`` so the caller
  deletes them (nothing half-written is ever referenced).
* **Cancellation.** A put already handed to a volume runs to completion even if
  the write is cancelled (the data buffer must outlive the thread using it); a
  block it created is still reported, so cleanup finds it.

Block names: a ``plain`` or ``rep`` fragment is the segment's content hash itself
(the same block on every disk that holds a copy: self-verifying, deduplicated);
EC fragment ``i`` is ``<hash>.k<K>m<M>.<i>`` (its bytes depend on k and m).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from tessera.common.checksums import Buffer
from tessera.data.volume import Volume
from tessera.model.errors import StorageFull, TesseraError, Unavailable
from tessera.model.manifest import FragmentRef
from tessera.model.policy import Policy

log = logging.getLogger(__name__)


def fragment_name(segment_hash: str, policy: Policy, index: int) -> str:
    """The block name of fragment ``index`` of a segment stored with ``policy``."""
    if policy.kind == "ec":
        return f"{segment_hash}.k{policy.k}m{policy.m}.{index}"
    return segment_hash


@dataclass(eq=False)
class PutOutcome:
    """What :func:`store_fragments` did: the fragments stored (by index) and, per
    disk that failed, why."""

    refs: dict[int, FragmentRef] = field(default_factory=dict)
    causes: dict[str, str] = field(default_factory=dict)
    full: set[str] = field(default_factory=set)
    """Disks that answered StorageFull."""


CreatedHook = Callable[[str, str, float], None]
"""``(volume, block, mtime)`` of a block a put created."""


async def store_fragments(
    name: Callable[[int], str],
    datas: Sequence[Buffer],
    order: Sequence[str],
    volumes: Mapping[str, Volume],
    *,
    quorum: int,
    created: CreatedHook,
    failed: Callable[[str], None] = lambda disk: None,
    attempts: int = 3,
) -> PutOutcome:
    """Store fragment ``i`` (``datas[i]``, block ``name(i)``) for every index, each on
    a distinct disk of ``order``, in parallel; see the module docstring.

    Returns when every slot finished. Raises Unavailable/StorageFull below
    ``quorum`` (after reporting created blocks). ``failed(disk)`` is called for a
    disk whose put failed, so callers can avoid it for a while.
    """
    width = len(datas)
    spares: Iterator[str] = iter(order[width:])
    outcome = PutOutcome()

    async def slot(index: int) -> None:
        disk: str | None = order[index] if index < len(order) else next(spares, None)
        tries = 0
        while disk is not None and tries < attempts:
            tries += 1
            ref = await _put_one(disk, name(index), index, datas[index], volumes, outcome, created)
            if ref is not None:
                outcome.refs[index] = ref
                return
            failed(disk)
            disk = next(spares, None)

    await asyncio.gather(*(slot(i) for i in range(width)))
    if len(outcome.refs) < quorum:
        detail = f"{len(outcome.refs)} of {width} fragment(s) stored, {quorum} needed"
        why = "; ".join(f"{d}: {c}" for d, c in sorted(outcome.causes.items()))
        if outcome.causes and set(outcome.causes) <= outcome.full:
            raise StorageFull(f"no room for the data ({detail}; {why})", causes=outcome.causes)
        raise Unavailable(
            f"write quorum not reached: {detail}" + (f" ({why})" if why else ""), outcome.causes
        )
    return outcome


async def _put_one(
    disk: str,
    block: str,
    index: int,
    data: Buffer,
    volumes: Mapping[str, Volume],
    outcome: PutOutcome,
    created: CreatedHook,
) -> FragmentRef | None:
    vol = volumes.get(disk)
    if vol is None:
        outcome.causes[disk] = "unknown disk"
        return None
    # Shielded: if the caller is cancelled the put still finishes (the buffer must
    # outlive the thread or socket using it) and a block it created is reported.
    put = asyncio.ensure_future(vol.put(block, data))
    try:
        stored = await asyncio.shield(put)
    except asyncio.CancelledError:
        await asyncio.wait([put])
        if not put.cancelled() and put.exception() is None and put.result().created:
            created(disk, block, put.result().mtime)
        raise
    except StorageFull as e:
        outcome.causes[disk] = e.message
        outcome.full.add(disk)
        return None
    except (OSError, TesseraError) as e:
        outcome.causes[disk] = f"{type(e).__name__}: {e}"
        log.warning("disk %s failed to store block %s: %s", disk, block, e)
        return None
    if stored.created:
        created(disk, block, stored.mtime)
    return FragmentRef(index, block, len(memoryview(data)), disk, stored.crc32c)
