"""What the meter component knows, as one frozen view rendered by the collector and served by the API.
Built from storage (so it survives restarts) plus the login state of the last attempt."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from billing.tariff import Tariff
from meter.reconcile import Reconciliation, ev_intervals, fixed_charges_hint, read_shares, reconcile
from session_store.meter_records import Bill, StoredRead

LOGIN_STATES = ("ok", "expired", "not_set_up", "unknown")


@dataclass(frozen=True)
class Period:
    """Energy and the utility's cost over a named period (None: no reads in it yet)."""

    name: str
    start: float
    end: float
    kwh: float | None
    cost: float | None
    reads: int


@dataclass(frozen=True)
class MeterView:
    utility: str
    zone: ZoneInfo
    login: str
    newest_read_end: float | None
    reads: int
    corrections: int
    pending_publication: int
    periods: tuple[Period, ...]
    reconciliations: tuple[Reconciliation, ...]
    bills: tuple[Bill, ...]
    hints: tuple[str, ...]


def _midnight(day: date, zone: ZoneInfo) -> float:
    return datetime.combine(day, datetime.min.time(), zone).timestamp()


def day_bounds(day: date, zone: ZoneInfo) -> tuple[float, float]:
    return _midnight(day, zone), _midnight(day + timedelta(days=1), zone)


def complete_days(reads: Sequence[StoredRead], zone: ZoneInfo) -> list[date]:
    """Local days whose reads cover the whole day (23, 24 or 25 hours)."""
    covered: dict[str, float] = {}
    for read in reads:
        covered[read.day] = covered.get(read.day, 0.0) + (read.end - read.start)
    days = []
    for text, seconds in covered.items():
        day = date.fromisoformat(text)
        start, end = day_bounds(day, zone)
        if seconds >= end - start - 1:
            days.append(day)
    return sorted(days)


def _period(name: str, start: float, end: float, reads: Sequence[StoredRead]) -> Period:
    inside = [r for r in reads if start <= r.start < end]
    if not inside:
        return Period(name, start, end, None, None, 0)
    cost = None if any(r.cost is None for r in inside) else sum(r.cost or 0.0 for r in inside)
    return Period(name, start, end, sum(r.kwh for r in inside), cost, len(inside))


def build_view(utility: str, login: str, now: float, reads: Sequence[StoredRead], sessions: Sequence, bills: Sequence[Bill],
               tariff: Tariff, tolerance: float, corrections: int, pending: int, total_reads: int) -> MeterView:
    """Periods relative to `now` (today, yesterday, month to date) and to the data (the newest complete
    day, the last issued bill), each reconciled against the sessions."""
    zone = tariff.zone
    today = datetime.fromtimestamp(now, zone).date()
    month_start = _midnight(today.replace(day=1), zone)
    periods = [_period("today", *day_bounds(today, zone), reads),
               _period("yesterday", *day_bounds(today - timedelta(days=1), zone), reads),
               _period("month_to_date", month_start, now, reads)]
    shares = read_shares(reads, ev_intervals(sessions, tariff))
    recs: list[Reconciliation] = []
    full = complete_days(reads, zone)
    if full:
        start, end = day_bounds(full[-1], zone)
        periods.append(_period("last_complete_day", start, end, reads))
        recs.append(reconcile("last_complete_day", start, end, shares, tariff, tolerance))
    recs.append(reconcile("month_to_date", month_start, now, shares, tariff, tolerance))
    issued = [b for b in bills if not b.estimated]
    if issued:
        last = issued[-1]
        recs.append(reconcile("last_bill", last.start, last.end, shares, tariff, tolerance))
    hints = tuple(dict.fromkeys(h for h in [r.hint for r in recs] + [fixed_charges_hint(issued, tariff, tolerance)] if h))
    newest = max((r.end for r in reads), default=None)
    return MeterView(utility, zone, login, newest, total_reads, corrections, pending, tuple(periods), tuple(recs),
                     tuple(bills[-13:]), hints)
