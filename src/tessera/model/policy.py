"""Storage policies as values, parsed from their string form.

``plain`` (one copy), ``rep/n=N`` (N identical copies), ``ec/k=K,m=M``
(Reed-Solomon, K data + M parity fragments). Quorum rules follow DESIGN.md §4.
"""

from __future__ import annotations

from dataclasses import dataclass

from tessera.model.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class Policy:
    kind: str
    """``plain``, ``rep`` or ``ec``."""
    n: int = 1
    """Copies for ``rep`` (1 for ``plain``)."""
    k: int = 0
    m: int = 0

    @classmethod
    def parse(cls, text: str) -> Policy:
        """Parse ``plain``, ``rep/n=3``, ``ec/k=4,m=2``; raises InvalidArgument otherwise."""
        text = text.strip()
        if text == "plain":
            return cls("plain")
        kind, _, params = text.partition("/")
        try:
            kv = dict(p.split("=", 1) for p in params.split(",") if p)
            if kind == "rep":
                n = int(kv["n"])
                if 1 <= n <= 16:
                    return cls("rep", n=n)
            elif kind == "ec":
                k, m = int(kv["k"]), int(kv["m"])
                if 1 <= k <= 32 and 1 <= m <= 16:
                    return cls("ec", k=k, m=m)
        except (KeyError, ValueError):
            pass
        raise InvalidArgument(f"invalid storage policy {text!r}")

    def __str__(self) -> str:
        if self.kind == "plain":
            return "plain"
        if self.kind == "rep":
            return f"rep/n={self.n}"
        return f"ec/k={self.k},m={self.m}"

    @property
    def fragments(self) -> int:
        """Fragments written per segment."""
        return self.k + self.m if self.kind == "ec" else self.n

    @property
    def write_quorum(self) -> int:
        """Fragments that must be durably stored before a write is acknowledged."""
        if self.kind == "ec":
            return self.k if self.m == 1 else self.k + 1
        if self.kind == "rep":
            return max((self.n + 1) // 2, 1) if self.n > 2 else self.n
        return 1

    @property
    def read_minimum(self) -> int:
        """Fragments needed to read a segment."""
        return self.k if self.kind == "ec" else 1


def auto_policy(disks: int, servers: int = 1) -> Policy:
    """The default policy for a store of ``disks`` disks on ``servers`` servers.

    Failure domains are servers when there are several, else disks: 6 or more
    get ``ec/k=4,m=2`` (survives any 2 losses at 1.5x the space), 3 to 5 get
    ``rep/n=3``, 2 get ``rep/n=2``, 1 gets ``plain``.
    """
    domains = servers if servers > 1 else disks
    if domains >= 6:
        return Policy("ec", k=4, m=2)
    if domains >= 3:
        return Policy("rep", n=3)
    if domains == 2:
        return Policy("rep", n=2)
    return Policy("plain")
