"""Content-addressed blocks over the data layer's volumes (the block API).

Theory of operation
-------------------
Every volume of the store (a local disk of ``tessera serve``, a chunk server's
disk in a cluster) is a *block service*. A client computes the rendezvous probe
order (:func:`tessera.protocol.blocks.probe_order`) over the services and PUTs
a block to the first ones until it has as many copies as it wants; this module
stores one copy on the one volume named by each call. See ``docs/blocks.md``.

* **Names.** A block with MD5 ``h`` is the volume block ``h.cas``
  (:func:`tessera.data.volume.content_block_name`), a namespace no segment
  fragment uses: the orphan GC skips it, the healer never sees it (it works from
  manifests), the scrubber verifies its CRCs like any block's.
* **Atomicity.** :meth:`BlockStore.put` checks the MD5 of the data and stores it
  with :meth:`Volume.put`, which makes it visible only once complete and durable;
  storing an existing block again only refreshes it.
* **Permission.** Every answer that names a block is a locator signed for the
  calling account (:func:`tessera.protocol.blocks.sign`), valid ``ttl`` seconds.
  Reading needs such a locator: unsigned or expired -> :class:`SignatureExpired`
  (401), wrong MAC -> :class:`SignatureInvalid` (400).
* **Lifecycle.** Blocks live until an explicit delete (root only). Nothing
  collects unreferenced ones; draining a chunk server does not move them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from tessera.common.clock import Clock, SystemClock
from tessera.data.topology import Topology
from tessera.data.volume import BlockNotFound, Volume, content_block_name
from tessera.model.errors import (
    AccessDenied,
    BadDigest,
    DataCorruption,
    EntityTooLarge,
    InvalidArgument,
    NotFound,
)
from tessera.protocol import blocks as proto

log = logging.getLogger(__name__)

DEFAULT_TTL = 14 * 86400.0
"""Seconds a signed locator stays valid (Keep's ``BlobSigningTTL`` default)."""
HASH_INLINE = 1 << 20
"""Blocks up to this size are hashed on the event loop, bigger ones in a thread."""


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class NoSuchBlock(NotFound):
    """The block is not on that service."""


class NoSuchBlockService(NotFound):
    """No volume has that id."""


class SignatureExpired(AccessDenied):
    """The locator is unsigned, or its signature has expired (401, as Keep)."""


class SignatureInvalid(InvalidArgument):
    """The locator's signature does not match (400, as Keep)."""


class ReadOnlyService(AccessDenied):
    """The volume takes no new blocks (its server is down or draining)."""


@dataclass(frozen=True, slots=True)
class BlockService:
    """One volume as the block API lists it."""

    id: str
    server: str
    zone: str
    read_only: bool


class VolumeSet(Protocol):
    """What the block store needs from the data layer (``SegmentStore`` has it)."""

    @property
    def volumes(self) -> Mapping[str, Volume]: ...

    @property
    def topology(self) -> Topology: ...

    @property
    def down_disks(self) -> frozenset[str]: ...


class BlockStore:
    """Block operations on the volumes of ``data``, signing with ``key``.

    Errors: NoSuchBlockService (unknown volume), NoSuchBlock, SignatureExpired,
    SignatureInvalid, InvalidArgument (malformed locator or hash), BadDigest,
    EntityTooLarge, AccessDenied (anonymous caller, or a delete by a non-root
    account), ReadOnlyService, DataCorruption (the stored copy is damaged; it is
    quarantined so the next read says NoSuchBlock), Unavailable/OSError from a
    volume.
    """

    def __init__(
        self,
        data: VolumeSet,
        key: bytes,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Clock | None = None,
        root_account: str = "root",
    ) -> None:
        if not key or ttl <= 0:
            raise ValueError("a signing key and a positive ttl are needed")
        self._data = data
        self._key = key
        self.ttl = ttl
        self.clock = clock or SystemClock()
        self.root_account = root_account

    # -- services ---------------------------------------------------------------
    def services_for(self, account: str) -> list[BlockService]:
        """:meth:`services` for a signed caller (AccessDenied for anonymous)."""
        self._caller(account)
        return self.services()

    def services(self) -> list[BlockService]:
        """Every volume, sorted by id. A volume is read-only when its server is
        down or the disk is draining (weight <= 0)."""
        topo = self._data.topology
        down = self._data.down_disks
        weights = {d.id: d.weight for d in topo.disks()}
        out = []
        for vid in sorted(self._data.volumes):
            try:
                server, zone = topo.server_of(vid), topo.zone_of(vid)
            except KeyError:
                server = zone = ""
            ro = vid in down or weights.get(vid, 1.0) <= 0
            out.append(BlockService(vid, server, zone, ro))
        return out

    def _volume(self, service: str) -> Volume:
        vol = self._data.volumes.get(service)
        if vol is None:
            raise NoSuchBlockService(f"no block service {service!r}", service=service)
        return vol

    # -- signatures ---------------------------------------------------------------
    def sign(self, md5: str, size: int, account: str) -> str:
        """A locator for the block signed for ``account``, valid ``ttl`` seconds."""
        expiry = int(self.clock.now() + self.ttl)
        return str(proto.sign(self._key, md5, size, account, expiry))

    def check(self, locator: str, account: str) -> proto.Locator:
        """Parse ``locator`` and verify its signature for ``account``; returns it.
        Raises InvalidArgument, SignatureExpired, SignatureInvalid."""
        try:
            loc = proto.Locator.parse(locator)
        except ValueError as e:
            raise InvalidArgument(str(e), argument="locator") from None
        verdict = proto.check(self._key, loc, account, self.clock.now())
        if verdict == "unsigned":
            raise SignatureExpired("a signed locator is required")
        if verdict == "expired":
            raise SignatureExpired("expired signature")
        if verdict == "invalid":
            raise SignatureInvalid("invalid signature")
        return loc

    @staticmethod
    def _caller(account: str) -> str:
        if not account:
            raise AccessDenied("the block API needs a signed request")
        return account

    # -- operations -----------------------------------------------------------------
    async def put(self, account: str, service: str, md5: str, data: bytes) -> str:
        """Store ``data`` (whose MD5 must be ``md5``) on volume ``service``,
        atomically; returns its locator signed for ``account``. Idempotent."""
        self._caller(account)
        if not proto.is_md5(md5):
            raise InvalidArgument(f"not an MD5 hex digest: {md5!r}", argument="hash")
        if len(data) > proto.MAX_BLOCK_SIZE:
            raise EntityTooLarge(f"blocks are at most {proto.MAX_BLOCK_SIZE} bytes")
        if len(data) > HASH_INLINE:  # ~1.5 ms per MiB: not on the event loop
            actual = await asyncio.to_thread(_md5, data)
        else:
            actual = _md5(data)
        if actual != md5:
            raise BadDigest(f"the data's MD5 is {actual}, not {md5}")
        vol = self._volume(service)
        if any(s.read_only for s in self.services() if s.id == service):
            raise ReadOnlyService(f"block service {service} is read-only")
        await vol.put(content_block_name(md5), data)
        return self.sign(md5, len(data), account)

    async def get(self, account: str, service: str, locator: str) -> bytes:
        """The block's bytes from volume ``service`` (CRC-verified by the volume)."""
        loc = self.check(locator, self._caller(account))
        vol = self._volume(service)
        name = content_block_name(loc.md5)
        try:
            data = await vol.get(name)
        except BlockNotFound:
            raise NoSuchBlock(f"block {loc.md5} is not on {service}") from None
        except DataCorruption:
            await self._quarantine(vol, service, name)
            raise
        if len(data) != loc.size:
            raise NoSuchBlock(f"block {loc.md5} on {service} has {len(data)} bytes")
        return data

    async def head(self, account: str, service: str, locator: str) -> tuple[int, str]:
        """``(size, freshly signed locator)`` when the block is on ``service``."""
        loc = self.check(locator, self._caller(account))
        vol = self._volume(service)
        name = content_block_name(loc.md5)
        try:
            st = await vol.stat(name)
        except DataCorruption:
            await self._quarantine(vol, service, name)
            raise
        if st is None or st[0] != loc.size:
            raise NoSuchBlock(f"block {loc.md5} is not on {service}")
        return st[0], self.sign(loc.md5, st[0], account)

    async def delete(self, account: str, service: str, md5: str) -> bool:
        """Move the block on ``service`` to the volume's trash (restorable for the
        volume's trash delay). Root only. False when it was not there."""
        if account != self.root_account:
            raise AccessDenied("only the root account deletes blocks")
        if not proto.is_md5(md5):
            raise InvalidArgument(f"not an MD5 hex digest: {md5!r}", argument="hash")
        return await self._volume(service).delete(content_block_name(md5))

    @staticmethod
    async def _quarantine(vol: Volume, service: str, name: str) -> None:
        """Move a copy found corrupt out of service (best effort)."""
        try:
            await vol.verify(name)
        except Exception as e:  # the read already failed; this is housekeeping
            log.warning("could not quarantine block %s on %s: %s", name, service, e)
