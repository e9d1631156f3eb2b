"""Pre-authenticated requests (PARs): links that act for their owner without a signature.

A PAR grants whoever holds its URL some of its owner's rights over one bucket
(a *bucket PAR*, ``key`` None) or exactly one object of it (an *object PAR*),
until it expires or is revoked. The URL carries the PAR's id and a random
secret; the server keeps only the secret's SHA-256, so a copy of the metadata
does not reveal usable links.

A calculation PAR's job run is a :class:`ParJob`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Par:
    id: str
    """Random, URL-safe identifier (not secret: shown in listings and logs)."""
    owner: str
    """Account id of the creator; uses of the PAR act with its authority."""
    bucket: str
    """The one bucket the PAR reaches."""
    key: str | None
    """The one object an object PAR reaches; None for a bucket PAR."""
    readable: bool
    """GET/HEAD of the object (object PAR) or of any key of the bucket (bucket PAR)."""
    writeable: bool
    """PUT of the object (object PAR) or of any key of the bucket (bucket PAR)."""
    listable: bool
    """Listing the bucket's keys; bucket PARs only."""
    created: float
    expires: float
    """Epoch seconds after which every use is refused."""
    secret_hash: str
    """Lower-case hex SHA-256 of the URL secret."""
    revoked: bool = False
    """Set once by a revocation; a revoked PAR is refused until it is swept."""
    job: str | None = None
    """Name of the server-side job a calculation PAR controls; None for data PARs."""

    @property
    def is_bucket(self) -> bool:
        return self.key is None and self.job is None

    @property
    def is_object(self) -> bool:
        return self.key is not None

    @property
    def is_calculation(self) -> bool:
        return self.job is not None


@dataclass(frozen=True, slots=True)
class ParJob:
    """The last run of a calculation PAR's job, as the metadata store keeps it
    (one per PAR), so that every process sharing the store sees and stops it."""

    par_id: str
    job: str
    """The job kind (the PAR's ``job``)."""
    args: dict[str, str]
    holder: str
    """Which run of which process runs (or ran) it; only that holder updates the record."""
    started: float
    updated: float
    """Epoch seconds of the holder's last write: a running job writes regularly,
    so an old value means the process running it stopped."""
    state: str = "running"
    """``running``, ``done``, ``failed`` or ``stopped``."""
    progress: dict[str, int] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    stop_requested: bool = False
    """Set by a stop request from another process; the holder stops when it sees it."""
