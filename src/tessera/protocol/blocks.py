"""Content-addressed blocks (Arvados Keep style): locators, permission
signatures and the rendezvous probe order, shared by the server and the SDK.

A *locator* names a block by content and carries hints::

    <md5 hex>+<size>[+A<signature>@<expiry hex>][+<other hint>...]

``d41d8cd98f00b204e9800998ecf8427e+3+A5f…9c@6a1b2c3d``. The ``+A`` hint is a
permission signature: HMAC-SHA256 (hex) keyed by the server's block-signing key
over ``<md5>+<size>@<expiry hex>@<account id>``, so a signed locator proves that
the account it was issued to stored (or was allowed to read) the block, and is
valid only for that account until ``expiry`` (Unix seconds, 8 hex digits).
Unlike Keep the size is signed too, and the MAC is SHA-256 rather than SHA-1.

The probe order (:func:`probe_order`) is Keep's rendezvous hashing: services
ranked by ``md5(block md5 + service id)``, descending; then, so consecutive
copies land on distinct servers when there are several, interleaved by server.
Writers store copies on the first services of the order, readers try them in
the same order, so a block is normally found at the first probe.

Everything here is pure (no I/O, no clock): callers pass ``now``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
"""MD5 of the empty block, which every store holds implicitly."""
MAX_BLOCK_SIZE = 64 << 20
"""Largest block the API accepts (as Keep's ``BlockSize``)."""

_HASH_RE = re.compile(r"[0-9a-f]{32}")
_LOCATOR_RE = re.compile(r"([0-9a-f]{32})\+([0-9]{1,12})((?:\+[A-Z][-A-Za-z0-9@_]*)*)")
_SIGNATURE_RE = re.compile(r"A([0-9a-f]{64})@([0-9a-f]{8})")

Check = Literal["ok", "unsigned", "expired", "invalid"]
"""What :func:`check` found: a valid signature, none, an expired one, a wrong one."""


@dataclass(frozen=True, slots=True)
class Locator:
    """A parsed locator. ``str()`` gives it back in canonical form."""

    md5: str
    """32 lower-case hex digits."""
    size: int
    signature: str | None = None
    """64 hex digits (the ``+A`` hint without its expiry), or None when unsigned."""
    expiry: int | None = None
    """Unix seconds at which the signature stops being valid (None when unsigned)."""
    hints: tuple[str, ...] = ()
    """Other hints, in order, without their leading ``+``."""

    @classmethod
    def parse(cls, text: str) -> Locator:
        """Parse ``text``; raises ValueError for anything that is not a locator
        (no size, a hint before the size, a lower-case hint, a malformed ``+A``)."""
        m = _LOCATOR_RE.fullmatch(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise ValueError(f"not a block locator: {text!r}")
        md5, size, rest = m.group(1), int(m.group(2)), m.group(3)
        if size > MAX_BLOCK_SIZE:
            raise ValueError(f"block size {size} exceeds {MAX_BLOCK_SIZE}")
        signature: str | None = None
        expiry: int | None = None
        hints: list[str] = []
        for hint in rest.split("+")[1:]:
            if hint.startswith("A"):
                s = _SIGNATURE_RE.fullmatch(hint)
                if s is None or signature is not None:
                    raise ValueError(f"malformed signature hint in {text!r}")
                signature, expiry = s.group(1), int(s.group(2), 16)
            else:
                hints.append(hint)
        return cls(md5, size, signature, expiry, tuple(hints))

    def __str__(self) -> str:
        parts = [self.md5, str(self.size)]
        if self.signature is not None and self.expiry is not None:
            parts.append(f"A{self.signature}@{self.expiry:08x}")
        parts.extend(self.hints)
        return "+".join(parts)

    def stripped(self) -> str:
        """``<md5>+<size>``: the locator without any hint."""
        return f"{self.md5}+{self.size}"

    def expired(self, now: float) -> bool:
        """True when unsigned or the signature's expiry is at or before ``now``."""
        return self.expiry is None or self.expiry <= now

    def unsigned(self) -> Locator:
        return replace(self, signature=None, expiry=None)


def is_md5(text: str) -> bool:
    """Whether ``text`` is 32 lower-case hex digits."""
    return isinstance(text, str) and _HASH_RE.fullmatch(text) is not None


def derive_key(secret: str | bytes) -> bytes:
    """The block-signing key derived from a longer-lived secret (the cluster key),
    so the secret itself never keys two different MACs."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, b"tessera block signatures v1", hashlib.sha256).digest()


def signature(key: bytes, md5: str, size: int, expiry: int, account: str) -> str:
    """The hex HMAC-SHA256 permission signature (see the module docstring)."""
    msg = f"{md5}+{size}@{expiry:08x}@{account}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def sign(key: bytes, md5: str, size: int, account: str, expiry: int) -> Locator:
    """A locator for the block signed for ``account`` until ``expiry`` (Unix seconds)."""
    if not is_md5(md5) or size < 0:
        raise ValueError(f"bad block {md5!r}+{size}")
    return Locator(md5, size, signature(key, md5, size, expiry, account), expiry)


def check(key: bytes, locator: Locator, account: str, now: float) -> Check:
    """Verify ``locator``'s signature for ``account`` at time ``now``, in Keep's
    order: no signature -> ``unsigned``; expiry at or before ``now`` -> ``expired``;
    MAC mismatch -> ``invalid``; else ``ok``."""
    if locator.signature is None or locator.expiry is None:
        return "unsigned"
    if locator.expiry <= now:
        return "expired"
    want = signature(key, locator.md5, locator.size, locator.expiry, account)
    return "ok" if hmac.compare_digest(want, locator.signature) else "invalid"


def weight(md5: str, service_id: str) -> str:
    """A service's rendezvous weight for a block (hex; larger probes first)."""
    return hashlib.md5((md5 + service_id).encode(), usedforsecurity=False).hexdigest()


def probe_order(md5: str, services: Sequence[tuple[str, str]]) -> list[str]:
    """The ids of ``services`` (``(id, server)`` pairs) in probe order for block
    ``md5``: by :func:`weight` descending, then interleaved by server (round
    ``j`` takes each server's ``j``-th service, servers in the order their first
    service appears), so any prefix spans as many servers as possible.

    Deterministic and independent of the input order; adding a service moves only
    the blocks for which it ranks first (rendezvous hashing's minimal movement)."""
    ranked = sorted(services, key=lambda s: (weight(md5, s[0]), s[0]), reverse=True)
    by_server: dict[str, list[str]] = {}
    for sid, server in ranked:
        by_server.setdefault(server, []).append(sid)
    rounds = max((len(v) for v in by_server.values()), default=0)
    return [ids[j] for j in range(rounds) for ids in by_server.values() if j < len(ids)]
