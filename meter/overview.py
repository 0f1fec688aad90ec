"""The meter data per local day and per bill, each reconciled with the sessions: the rows the session
store's /api/meter serves (the Meter & Bills dashboard's tables) and the reports use. Reads only."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from billing.tariff import Tariff
from meter.reconcile import Reconciliation, ev_intervals, fixed_charges_hint, read_shares, reconcile
from meter.view import day_bounds
from session_store.meter_records import Bill
from session_store.storage import Storage

DAY_S = 86400.0


@dataclass(frozen=True)
class MeterOverview:
    days: tuple[tuple[str, int, int, Reconciliation], ...]     # (day, reads, corrected reads, reconciliation)
    bills: tuple[tuple[Bill, Reconciliation], ...]
    hints: tuple[str, ...]


def meter_overview(storage: Storage, tariff: Tariff, start: float, end: float, tolerance: float) -> MeterOverview:
    """Days starting in [start, end) and bills overlapping it."""
    zone = tariff.zone
    bills = storage.meter_bills(start, end)
    first = min([start, *(b.start for b in bills)])
    last = max([end, *(b.end for b in bills)])
    reads = storage.meter_reads(first, last)
    sessions = [s for batch in storage.iter_sessions(start=first - DAY_S, end=last + DAY_S) for s in batch]
    shares = read_shares(reads, ev_intervals(sessions, tariff))
    counts: dict[str, tuple[int, int]] = {}
    for read in reads:
        if start <= read.start < end:
            n, corrected = counts.get(read.day, (0, 0))
            counts[read.day] = (n + 1, corrected + (read.revision > 0))
    days = []
    for text in sorted(counts):
        lo, hi = day_bounds(date.fromisoformat(text), zone)
        days.append((text, *counts[text], reconcile(text, lo, hi, shares, tariff, tolerance)))
    bill_rows = tuple((b, reconcile(b.bill_date, b.start, b.end, shares, tariff, tolerance)) for b in bills)
    hints = [r.hint for *_, r in days[-7:]] + [r.hint for _, r in bill_rows if not _.estimated]
    hints.append(fixed_charges_hint(bills, tariff, tolerance))
    return MeterOverview(tuple(days), bill_rows, tuple(dict.fromkeys(h for h in hints if h)))
