"""Clock abstraction: logic takes a Clock so tests can pin time."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (UTC), as a float."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FakeClock:
    """A settable clock for tests."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
