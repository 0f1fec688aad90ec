"""Every figure a charging report shows, computed once from plain records (pure: no I/O, no clock).

The HTML, the PDF, the JSON and the CLI's summary all render the `Report` built here, so they cannot
disagree. Money is dollars, energy kWh, prices cents per kWh.

- Totals are the bill's money: each local day's share of the sessions' bills (supply + delivery; a
  session crossing midnight or a month boundary counts in each day by its bill lines, as the session
  store keeps them) plus the monthly charges (fixed, capacity) of each month of the period that has
  begun. Sessions are counted on their first day.
- Savings against the fixed rate follow billing/tariff.py: the sessions' `reference_cost - full_cost`
  (supply only: delivery is the same on both rates) minus the capacity charge, which a fixed-price
  customer pays inside the supply price.
- What smart charging and the planner saved: each plug-in they paused (a `stop` sent, not simulated)
  priced as if charged at once from plug-in at the session's peak power, at the billed hourly prices,
  against what it cost.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from billing.tariff import INTERVAL_S, Tariff, local_day
from meter.reconcile import Reconciliation
from session_store.meter_records import Bill, MeterDay
from session_store.records import ActionRecord, PlanOutcome, Session, VehicleChargeRecord

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LONG_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")
RANKED = 5                   # best and worst sessions shown
MIN_RANKED_WH = 1000.0       # below 1 kWh an all-in price per kWh says little (a top-up's delivery rounding)
MAX_PAUSE_S = 24 * 3600.0    # sessions of one car on one unit this close, a stop between them, are one plug-in
STOP_SLACK_S = 600.0         # a stop this long before a session's recorded end still paused it (samples lag)
NO_PRICES = "needs price history (no hourly billed prices were given)"


class BadPeriod(ValueError):
    """Not a month (YYYY-MM) or a year (YYYY)."""


@dataclass(frozen=True)
class Period:
    label: str                    # 2026-10 or 2026
    kind: str                     # month or year
    title: str                    # October 2026 or 2026
    start: float                  # local midnight of the first day, Unix seconds
    end: float                    # local midnight after the last day
    first_day: str
    last_day: str
    months: tuple[str, ...]       # YYYY-MM of every month in the period


def parse_period(text: str, zone: ZoneInfo) -> Period:
    """'2026-10' (a month) or '2026' (a year), as local calendar days in `zone`."""
    text = str(text).strip()
    month = re.fullmatch(r"(\d{4})-(\d{2})", text)
    year = re.fullmatch(r"(\d{4})", text)
    if not (month or year) or not 1970 <= int(text[:4]) <= 9998 or (month and not 1 <= int(month.group(2)) <= 12):
        raise BadPeriod(f"period: expected a month YYYY-MM (2026-10) or a year YYYY (2026), got {text[:40]!r}")
    y = int(text[:4])
    if month:
        m = int(month.group(2))
        first, after = date(y, m, 1), date(y + (m == 12), m % 12 + 1, 1)
        months, kind, title = (f"{y}-{m:02d}",), "month", f"{LONG_MONTHS[m - 1]} {y}"
    else:
        first, after = date(y, 1, 1), date(y + 1, 1, 1)
        months, kind, title = tuple(f"{y}-{m:02d}" for m in range(1, 13)), "year", str(y)

    def midnight(day: date) -> float:
        return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()

    return Period(text, kind, title, midnight(first), midnight(after), first.isoformat(),
                  (after - timedelta(days=1)).isoformat(), months)


def month_bounds(month: str, zone: ZoneInfo) -> tuple[float, float]:
    """[start, end) of a YYYY-MM month in local time."""
    period = parse_period(month, zone)
    return period.start, period.end


# --- inputs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DayTotal:
    """One local day of the sessions' bills, as `Storage.day_totals` keeps it."""

    day: str
    sessions: int                 # sessions whose first day this is
    energy_wh: float
    supply: float
    delivery: float
    reference: float | None       # the same energy on the fixed-price rate, same delivery
    final: bool


@dataclass(frozen=True)
class DayShare:
    energy_wh: float
    supply: float
    delivery: float
    reference: float | None


def session_days(session: Session, zone: ZoneInfo) -> dict[str, DayShare]:
    """The session's bill split by the local day each billed hour starts in (the session store's rule:
    a session without bill lines counts whole on its start day)."""
    has_reference = session.reference_cost is not None
    per_wh = ((session.reference_cost or 0.0) - session.delivery_cost) / session.energy_wh \
        if has_reference and session.energy_wh > 0 else 0.0
    rows = [(line.end - 1, line.energy_wh, line.supply, line.delivery) for line in session.bill_lines] or \
           [(session.start, session.energy_wh, session.supply_cost, session.delivery_cost)]
    sums: dict[str, list[float]] = {}
    for moment, energy, supply, delivery in rows:
        acc = sums.setdefault(local_day(moment, zone).isoformat(), [0.0, 0.0, 0.0, 0.0])
        acc[0] += energy
        acc[1] += supply
        acc[2] += delivery
        acc[3] += energy * per_wh + delivery
    return {day: DayShare(e, s, d, r if has_reference else None) for day, (e, s, d, r) in sorted(sums.items())}


def days_from_sessions(sessions: Iterable[Session], zone: ZoneInfo) -> list[DayTotal]:
    """What `Storage.day_totals` returns for these sessions (tests, and reports built without storage)."""
    acc: dict[str, list[Any]] = {}
    for session in sessions:
        shares = session_days(session, zone)
        first = min(shares)
        for day, share in shares.items():
            row = acc.setdefault(day, [0, 0.0, 0.0, 0.0, None, True])
            row[0] += day == first
            row[1] += share.energy_wh
            row[2] += share.supply
            row[3] += share.delivery
            if share.reference is not None:
                row[4] = (row[4] or 0.0) + share.reference
            row[5] = row[5] and session.cost_final
    return [DayTotal(day, *values) for day, values in sorted(acc.items())]


# --- the report's parts ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Totals:
    sessions: int
    energy_kwh: float
    supply: float
    delivery: float
    charging: float               # supply + delivery
    fixed: float
    capacity: float
    total: float                  # the bill's money: charging + fixed + capacity
    months_charged: int
    charging_cents_per_kwh: float | None
    total_cents_per_kwh: float | None
    final: bool                   # no day holds a provisional cost


@dataclass(frozen=True)
class Bar:
    key: str                      # 2026-10-03 (month report) or 2026-10 (year report)
    label: str                    # 3 or Oct
    sessions: int
    energy_kwh: float
    supply: float
    delivery: float
    cost: float                   # supply + delivery
    home_kwh: float | None        # the home's meter, when the utility's data covers it


@dataclass(frozen=True)
class CostPart:
    name: str
    dollars: float


@dataclass(frozen=True)
class DayPrice:
    day: str
    mean_cents: float             # mean of the day's billed hourly prices
    hours: int


@dataclass(frozen=True)
class SessionMark:
    start: float
    vehicle: str
    energy_kwh: float
    supply_cents: float | None    # the session's supply cost over its energy


@dataclass(frozen=True)
class PriceTrend:
    available: bool
    note: str
    days: tuple[DayPrice, ...]
    sessions: tuple[SessionMark, ...]
    mean_cents: float | None      # every billed hour of the period weighted once
    paid_supply_cents: float | None   # what the charging paid for supply, per kWh


@dataclass(frozen=True)
class GroupRow:
    name: str
    sessions: int
    energy_kwh: float
    cost: float
    cents_per_kwh: float | None


@dataclass(frozen=True)
class SessionRow:
    id: int | None
    start: float
    start_text: str
    vehicle: str
    unit: str
    energy_kwh: float
    cost: float
    cents_per_kwh: float
    final: bool


@dataclass(frozen=True)
class FixedRate:
    available: bool
    note: str
    reference_supply_cents: float | None
    reference_bill: float | None      # the fixed-price customer's bill: reference + delivery + fixed, no capacity
    sessions_savings: float | None    # sum of reference_cost - full_cost
    capacity_difference: float        # minus the capacity charges of the months charged
    savings: float | None


@dataclass(frozen=True)
class Shifted:
    """One plug-in that smart charging or the planner paused, against charging it at once."""

    vehicle: str
    unit: str
    plug_in: float
    plug_in_text: str
    sessions: int
    energy_kwh: float
    actual: float
    charge_now: float | None      # None: an hour it would have charged in has no billed price
    saved: float | None
    by: str                       # smart charging or planner


@dataclass(frozen=True)
class PlanSummary:
    departures: int
    met: int
    planned_cost: float           # the first plans' expected cost, where known
    cost: float                   # what those departures' charging cost


@dataclass(frozen=True)
class SmartSavings:
    available: bool
    note: str
    shifted: tuple[Shifted, ...]
    smart_charging: float
    planner: float
    total: float
    unpriced: int
    simulated_stops: int          # dry run: decisions that paused nothing
    plans: PlanSummary


@dataclass(frozen=True)
class ShareRow:
    label: str
    reads: int
    home_kwh: float
    ev_kwh: float
    share: float | None
    home_cost: float | None
    ev_cost_utility: float | None
    ev_cost_computed: float
    discrepancy: float | None


@dataclass(frozen=True)
class BillRow:
    first_day: str
    last_day: str
    bill_date: str
    kwh: float
    amount: float
    estimated: bool


@dataclass(frozen=True)
class EvShare:
    available: bool
    note: str
    home_kwh: float
    ev_kwh: float
    share: float | None
    home_cost: float | None       # the utility's cost of the home's energy (reads)
    ev_cost_utility: float | None
    ev_cost_computed: float
    discrepancy: float | None     # ours over the utility's, minus 1
    meter_days: int
    corrected_reads: int
    rows: tuple[ShareRow, ...]
    bills: tuple[BillRow, ...]
    hints: tuple[str, ...]


@dataclass(frozen=True)
class AwayRow:
    start_text: str
    vehicle: str
    location: str
    supercharger: bool
    energy_kwh: float | None      # added to the battery
    cost: float | None            # Tessie's figure: what the operator charged


@dataclass(frozen=True)
class Away:
    """Charging away from home, from the cars' own charge history (not on the home's bill)."""

    charges: int
    energy_kwh: float
    cost: float
    rows: tuple[AwayRow, ...]
    efficiency: float | None      # home charging: energy added over wall energy, over the matched charges


@dataclass(frozen=True)
class Report:
    period: Period
    zone: str
    totals: Totals
    bar_unit: str                 # day or month
    bars: tuple[Bar, ...]
    breakdown: tuple[CostPart, ...]
    price_trend: PriceTrend
    vehicles: tuple[GroupRow, ...]
    units: tuple[GroupRow, ...]
    best: tuple[SessionRow, ...]
    worst: tuple[SessionRow, ...]
    fixed_rate: FixedRate
    smart: SmartSavings
    ev_share: EvShare
    notes: tuple[str, ...]
    away: Away = Away(0, 0.0, 0.0, (), None)


# --- building -------------------------------------------------------------------------------------

def _per_kwh(dollars: float, kwh: float) -> float | None:
    return dollars / kwh * 100.0 if kwh > 1e-9 else None


def _name(session: Session) -> str:
    return session.vehicle or session.vin or "unknown vehicle"


def _when(moment: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(moment, zone).strftime("%Y-%m-%d %H:%M")


def months_charged(period: Period, zone: ZoneInfo, as_of: float | None) -> int:
    """Months of the period that have begun by `as_of` (all of them without it): each carries the
    monthly charges on the bill."""
    if as_of is None:
        return len(period.months)
    return sum(month_bounds(month, zone)[0] <= as_of for month in period.months)


def _totals(days: Sequence[DayTotal], tariff: Tariff, months: int) -> Totals:
    kwh = sum(d.energy_wh for d in days) / 1000.0
    supply, delivery = sum(d.supply for d in days), sum(d.delivery for d in days)
    fixed, capacity = tariff.monthly_fixed * months, tariff.capacity_per_month * months
    charging = supply + delivery
    total = charging + fixed + capacity
    return Totals(sum(d.sessions for d in days), kwh, supply, delivery, charging, fixed, capacity, total, months,
                  _per_kwh(charging, kwh), _per_kwh(total, kwh), all(d.final for d in days))


def _bars(period: Period, days: Sequence[DayTotal], meter_days: Sequence[MeterDay]) -> tuple[Bar, ...]:
    by_day = {d.day: d for d in days}
    home = {m.day: m.kwh for m in meter_days}
    first, last = date.fromisoformat(period.first_day), date.fromisoformat(period.last_day)
    keys: list[tuple[str, str, list[str]]] = []
    if period.kind == "month":
        day = first
        while day <= last:
            keys.append((day.isoformat(), str(day.day), [day.isoformat()]))
            day += timedelta(days=1)
    else:
        for index, month in enumerate(period.months):
            members = []
            day = date.fromisoformat(month + "-01")
            while day.month == index + 1 and day <= last:
                members.append(day.isoformat())
                day += timedelta(days=1)
            keys.append((month, MONTH_NAMES[index], members))
    bars = []
    for key, label, members in keys:
        rows = [by_day[d] for d in members if d in by_day]
        supply, delivery = sum(r.supply for r in rows), sum(r.delivery for r in rows)
        homes = [home[d] for d in members if d in home]
        bars.append(Bar(key, label, sum(r.sessions for r in rows), sum(r.energy_wh for r in rows) / 1000.0,
                        supply, delivery, supply + delivery, sum(homes) if homes else None))
    return tuple(bars)


@dataclass(frozen=True)
class _InPeriod:
    session: Session
    energy_wh: float
    supply: float
    delivery: float
    reference: float | None
    started: bool                 # its first day is in the period: counted here


def _in_period(sessions: Iterable[Session], period: Period, zone: ZoneInfo) -> list[_InPeriod]:
    out = []
    for session in sessions:
        shares = session_days(session, zone)
        inside = [s for day, s in shares.items() if period.first_day <= day <= period.last_day]
        if not inside:
            continue
        refs = [s.reference for s in inside]
        out.append(_InPeriod(session, sum(s.energy_wh for s in inside), sum(s.supply for s in inside),
                             sum(s.delivery for s in inside), None if None in refs else sum(refs),   # type: ignore[arg-type]
                             period.first_day <= min(shares) <= period.last_day))
    return out


def _groups(parts: Sequence[_InPeriod], key: Any) -> tuple[GroupRow, ...]:
    acc: dict[str, list[float]] = {}
    for part in parts:
        row = acc.setdefault(key(part.session), [0, 0.0, 0.0])
        row[0] += part.started
        row[1] += part.energy_wh / 1000.0
        row[2] += part.supply + part.delivery
    rows = [GroupRow(name, int(n), kwh, cost, _per_kwh(cost, kwh)) for name, (n, kwh, cost) in acc.items()]
    return tuple(sorted(rows, key=lambda r: (-r.energy_kwh, r.name)))


def _ranked(parts: Sequence[_InPeriod], zone: ZoneInfo) -> tuple[tuple[SessionRow, ...], tuple[SessionRow, ...]]:
    rows = [SessionRow(p.session.id, p.session.start, _when(p.session.start, zone), _name(p.session), p.session.unit,
                       p.session.energy_wh / 1000.0, p.session.full_cost, p.session.effective_price_cents or 0.0,
                       p.session.cost_final)
            for p in parts if p.started and p.session.energy_wh >= MIN_RANKED_WH]
    best = sorted(rows, key=lambda r: (r.cents_per_kwh, r.start))[:RANKED]
    worst = sorted(rows, key=lambda r: (-r.cents_per_kwh, r.start))[:RANKED]
    return tuple(best), tuple(worst)


def _price_trend(period: Period, parts: Sequence[_InPeriod], hourly_prices: Mapping[float, float] | None,
                 zone: ZoneInfo, note: str | None) -> PriceTrend:
    marks = tuple(SessionMark(p.session.start, _name(p.session), p.session.energy_wh / 1000.0,
                              p.session.supply_price_cents) for p in parts if p.started)
    kwh = sum(p.energy_wh for p in parts) / 1000.0
    paid = _per_kwh(sum(p.supply for p in parts), kwh)
    if hourly_prices is None:
        return PriceTrend(False, note or NO_PRICES, (), marks, None, paid)
    per_day: dict[str, list[float]] = {}
    for end, cents in hourly_prices.items():
        day = local_day(end - 1, zone).isoformat()
        if period.first_day <= day <= period.last_day and math.isfinite(cents):
            per_day.setdefault(day, []).append(cents)
    days = tuple(DayPrice(day, sum(v) / len(v), len(v)) for day, v in sorted(per_day.items()))
    hours = [c for v in per_day.values() for c in v]
    if not hours:
        return PriceTrend(False, "no billed hourly prices for this period (older than Prometheus's retention?)",
                          (), marks, None, paid)
    return PriceTrend(True, "", days, marks, sum(hours) / len(hours), paid)


def _fixed_rate(parts: Sequence[_InPeriod], tariff: Tariff, totals: Totals) -> FixedRate:
    capacity = -totals.capacity
    if tariff.reference_supply_per_kwh is None:
        return FixedRate(False, "no reference price configured (tariff.reference_supply_cents_per_kwh is 0)",
                         None, None, None, capacity, None)
    with_ref = [p for p in parts if p.reference is not None]
    sessions = sum((p.reference or 0.0) - p.supply - p.delivery for p in with_ref)
    savings = sessions + capacity
    missing = len(parts) - len(with_ref)
    note = (f"{missing} session(s) stored without a reference cost are left out" if missing else "")
    return FixedRate(True, note, tariff.reference_supply_per_kwh * 100.0, totals.total + savings, sessions,
                     capacity, savings)


def _charge_now(plug_in: float, energy_wh: float, power_w: float, delivery_per_kwh: float,
                hourly_prices: Mapping[float, float], tariff: Tariff) -> float | None:
    """The energy drawn at once from plug-in at `power_w`, in 5-minute intervals, each billed hour at its
    billed price, plus delivery at the session's own rate per kWh."""
    if power_w <= 0 or energy_wh <= 0:
        return 0.0
    per_hour: dict[float, float] = {}
    left, t = energy_wh, plug_in
    while left > 1e-9:
        end = math.floor(t / INTERVAL_S) * INTERVAL_S + INTERVAL_S
        take = min(left, power_w * (end - t) / 3600.0)
        hour = tariff.period_end(end)
        per_hour[hour] = per_hour.get(hour, 0.0) + take
        left -= take
        t = end
    supply = 0.0
    for hour, wh in per_hour.items():
        cents = hourly_prices.get(hour)
        if cents is None:
            return None
        supply += wh / 1000.0 * cents / 100.0
    return supply + energy_wh / 1000.0 * delivery_per_kwh


def shifted_plug_ins(sessions: Sequence[Session], actions: Sequence[ActionRecord], zone: ZoneInfo,
                     tariff: Tariff, hourly_prices: Mapping[float, float] | None) -> list[Shifted]:
    """Plug-ins that a sent `stop` paused: a pause longer than the session store's grace period splits a
    charge into sessions, so the sessions of one car on one unit with a stop between them (at most a day
    apart) are one plug-in, which began at its first session or at a stop before it (paused on arrival)."""
    stops: dict[str, list[ActionRecord]] = {}
    for action in actions:
        if action.action == "stop" and action.outcome == "sent":
            stops.setdefault(action.vin, []).append(action)
    by_vin: dict[str, list[Session]] = {}
    for session in sessions:
        if session.vin in stops:
            by_vin.setdefault(session.vin, []).append(session)   # type: ignore[index]
    out = []
    for vin, runs in by_vin.items():
        times = sorted(stops[vin], key=lambda a: a.t)
        chains: list[list[Session]] = []
        for session in sorted(runs, key=lambda s: s.start):
            last = chains[-1][-1] if chains else None
            if (last is not None and last.unit == session.unit and session.start - last.end <= MAX_PAUSE_S
                    and any(last.end - STOP_SLACK_S <= a.t <= session.start for a in times)):
                chains[-1].append(session)
            else:
                chains.append([session])
        previous_end = -math.inf
        for chain in chains:
            low = max(previous_end, chain[0].start - MAX_PAUSE_S)
            mine = [a for a in times if low < a.t <= chain[-1].end]
            previous_end = chain[-1].end
            if not mine:
                continue
            plug_in = min(chain[0].start, mine[0].t)
            energy = sum(s.energy_wh for s in chain)
            actual = sum(s.full_cost for s in chain)
            delivery = sum(s.delivery_cost for s in chain) / energy * 1000.0 if energy > 0 else 0.0
            now = None if hourly_prices is None else _charge_now(
                plug_in, energy, max(s.peak_w for s in chain), delivery, hourly_prices, tariff)
            by = "planner" if any(a.reason.startswith("plan") for a in mine) else "smart charging"
            out.append(Shifted(_name(chain[0]), chain[0].unit, plug_in, _when(plug_in, zone), len(chain),
                               energy / 1000.0, actual, now, None if now is None else now - actual, by))
    return sorted(out, key=lambda s: s.plug_in)


def _smart(parts: Sequence[_InPeriod], actions: Sequence[ActionRecord], outcomes: Sequence[PlanOutcome],
           period: Period, zone: ZoneInfo, tariff: Tariff, hourly_prices: Mapping[float, float] | None,
           note: str | None) -> SmartSavings:
    started = [p.session for p in parts if p.started]
    shifted = tuple(shifted_plug_ins(started, actions, zone, tariff, hourly_prices))
    simulated = sum(1 for a in actions if a.action == "stop_simulated" and period.start <= a.t < period.end)
    mine = [o for o in outcomes if period.start <= o.departure < period.end]
    plans = PlanSummary(len(mine), sum(o.met for o in mine), sum(o.planned_cost or 0.0 for o in mine),
                        sum(o.cost for o in mine))
    priced = [s for s in shifted if s.saved is not None]
    smart = sum(s.saved for s in priced if s.by == "smart charging")   # type: ignore[misc]
    planner = sum(s.saved for s in priced if s.by == "planner")        # type: ignore[misc]
    unpriced = len(shifted) - len(priced)
    if hourly_prices is None:
        available, text = False, note or NO_PRICES
    else:
        available = True
        parts_text = []
        if not shifted:
            parts_text.append("smart charging and the planner paused no charging in this period")
        if unpriced:
            parts_text.append(f"{unpriced} paused plug-in(s) left out: an hour they would have charged in has "
                              "no billed price (older than Prometheus's retention?)")
        text = "; ".join(parts_text)
    if simulated:
        dry = (f"{simulated} stop(s) were dry run (simulated): nothing was paused, so they saved nothing on the "
               "bill")
        text = f"{text}; {dry}" if text else dry
    return SmartSavings(available, text, shifted, smart, planner, smart + planner, unpriced, simulated, plans)


def _ev_share(reconciliations: Sequence[Reconciliation], meter_days: Sequence[MeterDay], bills: Sequence[Bill],
              zone: ZoneInfo) -> EvShare:
    reads = sum(r.reads for r in reconciliations)
    bill_rows = tuple(BillRow(local_day(b.start, zone).isoformat(), local_day(b.end - 1, zone).isoformat(),
                              b.bill_date, b.kwh, b.amount, b.estimated) for b in bills)
    if not reads and not meter_days:
        return EvShare(False, "No meter data from the utility for this period: the EV share of the home's bill "
                       "is left out.", 0.0, 0.0, None, None, None, 0.0, None, 0, 0, (), bill_rows, ())
    rows = tuple(ShareRow(r.label, r.reads, r.home_kwh, r.ev_kwh, r.ev_share, r.home_cost, r.ev_cost_utility,
                          r.ev_cost_computed, r.discrepancy) for r in reconciliations if r.reads)
    home = sum(r.home_kwh for r in rows)
    ev = sum(r.ev_kwh for r in rows)
    known = bool(rows) and all(r.home_cost is not None for r in rows)
    home_cost = sum(r.home_cost or 0.0 for r in rows) if known else None
    utility = sum(r.ev_cost_utility or 0.0 for r in rows) if known else None
    computed = sum(r.ev_cost_computed for r in rows)
    discrepancy = computed / utility - 1.0 if utility is not None and abs(utility) > 1e-9 else None
    note = "" if known else "the utility gave usage without cost for some reads: its EV cost is left out"
    return EvShare(True, note, home, ev, ev / home if home > 0 else None, home_cost, utility, computed, discrepancy,
                   len(meter_days), sum(m.corrected for m in meter_days), rows, bill_rows,
                   tuple(dict.fromkeys(r.hint for r in reconciliations if r.hint)))


def build_report(period: Period, sessions: Sequence[Session], days: Sequence[DayTotal],
                 meter_days: Sequence[MeterDay], bills: Sequence[Bill], reconciliations: Sequence[Reconciliation],
                 tariff: Tariff, actions: Sequence[ActionRecord] = (), outcomes: Sequence[PlanOutcome] = (),
                 hourly_prices: Mapping[float, float] | None = None, *, prices_note: str | None = None,
                 as_of: float | None = None, zone: ZoneInfo | None = None,
                 charges: Sequence[VehicleChargeRecord] = ()) -> Report:
    """The report of `period`. `sessions`: every session overlapping it (each counted by its day shares);
    `days`: the per-day bill shares (`Storage.day_totals`); `reconciliations`: the meter against the
    sessions, one per month; `hourly_prices`: billed hourly prices {hour end: cents}, None when unknown
    (`prices_note` says why); `as_of`: months not begun by then carry no monthly charges; `zone`: the local
    days (general.timezone, as the session store keeps them; default the tariff's); `charges`: the cars' own
    charge history (away charging, not on the bill, is reported beside it)."""
    zone = zone or tariff.zone
    days = [d for d in days if period.first_day <= d.day <= period.last_day]
    meter_days = [m for m in meter_days if period.first_day <= m.day <= period.last_day]
    totals = _totals(days, tariff, months_charged(period, zone, as_of))
    parts = _in_period(sessions, period, zone)
    best, worst = _ranked(parts, zone)
    notes = []
    provisional = sum(not d.final for d in days)
    if provisional:
        notes.append(f"{provisional} day(s) hold provisional costs: hours whose prices were not all published when "
                     "the sessions were last priced")
    return Report(
        period=period, zone=zone.key, totals=totals, bar_unit="day" if period.kind == "month" else "month",
        bars=_bars(period, days, meter_days),
        breakdown=(CostPart("supply", totals.supply), CostPart("delivery", totals.delivery),
                   CostPart("fixed", totals.fixed), CostPart("capacity", totals.capacity)),
        price_trend=_price_trend(period, parts, hourly_prices, zone, prices_note),
        vehicles=_groups(parts, _name), units=_groups(parts, lambda s: s.unit), best=best, worst=worst,
        fixed_rate=_fixed_rate(parts, tariff, totals),
        smart=_smart(parts, actions, outcomes, period, zone, tariff, hourly_prices, prices_note),
        ev_share=_ev_share(reconciliations, meter_days, bills, zone), notes=tuple(notes),
        away=_away(charges, period, zone))


def _away(charges: Sequence[VehicleChargeRecord], period: Period, zone: ZoneInfo) -> Away:
    """The period's away charges (by start), and the home charging efficiency of its matched ones."""
    inside = sorted((c for c in charges if period.start <= c.start < period.end), key=lambda c: c.start)
    away = [c for c in inside if c.away]
    matched = [c for c in inside if not c.away and c.efficiency is not None and c.wall_energy_wh]
    added = sum(c.energy_added_wh or 0.0 for c in matched)
    wall = sum({c.session_id: c.wall_energy_wh or 0.0 for c in matched}.values())
    return Away(len(away), sum(c.energy_added_wh or 0.0 for c in away) / 1000.0, sum(c.cost or 0.0 for c in away),
                tuple(AwayRow(_when(c.start, zone), c.vehicle, c.location, c.supercharger,
                              None if c.energy_added_wh is None else c.energy_added_wh / 1000.0, c.cost)
                      for c in away),
                added / wall if wall > 0 else None)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def report_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data: floats at full precision (they format exactly as the HTML and PDF show
    them, which rounding twice would not), no NaN."""
    return _clean(asdict(report))
