"""The session store's metrics: tables from its frozen views to metric families, nothing else.

Counters are sums over the stored sessions, so they survive restarts without resets or double
counting. Costs are the tariff's bill and enter the counters once final (every hour the session
touched is complete); credits from negative prices are their own component so every counter stays
monotonic: net supply = supply - supply_credit.

Every known unit and vehicle pair is exported from the start, at 0 until its first session: the
units of the session source (configured names, units seen in the power series, units of stored
sessions) times the vehicles (vehicles.names, vehicles.target_ids, vehicles of stored sessions, and
no vehicle: an empty `vehicle` label). Prometheus then holds a 0 before a pair's first increment and
`increase()` counts its first session; a pair first seen with its first session (a car named only
by Tessie, a unit first known from charge history) still starts at its full value, which is what
`charging_session_first_recorded_timestamp_seconds` and the dashboards' window deltas are for
(grafana/boards.py, `counted`). At most units x (vehicles + 1) series per family.

    charging_sessions_completed_total{unit="garage",vehicle="Blue"} 42.0
    charging_session_cost_dollars_total{component="delivery",unit="garage",vehicle="Blue"} 31.4
"""
from __future__ import annotations

from typing import NamedTuple


from prometheus_client.core import Metric as Family

from prometheus_client import CollectorRegistry

from servicekit.config import Config
from servicekit.exposition import Part
from servicekit.metrics import COUNTER, GAUGE, Metric, build_families
from servicekit.poller import Health
from servicekit.upstream import UpstreamMetrics
from session_store.smart_loop import SmartChargingDriver
from session_store.smart_metrics import smart_charging_families
from session_store.steps import Loops
from session_store.views import AwayTotals, LedgerView, OpenSessionView, PairTotals, SessionsView

WH = 3600.0
DISCARD_REASONS = ("too_short", "too_small")     # sessions.step's reasons (sessions._close)
RECONCILIATION_OUTCOMES = ("matched", "inserted")
HEALTH_PREFIX = "charging_session_store"
FLEET_PREFIX = "charging_session_store_fleet"
PROMETHEUS_UPSTREAM = "Prometheus (PromQL)"
FLEET_UPSTREAM = "Tessie (Fleet charge history and site discovery)"
VEHICLES_PREFIX = "charging_session_store_tessie"
VEHICLES_UPSTREAM = "Tessie (the cars' own charge history and the vehicle list)"

# Per unit and vehicle ("" for none): sums over the stored sessions, 0 for a pair known without one.
PAIR_ROWS = (
    Metric("charging_sessions_completed", COUNTER, "Completed charging sessions.", lambda t: t.sessions),
    Metric("charging_session_energy_joules", COUNTER, "Energy of completed sessions.", lambda t: t.energy_wh * WH),
    Metric("charging_session_cost_dollars", COUNTER, "Final cost of completed sessions as billed: supply (charges), "
           "supply_credit (credits from negative prices), delivery.",
           lambda t: {"supply": t.supply_charged, "supply_credit": t.supply_credit, "delivery": t.delivery},
           ("component",)),
    Metric("charging_session_reference_cost_dollars", COUNTER, "What the same sessions would have cost on the "
           "fixed-price rate (tariff.reference_supply_cents_per_kwh, same delivery); minus the net cost, the savings.",
           lambda t: t.reference),
    Metric("charging_sessions_provisional", GAUGE, "Completed sessions whose cost is provisional: an hour they "
           "touched is not complete yet.", lambda t: t.provisional),
)
UNIT_ROWS = (   # per unit: its discards by reason
    Metric("charging_sessions_discarded", COUNTER, "Sessions discarded as too short or too small "
           "(FLEET_SESSION_MIN_*).", lambda by_reason: by_reason, ("reason",)),
)
STORE_ROWS = (
    Metric("charging_session_reconciliations", COUNTER, "Sessions reconciled with Fleet charge history: matched or "
           "inserted (known only from the history).", lambda ledger: {o: ledger.reconciliations.get(o, 0)
                                                                       for o in RECONCILIATION_OUTCOMES}, ("outcome",)),
)
AWAY_ROWS = (   # per vehicle: charging away from home, from the car's own charge history (Tessie)
    Metric("charging_away_charges", COUNTER, "Charges away from home (Superchargers, other chargers): the car's "
           "charge history with no Wall Connector session behind it.", lambda t: t.charges),
    Metric("charging_away_energy_joules", COUNTER, "Energy added to the battery away from home.",
           lambda t: t.energy_wh * WH),
    Metric("charging_away_cost_dollars", COUNTER, "What away charging cost, as Tessie reports it (the operator's "
           "price at a Supercharger).", lambda t: t.cost),
)
OPEN_ROWS: tuple[Metric, ...] = (
    Metric("charging_session_in_progress", GAUGE, "1 while a session is open on the unit.",
           lambda o: 1.0 if o else 0.0),
    Metric("charging_session_in_progress_energy_joules", GAUGE, "Energy of the open session so far.",
           lambda o: o.energy_wh * WH if o else None),
    Metric("charging_session_in_progress_cost_dollars", GAUGE, "Estimated full cost of the open session so far (its "
           "hour in progress at the projected hour price).", lambda o: o.estimated_cost if o else None),
    Metric("charging_session_in_progress_start_timestamp_seconds", GAUGE, "When the open session started.",
           lambda o: o.start if o else None),
)
LAST_ROWS: tuple[Metric, ...] = (
    Metric("charging_session_last_energy_joules", GAUGE, "Energy of the unit's last completed session.",
           lambda s: s.energy_wh * WH),
    Metric("charging_session_last_cost_dollars", GAUGE, "Full cost of the unit's last completed session.",
           lambda s: s.full_cost),
    Metric("charging_session_last_end_timestamp_seconds", GAUGE, "When the unit's last completed session ended.",
           lambda s: s.end),
    Metric("charging_session_last_info", GAUGE, "1 for the vehicle of the unit's last completed session (vehicle "
           "empty when none was matched).", lambda s: {s.vehicle or "": 1.0}, ("vehicle",)),
)
class StoreState(NamedTuple):
    sessions: SessionsView | None
    ledger: LedgerView
    evaluation: Health         # of the sessions loop


HEALTH_ROWS: tuple[Metric, ...] = (   # over a StoreState
    Metric("charging_session_watermark_timestamp_seconds", GAUGE, "Samples up to this moment are turned into sessions.",
           lambda r: r.sessions.watermark if r.sessions else None),
    Metric("charging_session_first_recorded_timestamp_seconds", GAUGE, "When the first stored session was recorded; "
           "absent before. Every session counter was 0 before it, so a counter series first seen after it counts "
           "from 0.", lambda r: r.ledger.first_recorded),
    Metric(f"{HEALTH_PREFIX}_up", GAUGE, "1 if the last evaluation against Prometheus succeeded.",
           lambda r: 1.0 if r.evaluation.up else 0.0),
    Metric(f"{HEALTH_PREFIX}_last_success_timestamp_seconds", GAUGE, "When an evaluation last succeeded.",
           lambda r: r.evaluation.last_success),
)


# (name, type, labels, help) of every metric above, for docs/metrics.md: the same texts as /metrics.
REFERENCE = [*(r for m in PAIR_ROWS for r in m.reference(("unit", "vehicle"))),
             *(r for m in (*UNIT_ROWS, *OPEN_ROWS, *LAST_ROWS) for r in m.reference(("unit",))),
             *(r for m in (*STORE_ROWS, *HEALTH_ROWS) for r in m.reference(())),
             *(r for m in AWAY_ROWS for r in m.reference(("vehicle",))),
             *UpstreamMetrics.reference(HEALTH_PREFIX, PROMETHEUS_UPSTREAM),
             *UpstreamMetrics.reference(FLEET_PREFIX, FLEET_UPSTREAM),
             *UpstreamMetrics.reference(VEHICLES_PREFIX, VEHICLES_UPSTREAM)]


def configured_vehicles(config: Config) -> frozenset[str]:
    """The configured vehicle names (by VIN and by charge-history target_id): exported at 0 from the start."""
    return frozenset({*config.vehicles.names.values(), *config.vehicles.target_ids.values()})


def known_units(view: SessionsView | None, ledger: LedgerView) -> frozenset[str]:
    """The session source's units: configured, seen in its power series, or with stored sessions."""
    return ledger.units | (view.units if view else frozenset())


def stored_families(units: frozenset[str], ledger: LedgerView, vehicles: frozenset[str]) -> list[Family]:
    """The families that change only with the ledger (or a unit first seen): counters over every known
    unit and vehicle pair, discards, reconciliations, each unit's last session. `vehicles`: the configured
    names (vehicles.names, vehicles.target_ids); known pairs are exported at 0 from the start."""
    totals = {(t.unit, t.vehicle): t for t in ledger.totals}
    known = {"", *vehicles, *(vehicle for _, vehicle in totals)}
    pairs = sorted(set(totals) | {(unit, vehicle) for unit in units for vehicle in known})
    families = build_families(PAIR_ROWS, ("unit", "vehicle"),
                              [(pair, totals.get(pair) or PairTotals(*pair, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0))
                               for pair in pairs])
    discards: dict[str, dict[str, int]] = {unit: dict.fromkeys(DISCARD_REASONS, 0) for unit in units}
    for (unit, reason), count in ledger.discarded.items():
        discards.setdefault(unit, {})[reason] = count
    families += build_families(UNIT_ROWS, ("unit",), [((unit,), dict(sorted(by_reason.items())))
                                                      for unit, by_reason in sorted(discards.items())])
    families += build_families(STORE_ROWS, (), [((), ledger)])
    families += build_families(LAST_ROWS, ("unit",), [((s.unit,), s) for s in ledger.last])
    # every named car at 0 from the start (configured, or with a session), so a first away charge is an increase
    named = vehicles | {t.vehicle for t in ledger.totals if t.vehicle}
    away = {vehicle: AwayTotals() for vehicle in named} | dict(ledger.away)
    families += build_families(AWAY_ROWS, ("vehicle",), [((vehicle,), totals) for vehicle, totals in sorted(away.items())])
    return families


def live_families(view: SessionsView | None, ledger: LedgerView, health: Health) -> list[Family]:
    """The families of each evaluation: the sessions in progress and the store's health."""
    open_by_unit: dict[str, OpenSessionView] = {o.unit: o for o in view.in_progress} if view else {}
    seen = sorted(view.seen) if view else []
    return [*build_families(OPEN_ROWS, ("unit",), [((unit,), open_by_unit.get(unit)) for unit in seen]),
            *build_families(HEALTH_ROWS, (), [((), StoreState(view, ledger, health))])]


def session_families(view: SessionsView | None, ledger: LedgerView, health: Health,
                     vehicles: frozenset[str]) -> list[Family]:
    """Every session-store family from one sessions view and one ledger."""
    return stored_families(known_units(view, ledger), ledger, vehicles) + live_families(view, ledger, health)


def exposition_parts(loops: Loops, registry: CollectorRegistry, config: Config,
                     driver: SmartChargingDriver | None) -> list[Part]:
    """The store's /metrics in parts: the counters over every unit and vehicle pair re-render only when the
    ledger moves or a unit appears; the sessions in progress, health, request metrics and smart charging
    at every render (benchmarks/session_scrape.py)."""
    vehicles = configured_vehicles(config)

    def units() -> frozenset[str]:
        return known_units(loops.sessions(), loops.ledger.view)
    parts = [Part(lambda: stored_families(units(), loops.ledger.view, vehicles),
                  key=lambda: (loops.ledger.view.version, units())),
             Part(lambda: live_families(loops.sessions(), loops.ledger.view, loops.health())),
             Part(registry.collect)]
    if driver is not None:   # its view is newer than its poller's after an override set through the API
        smart = driver
        parts.append(Part(lambda: smart_charging_families(smart.view(), loops.ledger.view)))
    return parts
