"""The driver loop: read new samples from Prometheus, step every unit's state machine, price the
completed sessions, and hand sessions, states and the watermark to storage in one transaction.

Nothing here decides anything: detection is `sessions.step`, costing is the tariff's bill
(`costing.session_bill`).
The watermark only moves after the transaction commits, so a crash at any point replays the same
window on restart and the unique key on (unit, start) makes the replay insert nothing twice.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
from typing import Any, Callable

from billing.settings import tariff_for
from upstreams.tessie import ChargeRecord, configured_unit_name, serial_of, vehicle_name
from servicekit.config import Config
from session_store.costing import GIVE_UP_S, cost_fields, session_bill

PRICE_WAIT_S = 900.0   # after a start, how long missing price history may still be on its way
from session_store.prometheus import Prometheus, Series
from session_store.reconciliation import Plan, plan
from session_store.sessions import Completed, Discarded, Params, UnitState, known_alike, segment_energy, step
from session_store.records import Session
from session_store.storage import Storage
from session_store.views import OpenSessionView, SessionsView

PRICE_SERIES = "electricity_price_5m_cents_per_kwh"
# Each window re-reads this much before the watermark: a sample stamped just before the last window's
# end but ingested after it is still seen, and step() ignores what it has already consumed.
REPLAY_S = 60.0


@dataclass(frozen=True)
class Source:
    """Which series describe a unit: the Fleet view of every unit, or the local API of each charger."""

    name: str
    power: str
    connected: str
    key: str                 # label identifying the unit
    display: str             # label naming it
    vin_info: str | None = None
    meter: str | None = None


FLEET = Source("live_status", "tesla_wall_connector_power_watts", "tesla_wall_connector_vehicle_connected", "din",
               "unit", vin_info="tesla_wall_connector_vehicle_info")
LOCAL = Source("local", "twc_power_watts", "twc_vehicle_connected", "charger", "charger",
               meter="twc_session_energy_joules")


@dataclass
class WorkingState:
    """The driver's working state between evaluations; others read the frozen `SessionsView` of `view()`."""

    states: dict[str, UnitState] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)       # unit key -> display name
    power: dict[str, tuple[float, float]] = field(default_factory=dict)   # unit key -> (t, watts)
    prices: dict[float, float] = field(default_factory=dict)   # recent 5-minute prices, for estimates
    last_evaluation: float | None = None


HISTORY_DAYS = 7.0      # how far back each charge-history import after the first reads (sessions.history_days)
FLEET_WAIT_S = 300.0   # auto mode with a Tessie token: how long Fleet data may lag the local API at start


def _key(series: Series, source: Source) -> str | None:
    return series.labels.get(source.key)


class SessionService:
    def __init__(self, config: Config, storage: Storage, prometheus: Prometheus, log: logging.Logger,
                 clock: Callable[[], float] = time.time,
                 on_event: Callable[[dict[str, Any]], None] = lambda event: None) -> None:
        settings = config.sessions
        self.config = config
        self.storage = storage
        self.prometheus = prometheus
        self.log = log
        self.clock = clock
        self.on_event = on_event
        self.params = Params(threshold_w=settings.power_threshold_w, grace_s=settings.grace_period,
                             max_gap_s=300.0, min_energy_wh=settings.min_energy_kwh * 1000,
                             min_duration_s=settings.min_duration)
        self.tariff = tariff_for(config)
        self.started = clock()
        self.working = WorkingState(states=storage.load_states())
        self.vehicle_names: dict[str, str] = {}   # VIN -> the name the Fleet exporter gave it (vehicle_info)
        self.source: Source | None = None
        self.started = clock()
        self.site_id: str | None = None     # the Fleet energy site the units belong to, once known
        if config.energy_site.site_id:
            self.know_site(config.energy_site.site_id)

    def know_site(self, site_id: str) -> None:
        """The energy site is known (configured, or discovered by the charge-history import): sessions
        recorded without it get it (the suite watches one site)."""
        if site_id != self.site_id:
            self.site_id = site_id
            if self.storage.assign_energy_site(site_id):
                self.log.info("sessions recorded so far belong to energy site %s", site_id)

    async def choose_source(self) -> Source | None:
        """The configured source. In auto mode only a source whose exporter this configuration runs: Fleet
        when the fleet exporter is enabled and a Tessie token is present, the local API when Wall Connectors
        are configured (series of an exporter that is not running, say a demo's left in Prometheus, are never
        used). Of those, Fleet when Prometheus has its series, else the local one; else none yet (nothing is
        decided, the watermark waits)."""
        wanted = self.config.sessions.source
        if wanted != "auto":
            return FLEET if wanted == "fleet" else LOCAL
        token = self.config.secrets.tessie_access_token is not None
        fleet_expected = self.config.energy_site.enabled and token
        local_expected = self.config.wall_connectors.enabled and bool(self.config.wall_connectors.chargers)
        without_fleet = ("energy_site.enabled is false" if not self.config.energy_site.enabled
                         else "no TESSIE_ACCESS_TOKEN")
        reasons = {FLEET: "the fleet exporter is enabled and a Tessie token is present",
                   LOCAL: f"Wall Connectors are configured; Fleet: {without_fleet}" if not fleet_expected
                   else f"Wall Connectors are configured; no Fleet series within {FLEET_WAIT_S:g}s of start"}
        candidates = [s for s, expected in ((FLEET, fleet_expected), (LOCAL, local_expected)) if expected]
        if not candidates:
            if not getattr(self, "_no_source_logged", False):
                self._no_source_logged = True
                self.log.warning("no session source: Fleet needs energy_site.enabled and a TESSIE_ACCESS_TOKEN "
                                 "(%s), the local API Wall Connectors in wall_connectors.chargers (%s); no "
                                 "sessions are recorded until one is configured", without_fleet,
                                 "none configured" if self.config.wall_connectors.enabled
                                 else "wall_connectors.enabled is false")
            return None
        for source in candidates:
            if await self.prometheus.query(f"count({source.power})"):
                if source is LOCAL and fleet_expected and self.clock() - self.started < FLEET_WAIT_S:
                    return None   # the Fleet exporter may only be a poll behind the local one: wait for it
                self.log.info("deriving sessions from %s (%s): %s", source.power, source.name, reasons[source])
                return source
        return None

    async def evaluate(self) -> list[Session]:
        """Catch up from the watermark to now - settle; returns the sessions completed meanwhile."""
        now = self.clock()
        self.working.last_evaluation = now
        self.source = self.source or await self.choose_source()
        if self.source is None:
            return []
        end = now - self.config.sessions.settle
        mark = self.storage.watermark() or (end - self.config.sessions.catch_up)
        completed: list[Session] = []
        while mark < end:
            chunk_end = min(end, mark + self.config.sessions.catch_up_chunk)
            completed += await self._window(self.source, mark, chunk_end)
            mark = chunk_end
        await self._reprice()
        return completed

    async def _window(self, source: Source, start: float, end: float) -> list[Session]:
        start -= REPLAY_S
        power = await self.prometheus.samples(source.power, start, end)
        links = await self.prometheus.samples(source.connected, start, end)
        infos = await self.prometheus.samples(source.vin_info, start, end) if source.vin_info else []
        meters = await self.prometheus.samples(source.meter, start, end) if source.meter else []
        # a day before the window for estimates; an hour after it so a session's last hour is complete
        # when catching up (live, the clock stops it)
        prices = await self._prices(start - 86400, min(self.clock(), end + 3600))
        self.working.prices = prices
        states = dict(self.working.states)
        sessions: list[Session] = []
        discarded: list[tuple[str, str]] = []
        by_key: dict[str, dict[str, list[Series]]] = {}
        for kind, group in (("power", power), ("links", links), ("infos", infos), ("meters", meters)):
            for series in group:
                key = _key(series, source)
                if key:
                    by_key.setdefault(key, {}).setdefault(kind, []).append(series)
        for key, data in by_key.items():
            if "power" not in data:
                continue
            samples = sorted((t, v) for series in data["power"] for t, v in zip(series.t, series.v))
            name = data["power"][0].labels.get(source.display, key)
            self.working.names[key] = name
            connected = [(t, v >= 0.5) for series in data.get("links", []) for t, v in zip(series.t, series.v)]
            samples, connected = known_alike(samples, connected, REPLAY_S)   # the rest at the next evaluation
            vins = [(t, series.labels.get("vin")) for series in data.get("infos", []) for t in series.t]
            vehicles = self._vehicle_labels(data.get("infos", []))
            before = states.get(key, UnitState())
            state, closed = step(before, [t for t, _ in samples], [v for _, v in samples], self.params,
                                 connected, vins)
            states[key] = state
            if samples:
                self.working.power[key] = samples[-1]
            if before.open is None and state.open is not None:
                self.on_event({"type": "session_started", "unit": name, "start": state.open.start})
            for event in closed:
                if isinstance(event, Discarded):
                    discarded.append((name, event.reason))
                    continue
                meter = self._meter(data.get("meters", []), event)
                sessions.append(self._session(source, key, name, event, prices, vehicles, meter))
        inserted = self.storage.save_step(states, sessions, discarded, end)
        self.working.states = states
        for session in inserted:
            self.log.info("session completed: %s %s %.2f kWh $%.2f", session.unit, session.vehicle or session.vin or "",
                          session.energy_wh / 1000, session.full_cost)
            self.on_event({"type": "session_completed", "session": session.public()})
        return inserted

    async def _prices(self, start: float, end: float) -> dict[float, float]:
        return {t: v for series in await self.prometheus.samples(PRICE_SERIES, start, end)
                for t, v in zip(series.t, series.v)}

    def _vehicle_labels(self, infos: list[Series]) -> dict[str | None, str | None]:
        """VIN -> `vehicle` label of the Fleet exporter's vehicle_info, which names cars by the shared rule;
        a label that is only the VIN (Tessie's list not read yet) never hides a real name. Remembered, so
        sessions found later (charge history, in progress) get the same name."""
        vehicles: dict[str | None, str | None] = {}
        for series in infos:
            vin, name = series.labels.get("vin"), series.labels.get("vehicle")
            if vin and name and (name != vin or not vehicles.get(vin)):
                vehicles[vin] = name
        self.vehicle_names.update({vin: name for vin, name in vehicles.items() if vin and name and name != vin})
        return vehicles

    def _name_vehicle(self, vin: str | None, vehicles: dict[str | None, str | None]) -> str | None:
        """The rule of every component (upstreams.tessie.vehicle_name): vehicles.names, else the
        name the Fleet exporter gave the car (Tessie's display name), else the VIN."""
        if vin is None:
            return None
        known = vehicles.get(vin)
        if not known or known == vin:
            known = self.vehicle_names.get(vin) or known
        return vehicle_name(self.config.vehicles.names, vin, known)

    @staticmethod
    def _meter(meters: list[Series], event: Completed) -> float | None:
        """The unit's own session meter at the end (the local API's session energy), beside the integral."""
        readings = [(t, v) for series in meters for t, v in zip(series.t, series.v) if event.start <= t <= event.end + 600]
        return max(v for _, v in readings) / 3600.0 if readings else None

    def _cost(self, intervals: dict[float, float], prices: dict[float, float]) -> dict[str, Any]:
        return cost_fields(session_bill(intervals, prices, self.tariff, self.clock()))

    def _session(self, source: Source, key: str, name: str, event: Completed, prices: dict[float, float],
                 vehicles: dict[str | None, str | None], meter: float | None) -> Session:
        return Session(
            unit=name, din=key if source is FLEET else None, vin=event.vin,
            vehicle=self._name_vehicle(event.vin, vehicles), start=event.start, end=event.end,
            duration_s=event.duration_s, energy_wh=event.energy_wh, peak_w=event.peak_w, average_w=event.average_w,
            meter_energy_wh=meter, **self._cost(event.intervals, prices), intervals=event.intervals,
            gap_s=event.gap_s, source=source.name, reconciliation="pending", energy_site_id=self.site_id)

    async def _reprice(self) -> None:
        """Sessions touching an hour that was not complete are repriced once it closes. A session whose
        prices are gone from Prometheus (stored before the tariff, older than its retention) keeps the
        cost it has, but not in the store's first PRICE_WAIT_S: a price history being backfilled or
        imported right now (VictoriaMetrics makes it searchable seconds late) is not gone."""
        provisional = self.storage.sessions(provisional_only=True, limit=1000)
        if not provisional:
            return
        earliest = min(s.start for s in provisional)
        prices = await self._prices(earliest - 3600, self.clock())
        updates = []
        for session in provisional:
            fields = self._cost(session.intervals, prices)
            if not prices or min(prices) > session.start:
                waited = self.clock() - self.started > PRICE_WAIT_S
                fields = {"cost_final": waited and self.clock() - session.end > GIVE_UP_S}
            repriced = replace(session, **fields)
            if repriced != session:   # unchanged costs are not rewritten (nor the counters re-read)
                updates.append(repriced)
        self.storage.update_costs(updates)

    def history_window(self, site_id: str) -> float:
        """Days the site's next charge-history import reads: sessions.history_days the first time, then the
        recheck window. Knowing the site also gives it to the sessions recorded without it."""
        self.know_site(site_id)
        return HISTORY_DAYS if f"site:{site_id}" in self.storage.imported_until() else self.config.sessions.history_days

    def history_imported(self, site_id: str, started: float) -> None:
        self.storage.mark_imported({f"site:{site_id}": started})

    async def fetch_charge_history(self, tessie: Any, site_id: str, days: float = HISTORY_DAYS) -> list[ChargeRecord]:
        """The site's Fleet charge history of the last `days`."""
        zone = ZoneInfo(self.config.general.timezone)
        now = datetime.fromtimestamp(self.clock(), zone)
        return await tessie.charge_history(site_id, now - timedelta(days=days), now, zone.key)

    async def reconcile(self, records: list[ChargeRecord], days: float = HISTORY_DAYS) -> Plan:
        """Apply the reconciliation plan of fetched charge history in one transaction (pricing the sessions
        only the history knows from Prometheus)."""
        sessions = self.storage.sessions_with_din(self.clock() - (days + 1) * 86400)
        known = self.storage.target_ids()
        result = plan(records, sessions, known, deferred=self._live_may_explain)
        inserts = []
        if result.inserts:
            # an hour past the last end, so the last billing hour is complete when its prices are out
            prices = await self._prices(min(r.start for r in result.inserts) - 3600,
                                        min(self.clock(), max(r.start + r.duration_s for r in result.inserts) + 3600))
            inserts = [self._from_record(record, prices, {**known, **result.learned}, sessions)
                       for record in result.inserts]
        learned = {target: (vin, self._name_vehicle(vin, {})) for target, vin in result.learned.items()}
        inserted = self.storage.apply_reconciliation(
            [(m.session_id, m.record.energy_wh, m.record.target_id) for m in result.matches], inserts, learned)
        if result.matches or inserted or result.learned:
            self.log.info("charge history: %d sessions matched, %d inserted, %d vehicles learned",
                          len(result.matches), len(inserted), len(result.learned))
        for session in inserted:
            self.on_event({"type": "session_completed", "session": session.public()})
        return result

    def _live_may_explain(self, record: ChargeRecord) -> bool:
        """The live data has not had its say on this charge yet: it ends after the watermark (its samples are
        not evaluated), or its unit has a session open since before it ended (still in its grace period)."""
        end = record.start + record.duration_s
        watermark = self.storage.watermark()
        if self.source is not None and watermark is not None and end > watermark:
            return True
        state = self.working.states.get(record.din)
        return state is not None and state.open is not None and state.open.start <= end

    def _from_record(self, record: ChargeRecord, prices: dict[float, float], targets: dict[str, str],
                     sessions: list[Session]) -> Session:
        """A session only the charge history knows: its energy spread evenly over its duration."""
        end = record.start + record.duration_s
        intervals: dict[float, float] = {}
        watts = record.energy_wh * 3600.0 / record.duration_s
        for part_end, wh in segment_energy(record.start, watts, end, watts).items():
            intervals[part_end] = intervals.get(part_end, 0.0) + wh
        vin = targets.get(record.target_id or "")
        vehicle = (self.config.vehicles.target_ids.get(record.target_id or "")
                   or self._name_vehicle(vin, {}))
        unit = (configured_unit_name(self.config.energy_site.unit_names, record.din)
                or (self.working.names.get(record.din) if self.source is FLEET else None)
                or next((s.unit for s in sessions if s.din == record.din), None)
                or serial_of(record.din))
        return Session(unit=unit, din=record.din, vin=vin, vehicle=vehicle, start=record.start, end=end,
                       duration_s=record.duration_s, energy_wh=record.energy_wh, peak_w=watts, average_w=watts,
                       meter_energy_wh=None, **self._cost(intervals, prices), intervals=intervals, gap_s=0.0,
                       source="telemetry_history", reconciliation="inserted", metered_energy_wh=record.energy_wh,
                       target_id=record.target_id, energy_site_id=self.site_id)

    def configured_units(self) -> frozenset[str]:
        """The units the session source is configured with: energy_site.unit_names with Fleet, the chargers
        of wall_connectors.chargers with the local API (none while auto mode has not chosen)."""
        wanted = self.config.sessions.source
        source = FLEET if wanted == "fleet" else LOCAL if wanted == "local" else self.source
        if source is FLEET:
            return frozenset(self.config.energy_site.unit_names.values())
        if source is LOCAL:
            return frozenset(charger.name for charger in self.config.wall_connectors.chargers)
        return frozenset()

    def view(self) -> SessionsView:
        """The frozen view of the last evaluation: units, open sessions with their cost so far, latest power."""
        working = self.working
        seen = frozenset(working.names.values())
        return SessionsView(evaluated_at=working.last_evaluation or self.clock(), watermark=self.storage.watermark(),
                            seen=seen, units=seen | self.configured_units(), in_progress=tuple(self.in_progress()),
                            power=tuple((working.names.get(key, key), t, watts)
                                        for key, (t, watts) in working.power.items()))

    def in_progress(self) -> list[OpenSessionView]:
        """Open sessions with their energy and estimated cost so far."""
        rows = []
        for key, state in self.working.states.items():
            if state.open is None:
                continue
            cost = session_bill(state.open.intervals, self.working.prices, self.tariff, self.clock())
            rows.append(OpenSessionView(
                key=key, unit=self.working.names.get(key, key), start=state.open.start, vin=state.open.vin,
                vehicle=self._name_vehicle(state.open.vin, {}), energy_wh=state.open.energy_wh,
                peak_w=state.open.peak_w, power_w=self.working.power.get(key, (None, None))[1],
                estimated_cost=cost.full, estimated_supply_cost=cost.supply, estimated_delivery_cost=cost.delivery))
        return rows
