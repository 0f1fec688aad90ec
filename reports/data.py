"""A report's inputs read from the session store's database (sessions, their per-day bill shares, the
smart-charging log, the planner's outcomes, the utility's meter data), then `build_report`."""
from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

from billing.tariff import Tariff
from meter.reconcile import ev_intervals, read_shares, reconcile
from reports.model import MAX_PAUSE_S, DayTotal, Period, Report, build_report, month_bounds, parse_period
from session_store.storage import Storage

EDGE_S = 3600.0            # a session's last billed hour may end just after the period's last session ends
LOG_LIMIT = 1_000_000      # Storage reads the action log and plan outcomes newest first, with a limit


def open_read_only(path: str | Path, zone: ZoneInfo) -> Storage:
    """The session store's database, read-only; a clear error when there is none."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no session database at {path}")
    return Storage.open_read_only(path, zone)


def day_totals(storage: Storage, period: Period) -> list[DayTotal]:
    return [DayTotal(r["day"], int(r["sessions"]), r["energy_wh"], r["supply_cost"], r["delivery_cost"],
                     r["reference_cost"], bool(r["final"]))
            for r in storage.day_totals(start=period.start, end=period.end)]


def load_report(storage: Storage, tariff: Tariff, period: str | Period, zone: ZoneInfo,
                prices: Mapping[float, float] | None = None, *, prices_note: str | None = None,
                tolerance: float = 0.02, as_of: float | None = None) -> Report:
    """The report of `period` (a month 2026-10 or a year 2026, local calendar in `zone`). `prices`: billed
    hourly prices {hour end: cents}, None when unknown (`prices_note` says why). `as_of` (default now): months
    not begun by then carry no monthly charges."""
    if isinstance(period, str):
        period = parse_period(period, zone)
    sessions = [s for batch in storage.iter_sessions(start=period.start - EDGE_S, end=period.end + EDGE_S)
                for s in batch]
    reads = storage.meter_reads(period.start, period.end)
    reconciliations = []
    if reads:
        shares = read_shares(reads, ev_intervals(sessions, tariff))
        for month in period.months:
            start, end = month_bounds(month, zone)
            reconciliations.append(reconcile(month, start, end, shares, tariff, tolerance))
    actions = [a for a in storage.actions(limit=LOG_LIMIT)
               if period.start - MAX_PAUSE_S <= a.t < period.end]
    outcomes = [o for o in storage.plan_outcomes(limit=LOG_LIMIT) if period.start <= o.departure < period.end]
    return build_report(period, sessions, day_totals(storage, period),
                        storage.meter_days(period.first_day, period.last_day), storage.meter_bills(period.start, period.end),
                        reconciliations, tariff, actions, outcomes, prices, prices_note=prices_note,
                        as_of=time.time() if as_of is None else as_of, zone=zone,
                        charges=storage.vehicle_charges(start=period.start, end=period.end))
