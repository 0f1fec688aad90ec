"""The utility's meter against our sessions, per read, per local day and per bill (pure).

- EV energy of a read: the sessions' energy in the 5-minute intervals inside it (scaled to the energy of
  record when Fleet's meter corrected a session); its share of the home's metered energy.
- The utility's cost of that EV energy: the read's cost times the EV share of the read. Within a read the
  utility bills one hour's price (ComEd: the hour's mean) and one delivery rate, so the share is exact.
- Our cost of it: each session's bill lines (the tariff) spread over the line's intervals by energy.
- A discrepancy beyond the tolerance comes with the setting to tune: the delivery rate the bill implies
  (the utility's EV cost less our supply cost), and the fixed charges a bill shows beyond its usage.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from billing.tariff import Tariff
from session_store.meter_records import Bill, MeterRead
from session_store.records import Session

INTERVAL_S = 300.0


@dataclass(frozen=True)
class EvEnergy:
    """The EV's energy in one 5-minute interval, and what our tariff charged for it."""

    kwh: float
    supply: float
    delivery: float


@dataclass(frozen=True)
class ReadShare:
    """One read with the EV's part of it."""

    start: float
    end: float
    home_kwh: float
    home_cost: float | None
    ev_kwh: float
    ev_cost_computed: float
    ev_supply_computed: float
    ev_cost_utility: float | None


@dataclass(frozen=True)
class Reconciliation:
    """A period (a day, a bill, a month): the home, the EV, both costs, and what to tune."""

    label: str
    start: float
    end: float
    reads: int
    home_kwh: float
    home_cost: float | None
    ev_kwh: float
    ev_cost_computed: float
    ev_cost_utility: float | None
    implied_delivery_per_kwh: float | None
    applied_delivery_per_kwh: float | None
    hint: str

    @property
    def ev_share(self) -> float | None:
        return self.ev_kwh / self.home_kwh if self.home_kwh > 0 else None

    @property
    def non_ev_kwh(self) -> float:
        return self.home_kwh - self.ev_kwh

    @property
    def discrepancy(self) -> float | None:
        """Our EV cost over the utility's, minus 1 (0.03 = we compute 3 % more)."""
        if self.ev_cost_utility is None or abs(self.ev_cost_utility) < 1e-9:
            return None
        return self.ev_cost_computed / self.ev_cost_utility - 1.0


def ev_intervals(sessions: Iterable[Session], tariff: Tariff) -> dict[float, EvEnergy]:
    """EV energy and our cost per 5-minute interval end, summed over sessions."""
    out: dict[float, EvEnergy] = {}
    for session in sessions:
        scale = session.energy_of_record_wh / session.energy_wh if session.energy_wh > 0 else 1.0
        lines = {line.end: line for line in session.bill_lines}
        for end, wh in session.intervals.items():
            kwh = wh * scale / 1000.0
            line = lines.get(tariff.period_end(end))
            supply = delivery = 0.0
            if line is not None and line.energy_wh > 0:
                supply = kwh * line.price_cents / 100.0
                delivery = kwh * line.delivery / (line.energy_wh / 1000.0)
            known = out.get(end)
            out[end] = EvEnergy(kwh, supply, delivery) if known is None else EvEnergy(
                known.kwh + kwh, known.supply + supply, known.delivery + delivery)
    return out


def read_shares(reads: Sequence[MeterRead], ev: Mapping[float, EvEnergy]) -> list[ReadShare]:
    """Each read with the EV intervals ending inside (start, end]."""
    ends = sorted(ev)
    shares = []
    i = 0
    for read in sorted(reads, key=lambda r: r.start):
        while i < len(ends) and ends[i] <= read.start:
            i += 1
        j = i
        kwh = supply = delivery = 0.0
        while j < len(ends) and ends[j] <= read.end:
            part = ev[ends[j]]
            kwh, supply, delivery = kwh + part.kwh, supply + part.supply, delivery + part.delivery
            j += 1
        utility = None
        if read.cost is not None:
            utility = read.cost * min(kwh / read.kwh, 1.0) if read.kwh > 0 else 0.0
        shares.append(ReadShare(read.start, read.end, read.kwh, read.cost, kwh, supply + delivery, supply, utility))
    return shares


def _delivery_hint(implied: float | None, applied: float | None, tariff: Tariff) -> str:
    if implied is None or applied is None:
        return ""
    key = "tariff.delivery_periods" if tariff.delivery_periods else "tariff.delivery_cents_per_kwh"
    return (f"{key}: the utility's cost implies delivery of {implied * 100:.2f} ¢/kWh where the tariff applies "
            f"{applied * 100:.2f} ¢/kWh; set it to {implied * 100:.2f}")


def reconcile(label: str, start: float, end: float, shares: Sequence[ReadShare], tariff: Tariff,
              tolerance: float) -> Reconciliation:
    """The reads starting in [start, end) summed, with a hint when our EV cost is off by more than
    `tolerance` (a ratio)."""
    inside = [s for s in shares if start <= s.start < end]
    home_kwh = sum(s.home_kwh for s in inside)
    ev_kwh = sum(s.ev_kwh for s in inside)
    costs_known = all(s.home_cost is not None for s in inside) and bool(inside)
    home_cost = sum(s.home_cost or 0.0 for s in inside) if costs_known else None
    utility = sum(s.ev_cost_utility or 0.0 for s in inside) if costs_known else None
    computed = sum(s.ev_cost_computed for s in inside)
    supply = sum(s.ev_supply_computed for s in inside)
    implied = applied = None
    if ev_kwh > 0:
        applied = (computed - supply) / ev_kwh
        implied = (utility - supply) / ev_kwh if utility is not None else None
    result = Reconciliation(label, start, end, len(inside), home_kwh, home_cost, ev_kwh, computed, utility,
                            implied, applied, "")
    off = result.discrepancy
    if off is not None and abs(off) > tolerance:
        return Reconciliation(**{**result.__dict__, "hint": _delivery_hint(implied, applied, tariff)})
    return result


def fixed_charges_hint(bills: Sequence[Bill], tariff: Tariff, tolerance: float) -> str:
    """The charges an issued bill shows beyond its usage, against the tariff's monthly charges."""
    extras = [b.amount - b.usage_charges for b in bills if not b.estimated and b.usage_charges is not None]
    if not extras:
        return ""
    billed = sum(extras) / len(extras)
    configured = tariff.monthly_fixed + tariff.capacity_per_month
    if abs(billed - configured) <= max(0.01, tolerance * max(abs(billed), abs(configured))):
        return ""
    return (f"tariff.monthly_fixed_dollars: the bills show ${billed:.2f} a month beyond usage where the tariff has "
            f"${configured:.2f} (fixed plus capacity); set monthly_fixed_dollars to "
            f"{billed - tariff.capacity_per_month:.2f}")
