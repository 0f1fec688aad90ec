"""Simulation clocks: sim_now = origin + (monotonic - t0) * speed + offset.

The model only ever asks a clock for ``now()``, so tests swap in ``ManualClock`` and move time
explicitly instead of sleeping. ``advance`` jumps forward; the model then steps through the
skipped seconds, so energy and ground truth stay exact across jumps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """What the model needs from a clock (unix seconds, simulated)."""

    origin: float
    speed: float

    def now(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock driven, optionally sped up; ``advance`` adds a permanent offset."""

    def __init__(self, origin: float, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.origin = float(origin)
        self.speed = float(speed)
        self.offset = 0.0
        self._monotonic = monotonic
        self._t0 = monotonic()

    def now(self) -> float:
        return self.origin + (self._monotonic() - self._t0) * self.speed + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds


class ManualClock:
    """Time stands still until a test calls ``advance`` (or ``set``)."""

    speed = 1.0

    def __init__(self, origin: float) -> None:
        self.origin = float(origin)
        self.offset = 0.0

    def now(self) -> float:
        return self.origin + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds

    def set(self, when: float) -> None:
        """Jump to an absolute sim time (forward only)."""
        self.advance(when - self.now())
