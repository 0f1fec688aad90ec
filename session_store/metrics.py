"""The session store's metrics, read from storage and the live state at each render.

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

from dataclasses import dataclass
from typing import Any, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric as Family

from session_store.service import FLEET, LOCAL, SessionService
from session_store.storage import Session, Storage

WH = 3600.0
COMPONENTS = ("supply", "supply_credit", "delivery")
DISCARD_REASONS = ("too_short", "too_small")     # sessions.step's reasons (sessions._close)

REFERENCE = [
    ("charging_sessions_completed_total", "counter", "unit, vehicle", "Completed charging sessions."),
    ("charging_sessions_discarded_total", "counter", "unit, reason",
     "Sessions discarded as too short or too small (FLEET_SESSION_MIN_*)."),
    ("charging_session_energy_joules_total", "counter", "unit, vehicle", "Energy of completed sessions."),
    ("charging_session_cost_dollars_total", "counter", "unit, vehicle, component",
     "Final cost of completed sessions as billed: supply (charges), supply_credit (credits from negative prices), "
     "delivery."),
    ("charging_session_reference_cost_dollars_total", "counter", "unit, vehicle",
     "What the same sessions would have cost on the fixed-price rate (tariff.reference_supply_cents_per_kwh, same "
     "delivery); minus the net cost, the savings."),
    ("charging_sessions_provisional", "gauge", "unit, vehicle",
     "Completed sessions whose cost is provisional: an hour they touched is not complete yet."),
    ("charging_session_reconciliations_total", "counter", "outcome",
     "Sessions reconciled with Fleet charge history: matched or inserted (known only from the history)."),
    ("charging_session_in_progress", "gauge", "unit", "1 while a session is open on the unit."),
    ("charging_session_in_progress_energy_joules", "gauge", "unit", "Energy of the open session so far."),
    ("charging_session_in_progress_cost_dollars", "gauge", "unit",
     "Estimated full cost of the open session so far (its hour in progress at the projected hour price)."),
    ("charging_session_in_progress_start_timestamp_seconds", "gauge", "unit", "When the open session started."),
    ("charging_session_last_energy_joules", "gauge", "unit", "Energy of the unit's last completed session."),
    ("charging_session_last_cost_dollars", "gauge", "unit", "Full cost of the unit's last completed session."),
    ("charging_session_last_end_timestamp_seconds", "gauge", "unit", "When the unit's last completed session ended."),
    ("charging_session_last_info", "gauge", "unit, vehicle",
     "1 for the vehicle of the unit's last completed session (vehicle empty when none was matched)."),
    ("charging_session_watermark_timestamp_seconds", "gauge", "", "Samples up to this moment are turned into sessions."),
    ("charging_session_first_recorded_timestamp_seconds", "gauge", "",
     "When the first stored session was recorded; absent before. Every session counter was 0 before it, so a "
     "counter series first seen after it counts from 0."),
    ("charging_session_store_up", "gauge", "", "1 if the last evaluation against Prometheus succeeded."),
    ("charging_session_store_last_success_timestamp_seconds", "gauge", "", "When an evaluation last succeeded."),
    ("charging_session_store_upstream_requests_total", "counter", "endpoint, outcome",
     "PromQL requests to Prometheus by outcome."),
    ("charging_session_store_upstream_request_duration_seconds", "histogram", "endpoint",
     "Duration of PromQL requests."),
    ("charging_session_store_fleet_upstream_requests_total", "counter", "endpoint, outcome",
     "Requests for Fleet charge history (telemetry_history) and site discovery by outcome."),
    ("charging_session_store_fleet_upstream_request_duration_seconds", "histogram", "endpoint",
     "Duration of Fleet charge-history requests."),
]

HELP = {name.removesuffix("_total"): text for name, _, _, text in REFERENCE}


@dataclass(frozen=True)
class StoredTotals:
    totals: list[Any]
    discarded: list[Any]
    reconciliations: dict[str, int]
    last: list[Session]
    first_recorded: float | None


class SessionCollector:
    def __init__(self, storage: Storage, service: SessionService) -> None:
        self.storage = storage
        self.service = service
        self._cached: tuple[int, StoredTotals] | None = None

    def stored(self) -> "StoredTotals":
        """The database's aggregates, queried once per committed write rather than per render (each
        render collects twice, text and OpenMetrics, and totals() scans every session)."""
        version = self.storage.version
        if self._cached is None or self._cached[0] != version:
            self._cached = (version, StoredTotals(self.storage.totals(), self.storage.discarded(),
                                                  self.storage.reconciliation_counts(), self.storage.last_sessions(),
                                                  self.storage.first_recorded()))
        return self._cached[1]

    def known_units(self, stored: StoredTotals) -> set[str]:
        """Units of the session source: configured (energy_site.unit_names with Fleet, the chargers of
        wall_connectors.chargers with the local API), seen in its power series, or with stored sessions."""
        config = self.service.config
        wanted = config.sessions.source
        source = FLEET if wanted == "fleet" else LOCAL if wanted == "local" else self.service.source
        units = set(self.service.live.names.values()) | {row["unit"] for row in stored.totals}
        units |= {row["unit"] for row in stored.discarded}
        if source is FLEET:
            units |= set(config.energy_site.unit_names.values())
        elif source is LOCAL:
            units |= {charger.name for charger in config.wall_connectors.chargers}
        return units

    def known_vehicles(self, stored: StoredTotals) -> set[str]:
        """Configured vehicle names (by VIN and by charge-history target_id), the vehicles of stored
        sessions, and "" (sessions without a vehicle: the label is empty, so absent in Prometheus)."""
        vehicles = self.service.config.vehicles
        return {"", *vehicles.names.values(), *vehicles.target_ids.values(), *(row["vehicle"] for row in stored.totals)}

    def collect(self) -> Iterable[Family]:
        by_vehicle = ["unit", "vehicle"]
        completed = CounterMetricFamily("charging_sessions_completed", HELP["charging_sessions_completed"],
                                        labels=by_vehicle)
        energy = CounterMetricFamily("charging_session_energy_joules", HELP["charging_session_energy_joules"],
                                     labels=by_vehicle)
        cost = CounterMetricFamily("charging_session_cost_dollars", HELP["charging_session_cost_dollars"],
                                   labels=[*by_vehicle, "component"])
        reference = CounterMetricFamily("charging_session_reference_cost_dollars",
                                        HELP["charging_session_reference_cost_dollars"], labels=by_vehicle)
        provisional = GaugeMetricFamily("charging_sessions_provisional", HELP["charging_sessions_provisional"],
                                        labels=by_vehicle)
        stored = self.stored()
        units = self.known_units(stored)
        rows = {(row["unit"], row["vehicle"]): row for row in stored.totals}
        pairs = set(rows) | {(unit, vehicle) for unit in units for vehicle in self.known_vehicles(stored)}
        for labels in sorted(pairs):
            row = rows.get(labels)
            if row is None:                       # known, no session yet: 0, so the first one is an increment
                completed.add_metric(labels, 0)
                energy.add_metric(labels, 0.0)
                for component in COMPONENTS:
                    cost.add_metric([*labels, component], 0.0)
                reference.add_metric(labels, 0.0)
                provisional.add_metric(labels, 0)
                continue
            completed.add_metric(labels, row["sessions"])
            energy.add_metric(labels, (row["energy_wh"] or 0.0) * WH)
            for component, value in zip(COMPONENTS, (row["supply_charged"], row["supply_credit"], row["delivery"])):
                cost.add_metric([*labels, component], value or 0.0)
            reference.add_metric(labels, row["reference"] or 0.0)
            provisional.add_metric(labels, row["provisional"] or 0)
        discarded = CounterMetricFamily("charging_sessions_discarded", HELP["charging_sessions_discarded"],
                                        labels=["unit", "reason"])
        counts = {(row["unit"], row["reason"]): row["count"] for row in stored.discarded}
        for key in sorted(set(counts) | {(unit, reason) for unit in units for reason in DISCARD_REASONS}):
            discarded.add_metric(list(key), counts.get(key, 0))
        reconciled = CounterMetricFamily("charging_session_reconciliations", HELP["charging_session_reconciliations"],
                                         labels=["outcome"])
        for outcome in ("matched", "inserted"):
            reconciled.add_metric([outcome], stored.reconciliations.get(outcome, 0))
        yield from (completed, energy, cost, reference, provisional, discarded, reconciled)
        yield from self._in_progress()
        yield from self._last()
        yield from self._health()

    def _in_progress(self) -> Iterable[Family]:
        flag, energy, cost, start = (GaugeMetricFamily(name, HELP[name], labels=["unit"]) for name in (
            "charging_session_in_progress", "charging_session_in_progress_energy_joules",
            "charging_session_in_progress_cost_dollars", "charging_session_in_progress_start_timestamp_seconds"))
        open_units = {row["unit"]: row for row in self.service.in_progress()}
        for unit in sorted(set(self.service.live.names.values())):
            row = open_units.get(unit)
            flag.add_metric([unit], 1.0 if row else 0.0)
            if row:
                energy.add_metric([unit], row["energy_wh"] * WH)
                cost.add_metric([unit], row["estimated_cost"])
                start.add_metric([unit], row["start"])
        return flag, energy, cost, start

    def _last(self) -> Iterable[Family]:
        energy, cost, end = (GaugeMetricFamily(name, HELP[name], labels=["unit"]) for name in (
            "charging_session_last_energy_joules", "charging_session_last_cost_dollars",
            "charging_session_last_end_timestamp_seconds"))
        vehicle = GaugeMetricFamily("charging_session_last_info", HELP["charging_session_last_info"],
                                    labels=["unit", "vehicle"])
        for session in self.stored().last:
            energy.add_metric([session.unit], session.energy_wh * WH)
            cost.add_metric([session.unit], session.full_cost)
            end.add_metric([session.unit], session.end)
            vehicle.add_metric([session.unit, session.vehicle or ""], 1.0)
        return energy, cost, end, vehicle

    def _health(self) -> Iterable[Family]:
        live = self.service.live
        watermark = self.storage.watermark()
        if watermark is not None:
            yield GaugeMetricFamily("charging_session_watermark_timestamp_seconds",
                                    HELP["charging_session_watermark_timestamp_seconds"], value=watermark)
        first = self.stored().first_recorded
        if first is not None:
            yield GaugeMetricFamily("charging_session_first_recorded_timestamp_seconds",
                                    HELP["charging_session_first_recorded_timestamp_seconds"], value=first)
        yield GaugeMetricFamily("charging_session_store_up", HELP["charging_session_store_up"],
                                value=1.0 if live.up else 0.0)
        if live.last_success is not None:
            yield GaugeMetricFamily("charging_session_store_last_success_timestamp_seconds",
                                    HELP["charging_session_store_last_success_timestamp_seconds"], value=live.last_success)

    def describe(self) -> Iterable[Family]:
        return []
