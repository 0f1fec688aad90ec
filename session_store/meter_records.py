"""What the utility's meter portal says, as frozen records: reads (usage and the utility's cost per
interval) and bills. They arrive a day or two late and may be corrected later; storage keeps the
latest values and how often they changed."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MeterRead:
    """One interval of the home's meter: [start, end) Unix seconds, energy, and the utility's cost for it
    (None when the portal gives usage only)."""

    start: float
    end: float
    kwh: float
    cost: float | None


@dataclass(frozen=True)
class StoredRead(MeterRead):
    revision: int = 0              # 0 as first seen; +1 for every correction
    day: str = ""                  # local day (YYYY-MM-DD) of the start
    first_seen: float = 0.0
    updated: float = 0.0


@dataclass(frozen=True)
class Bill:
    """A bill: its period [start, end), the date it was issued, the energy and the amount. ``estimated``:
    the bill in progress (the portal's forecast so far), replaced by the actual bill once issued."""

    start: float
    end: float
    bill_date: str
    kwh: float
    amount: float
    usage_charges: float | None
    estimated: bool


@dataclass(frozen=True)
class MeterDay:
    """A local day of meter reads: energy, the utility's cost, and how many reads it has."""

    day: str
    kwh: float
    cost: float | None
    reads: int
    corrected: int
