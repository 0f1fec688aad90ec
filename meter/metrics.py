"""The meter component's /metrics, one table of rows over the current `MeterView` (prefix `utility_meter_`).

The view comes from storage, so its figures stay after a failed pull (they describe the past, which stays
true); `utility_meter_up` and `utility_meter_login_ok` say whether the portal answers now. The reads
themselves reach Prometheus as TSDB blocks at their real time (`meter.publish`), not through this page.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client.core import Metric as Family

from meter.view import LOGIN_STATES, MeterView
from servicekit.collector import FreshData
from servicekit.metrics import COUNTER, ENUM, GAUGE, INFO, Metric, build_families

PREFIX = "utility_meter"
J_PER_KWH = 3.6e6
LOGIN_CODES = dict(enumerate(LOGIN_STATES))


def _periods(view: MeterView, field: str, scale: float = 1.0) -> dict[str, float | None]:
    out = {}
    for period in view.periods:
        value = getattr(period, field)
        out[period.name] = None if value is None else value * scale
    return out


def _recs(view: MeterView, value: Callable) -> dict[str, float | None]:
    return {r.label: value(r) for r in view.reconciliations}


def _bill_labels(view: MeterView, value: Callable) -> dict[tuple[str, str, str], float]:
    out = {}
    for bill in view.bills:
        key = (datetime.fromtimestamp(bill.start, view.zone).date().isoformat(),
               datetime.fromtimestamp(bill.end, view.zone).date().isoformat(), "true" if bill.estimated else "false")
        out[key] = value(bill)
    return out


ROWS = (
    Metric(f"{PREFIX}_login_ok", GAUGE, "1 while the stored utility login works; 0 when it was refused or none is "
           "stored (run `charging-meter --setup`).", lambda v: 1.0 if v.login == "ok" else 0.0 if v.login != "unknown"
           else None),
    Metric(f"{PREFIX}_login", ENUM, "State of the stored utility login.", lambda v: LOGIN_STATES.index(v.login),
           states=LOGIN_CODES),
    Metric(f"{PREFIX}_newest_read_end_timestamp_seconds", GAUGE, "End of the newest meter read (the portal "
           "publishes 24-48 hours late).", lambda v: v.newest_read_end),
    Metric(f"{PREFIX}_reads", GAUGE, "Meter reads stored.", lambda v: v.reads),
    Metric(f"{PREFIX}_corrections", COUNTER, "Corrections of stored reads by later pulls (each replaced the read's "
           "values).", lambda v: v.corrections),
    Metric(f"{PREFIX}_publication_pending", GAUGE, "Samples waiting to be written to Prometheus's TSDB.",
           lambda v: v.pending_publication),
    Metric(f"{PREFIX}_period_energy_joules", GAUGE, "The home's metered energy over the period (today and "
           "yesterday stay partial until the portal publishes them).", lambda v: _periods(v, "kwh", J_PER_KWH),
           extra_labels=("period",)),
    Metric(f"{PREFIX}_period_cost_dollars", GAUGE, "The utility's cost of the home's energy over the period (usage "
           "charges, without monthly charges).", lambda v: _periods(v, "cost"), extra_labels=("period",)),
    Metric(f"{PREFIX}_period_reads", GAUGE, "Meter reads in the period.", lambda v: _periods(v, "reads"),
           extra_labels=("period",)),
    Metric(f"{PREFIX}_ev_energy_joules", GAUGE, "EV charging energy (our sessions) during the period's reads.",
           lambda v: _recs(v, lambda r: r.ev_kwh * J_PER_KWH), extra_labels=("period",)),
    Metric(f"{PREFIX}_ev_share_ratio", GAUGE, "EV energy over the home's metered energy.",
           lambda v: _recs(v, lambda r: r.ev_share), extra_labels=("period",)),
    Metric(f"{PREFIX}_ev_cost_dollars", GAUGE, "Cost of the EV energy: source=utility (the reads' costs times the "
           "EV share), source=computed (our tariff).",
           lambda v: {**{(r.label, "utility"): r.ev_cost_utility for r in v.reconciliations},
                      **{(r.label, "computed"): r.ev_cost_computed for r in v.reconciliations}},
           extra_labels=("period", "source")),
    Metric(f"{PREFIX}_cost_discrepancy_ratio", GAUGE, "Our EV cost over the utility's minus 1 (0.03: we compute 3 % "
           "more); see utility_meter_tuning_hint_info.", lambda v: _recs(v, lambda r: r.discrepancy),
           extra_labels=("period",)),
    Metric(f"{PREFIX}_implied_delivery_cents_per_kwh", GAUGE, "The delivery rate the utility's cost implies for the "
           "EV energy (its cost less our supply cost).",
           lambda v: _recs(v, lambda r: None if r.implied_delivery_per_kwh is None else r.implied_delivery_per_kwh * 100),
           extra_labels=("period",)),
    Metric(f"{PREFIX}_tuning_hint", INFO, "A tariff setting to tune so computed costs match the bills (the API's "
           "/api/meter says by how much).", lambda v: {"hint": " | ".join(v.hints)} if v.hints else None),
    Metric(f"{PREFIX}_bill_amount_dollars", GAUGE, "The bill's amount (estimated=true: the bill in progress so far).",
           lambda v: _bill_labels(v, lambda b: b.amount), extra_labels=("period_start", "period_end", "estimated")),
    Metric(f"{PREFIX}_bill_energy_joules", GAUGE, "The bill's energy.",
           lambda v: _bill_labels(v, lambda b: b.kwh * J_PER_KWH),
           extra_labels=("period_start", "period_end", "estimated")),
    Metric(f"{PREFIX}_bill_usage_charges_dollars", GAUGE, "The bill's usage charges (the rest is monthly charges).",
           lambda v: _bill_labels(v, lambda b: b.usage_charges),
           extra_labels=("period_start", "period_end", "estimated")),
)


def families(view: Callable[[], MeterView]) -> Callable[[FreshData], Iterable[Family]]:
    """The collector's families: every row over the current view, labelled with the utility."""
    def collect(_: FreshData) -> Iterable[Family]:
        current = view()
        return build_families(ROWS, ("utility",), [((current.utility,), current)])
    return collect


def reference() -> list[tuple[str, str, str, str]]:
    return [row for metric in ROWS for row in metric.reference(("utility",))]
