"""The simulated world: chargers, vehicles, scheduled events, stepped lazily in 1 s sim steps.

Every access first calls ``sync()``, which steps from the last simulated second up to
``floor(clock.now())``; steps with nothing charging are skipped in one jump (only the
temperatures need a closed-form update), so long idle gaps and clock jumps stay cheap while
charging time is always integrated second by second. Step ``t`` covers [t, t+1) with the power
computed at its start; ``current_power`` is the power of the step starting now.

State here is mutable on purpose (it is a simulation); everything leaving the model is a
frozen snapshot (``simulator.snapshots``) or plain JSON-ready data.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from simulator import physics
from simulator.clock import Clock
from simulator.config import ChargerConfig, Event, Scenario, VehicleConfig
from simulator.prices import PriceSeries
from simulator.snapshots import ChargerSnapshot, Lifetime, VehicleSnapshot
from simulator.truth import ChargeRecord, SessionTruth, TruthLog, VehicleCharge, charge_record

log = logging.getLogger("simulator.model")

CHARGING = "Charging"


@dataclass
class ChargerState:
    cfg: ChargerConfig
    counters: dict[str, Any]
    vin: str | None = None
    plug_t: int | None = None
    close_t: int | None = None
    power_w: float = 0.0  # power of the last simulated step
    session_energy_ws: float = 0.0
    delivered_ws: float = 0.0  # since origin, for lifetime.energy_wh
    reported_energy_wh: int = 0  # lifetime.energy_wh when it updates only at session end
    charging_s: int = 0
    temps: dict[str, float] = field(default_factory=dict)
    dip: tuple[int, float] | None = None  # (until, watts)
    temp_override: tuple[int, dict[str, float]] | None = None
    alert: tuple[int, tuple[int, ...], int | None] | None = None
    session: SessionTruth | None = None


@dataclass
class VehicleState:
    cfg: VehicleConfig
    soc: float
    charge_limit: int
    charging_state: str = "Disconnected"
    charger: str | None = None
    awake: bool = True
    last_active: int = 0
    cached: VehicleSnapshot | None = None
    energy_added_kwh: float = 0.0
    amps: int | None = None  # set_charging_amps


class Model:
    """In-process simulation; the HTTP layers call its methods after ``sync()``."""

    def __init__(self, scenario: Scenario, clock: Clock) -> None:
        self.scenario = scenario
        self.clock = clock
        self.origin = int(math.floor(clock.origin))
        self.t = self.origin
        self.tz = ZoneInfo(scenario.site.time_zone)
        self.prices = PriceSeries(scenario.prices, self.origin, scenario.site.time_zone)
        self.truth = TruthLog()
        self.chargers: dict[str, ChargerState] = {}
        for c in scenario.chargers:
            counters = dict(vars(c.lifetime))
            state = ChargerState(c, counters, reported_energy_wh=c.lifetime.energy_wh)
            state.temps = physics.temperature_targets(c.ambient_c, 0.0)
            self.chargers[c.name] = state
        self.vehicles: dict[str, VehicleState] = {
            v.vin: VehicleState(v, v.soc, v.charge_limit, last_active=self.origin) for v in scenario.vehicles}
        self.groups: dict[str, list[str]] = {}
        for c in scenario.chargers:
            head = c.leader if c.role == "follower" else c.name
            self.groups.setdefault(head, []).append(c.name)
        self._pending: deque[tuple[int, Event]] = deque(
            (self.origin + int(round(e.at_s or 0.0)), e) for e in scenario.events)
        self._history = [
            ChargeRecord(self._din(h.charger), self.origin + int(h.start_s), int(h.duration_s), h.energy_wh,
                         h.target_id, self.origin + h.start_s + h.duration_s + scenario.telemetry.delay_s)
            for h in scenario.telemetry.history]
        for v in self.vehicles.values():
            if v.cfg.asleep:
                self._fall_asleep(v, self.origin)

    # --- time ---------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.clock.now()

    def sync(self) -> int:
        """Simulate every whole second up to now; returns the model time."""
        target = int(math.floor(self.clock.now()))
        while self.t < target:
            self._apply_due_events()
            self._sleep_check()
            if not any(v.charging_state == CHARGING for v in self.vehicles.values()):
                until = min(target, self._next_wakeup())
                if until > self.t:
                    self._idle(until - self.t)
                    self.t = until
                    continue
            self._step()
            self.t += 1
        self._apply_due_events()
        self._sleep_check()
        return self.t

    def _next_wakeup(self) -> int:
        times = [self._pending[0][0]] if self._pending else []
        for v in self.vehicles.values():
            if v.awake and self._may_sleep(v):
                times.append(v.last_active + int(math.ceil(v.cfg.sleep_after_s)))
        return max(self.t + 1, min(times)) if times else 2**62

    def _idle(self, seconds: int) -> None:
        for ch in self.chargers.values():
            ch.power_w = 0.0
            targets = physics.temperature_targets(ch.cfg.ambient_c, 0.0)
            for k, tau in physics.THERMAL_TAU_S.items():
                ch.temps[k] = physics.relax(ch.temps[k], targets[k], seconds, tau)

    def _step(self) -> None:
        t = self.t
        powers = self._powers(t)
        for name, ch in self.chargers.items():
            p = powers.get(name, 0.0)
            v = self.vehicles[ch.vin] if ch.vin else None
            if v is not None and v.charging_state == CHARGING:
                ch.charging_s += 1
                if p > 0:
                    ch.session_energy_ws += p
                    ch.delivered_ws += p
                    v.soc += physics.soc_gain(v.cfg, p)
                    v.energy_added_kwh += p / 3.6e6 * v.cfg.efficiency
                    assert ch.session is not None
                    ch.session.add_step(t, p)
                    ch.session.battery_ws += p * v.cfg.efficiency
            ch.power_w = p
            targets = physics.temperature_targets(ch.cfg.ambient_c, p)
            for k, tau in physics.THERMAL_TAU_S.items():
                ch.temps[k] = physics.relax(ch.temps[k], targets[k], 1, tau)
        for ch in self.chargers.values():
            v = self.vehicles[ch.vin] if ch.vin else None
            if v is not None and v.charging_state == CHARGING and v.soc >= v.charge_limit - 1e-9:
                v.soc = max(v.soc, float(v.charge_limit))
                self._open(ch, v, t + 1, "Complete", under_load=False)

    def _powers(self, t: int) -> dict[str, float]:
        """Wall power of every charging unit for the step starting at ``t`` (pure)."""
        out: dict[str, float] = {}
        for head, names in self.groups.items():
            desired_w: dict[str, float] = {}
            for name in names:
                ch = self.chargers[name]
                v = self.vehicles[ch.vin] if ch.vin else None
                if v is None or v.charging_state != CHARGING or ch.close_t is None:
                    continue
                desired_w[name] = physics.desired_power_w(v.cfg, ch.cfg, v.soc, v.charge_limit, t - ch.close_t,
                                                          v.amps)
            demand_a = {name: w / self.chargers[name].cfg.volts_for_power for name, w in desired_w.items()}
            granted = physics.share_current(demand_a, self.chargers[head].cfg.sharing_max_current_a)
            for name, amps in granted.items():
                ch = self.chargers[name]
                # keep the car's own figure unless sharing cut it (avoids a W -> A -> W round trip)
                p = desired_w[name] if amps >= demand_a[name] else amps * ch.cfg.volts_for_power
                if ch.dip is not None and t < ch.dip[0]:
                    v = self.vehicles[ch.vin]  # type: ignore[index]
                    p = min(ch.dip[1], physics.power_to_reach_w(v.cfg, v.soc, v.charge_limit))
                out[name] = p
        return out

    def current_power(self, charger: str) -> float:
        return self._powers(self.t).get(charger, 0.0)

    # --- transitions --------------------------------------------------------------------------

    def _close(self, ch: ChargerState, v: VehicleState, t: int) -> None:
        v.charging_state = CHARGING
        ch.close_t = t
        c = ch.counters
        c["contactor_cycles"] += 1
        c["charge_starts"] += 1
        n = c["charge_starts"]
        c["avg_startup_temp"] = round(c["avg_startup_temp"] + (ch.temps["handle"] - c["avg_startup_temp"]) / n, 1)
        self._touch(v, t, wake=False)

    def _open(self, ch: ChargerState, v: VehicleState, t: int, new_state: str, *, under_load: bool = True) -> None:
        """Open the contactor; counts a loaded cycle when current was still flowing."""
        if under_load and ch.power_w > 0:
            ch.counters["contactor_cycles_loaded"] += 1
        v.charging_state = new_state
        ch.close_t = None
        v.last_active = max(v.last_active, t)

    def _touch(self, v: VehicleState, t: int, *, wake: bool = True) -> None:
        if wake and not v.awake:
            v.awake, v.cached = True, None
        if v.awake:
            v.last_active = t

    def _may_sleep(self, v: VehicleState) -> bool:
        return v.charging_state != CHARGING or self.scenario.quirks.stale_cache_while_charging

    def _sleep_check(self) -> None:
        for v in self.vehicles.values():
            if v.awake and self._may_sleep(v) and self.t - v.last_active >= v.cfg.sleep_after_s:
                self._fall_asleep(v, self.t)

    def _fall_asleep(self, v: VehicleState, t: float) -> None:
        v.cached = self._vehicle_snapshot(v, t, "asleep")
        v.awake = False

    def _plug_in(self, v: VehicleState, ch: ChargerState, t: int) -> str | None:
        if v.charger is not None:
            return f"vehicle already plugged into {v.charger}"
        if ch.vin is not None:
            return f"charger occupied by {ch.vin}"
        ch.vin, ch.plug_t, ch.session_energy_ws = v.cfg.vin, t, 0.0
        ch.counters["connector_cycles"] += 1
        ch.session = SessionTruth(ch.cfg.name, ch.cfg.din, v.cfg.vin, v.cfg.target_id, t, soc_start=v.soc)
        self.truth.sessions.append(ch.session)
        v.charger, v.energy_added_kwh, v.charging_state = ch.cfg.name, 0.0, "Stopped"
        self._touch(v, t, wake=not self.scenario.quirks.stale_cache_while_charging)
        if v.cfg.autostart:
            if v.soc >= v.charge_limit:
                v.charging_state = "Complete"
            else:
                self._close(ch, v, t)
        return None

    def _unplug(self, v: VehicleState, t: int) -> str | None:
        if v.charger is None:
            return "vehicle not plugged in"
        ch = self.chargers[v.charger]
        if v.charging_state == CHARGING:
            self._open(ch, v, t, "Stopped")
        if ch.session is not None:
            ch.session.unplug, ch.session.soc_end = t, v.soc
            self._home_charge(v, ch.session)
        ch.session = None
        ch.vin = ch.plug_t = None
        ch.reported_energy_wh = ch.cfg.lifetime.energy_wh + int(ch.delivered_ws / 3600.0)
        v.charger, v.charging_state = None, "Disconnected"
        self._touch(v, t)
        return None

    def _charge(self, v: VehicleState, **fields: Any) -> None:
        """Append a Tessie charge record with the next id; Tessie lists it ``charges_delay`` after it ends."""
        tel = self.scenario.telemetry
        charge = VehicleCharge(charge_id=1001 + len(self.truth.vehicle_charges), vin=v.cfg.vin,
                               odometer_miles=v.cfg.odometer_miles, miles_per_kwh=v.cfg.range_miles / v.cfg.battery_kwh,
                               visible_at=fields["end"] + tel.charges_delay_s, **fields)
        self.truth.vehicle_charges.append(charge)

    def _home_charge(self, v: VehicleState, session: SessionTruth) -> None:
        """The car's record of a home session that charged: from its first to its last power, the energy
        drawn and the energy the battery took, priced at Tessie's home rate."""
        if session.first_power is None or session.last_power is None:
            return
        tel = self.scenario.telemetry
        used = session.energy_wh / 1000.0
        self._charge(v, start=session.first_power, end=session.last_power, location=tel.home_location,
                     latitude=v.cfg.latitude, longitude=v.cfg.longitude, supercharger=False,
                     energy_added_kwh=session.battery_ws / 3.6e6, energy_used_kwh=used,
                     starting_battery=session.soc_start or 0.0, ending_battery=v.soc,
                     cost=used * tel.home_cost_per_kwh, session_index=self.truth.sessions.index(session))

    def _away_charge(self, v: VehicleState, e: Event, t: int) -> str | None:
        """A charge elsewhere that ends now: the battery comes back at the event's state of charge."""
        away = e.away
        assert away is not None
        if v.charger is not None:
            return "the car is plugged in"
        start = t - int(round(e.duration_s))
        if any(c.vin == v.cfg.vin and c.end > start for c in self.truth.vehicle_charges):
            return "the car was charging elsewhere then (shorten the duration)"
        soc = max(v.soc, away.soc)
        added = (soc - v.soc) / 100.0 * v.cfg.battery_kwh
        used = added / away.efficiency
        self._charge(v, start=start, end=t, location=away.location,
                     latitude=away.latitude, longitude=away.longitude, supercharger=away.supercharger,
                     energy_added_kwh=added, energy_used_kwh=used, starting_battery=v.soc, ending_battery=soc,
                     cost=used * away.price_per_kwh)
        v.soc = soc
        self._touch(v, t)
        return None

    def charges(self, vin: str) -> list[VehicleCharge]:
        """The car's charges Tessie lists now (ended at least ``charges_delay`` ago), oldest first."""
        return [c for c in self.truth.vehicle_charges if c.vin == vin and c.visible_at <= self.now]

    def _start(self, v: VehicleState, t: int) -> tuple[bool, str | None]:
        if v.charger is None:
            return False, "disconnected"
        if v.charging_state == CHARGING:
            return False, "is_charging"
        if v.soc >= v.charge_limit:
            v.charging_state = "Complete"
            return False, "complete"
        self._close(self.chargers[v.charger], v, t)
        return True, None

    def _stop(self, v: VehicleState, t: int) -> tuple[bool, str | None]:
        if v.charging_state != CHARGING:
            return False, "not_charging"
        self._open(self.chargers[v.charger], v, t, "Stopped")  # type: ignore[index]
        return True, None

    # --- events and commands ------------------------------------------------------------------

    def _apply_due_events(self) -> None:
        while self._pending and self._pending[0][0] <= self.t:
            _, event = self._pending.popleft()
            self._apply(event, self.t)

    def apply_event(self, event: Event) -> dict[str, Any]:
        """Apply a live event now (after catching up); returns its truth-log entry."""
        self.sync()
        return self._apply(event, self.t)

    def _apply(self, e: Event, t: int) -> dict[str, Any]:
        note = self._apply_to_charger(e, t) if e.vehicle is None else self._apply_to_vehicle(e, t)
        entry = {"t": t, "kind": e.kind, "vehicle": e.vehicle, "charger": e.charger, "applied": note is None,
                 "note": note}
        self.truth.events.append(entry)
        log.info("event %s vehicle=%s charger=%s%s", e.kind, e.vehicle, e.charger, f" ignored: {note}" if note else "")
        return entry

    def _apply_to_vehicle(self, e: Event, t: int) -> str | None:
        """plug_in, unplug, drive, away_charge, user_start, user_stop, sleep, wake; returns why it was ignored."""
        v = self.vehicles[e.vehicle]  # type: ignore[index]
        if e.kind == "plug_in":
            return self._plug_in(v, self.chargers[e.charger], t)  # type: ignore[index]
        if e.kind == "unplug":
            return self._unplug(v, t)
        if e.kind == "drive":   # the day's driving: the battery comes back lower (never while plugged in)
            if v.charger is not None:
                return "the car is plugged in"
            v.soc = min(v.soc, e.price)
            self._touch(v, t)
            return None
        if e.kind == "away_charge":
            return self._away_charge(v, e, t)
        if e.kind in ("user_start", "user_stop"):
            self._touch(v, t)
            ok, reason = (self._start if e.kind == "user_start" else self._stop)(v, t)
            return None if ok else reason
        if e.kind == "sleep":
            if v.charging_state == CHARGING and not self.scenario.quirks.stale_cache_while_charging:
                return "a charging car stays awake (enable quirks.stale_cache_while_charging)"
            if v.awake:
                self._fall_asleep(v, t)
            return None
        self._touch(v, t)  # wake
        return None

    def _apply_to_charger(self, e: Event, t: int) -> str | None:
        """dip, temperature, alert (per charger) and price (site-wide)."""
        until = t + int(round(e.duration_s))
        if e.kind == "price":
            self.prices.add_override(t, t + e.duration_s, e.price)
            return None
        ch = self.chargers[e.charger]  # type: ignore[index]
        if e.kind == "dip":
            ch.dip = (until, e.power_w)
        elif e.kind == "temperature":
            ch.temp_override = (until, dict(e.temps))
        elif e.kind == "alert":
            ch.alert = (until, e.codes, e.fault_state)
            ch.counters["alert_count"] += len(e.codes)
        return None

    def command(self, vin: str, name: str, args: dict[str, str]) -> tuple[bool, str | None]:
        """A Tessie command: wakes the car, acts, and is recorded in the truth log."""
        self.sync()
        t, v = self.t, self.vehicles[vin]
        self._touch(v, t)
        if name == "start_charging":
            result = self._start(v, t)
        elif name == "stop_charging":
            result = self._stop(v, t)
        elif name == "set_charge_limit":
            result = self._set_limit(v, args.get("percent"), t)
        elif name == "set_charging_amps":
            result = self._set_amps(v, args.get("amps"))
        else:
            raise KeyError(name)
        self.truth.commands.append({"t": self.now, "vin": vin, "command": name, "result": result[0],
                                    "reason": result[1]})
        log.info("command %s vin=%s result=%s reason=%s", name, vin, result[0], result[1])
        return result

    def _set_limit(self, v: VehicleState, percent: str | None, t: int) -> tuple[bool, str | None]:
        try:
            limit = int(percent or "")
        except ValueError:
            return False, "invalid_percent"
        if not 50 <= limit <= 100:
            return False, "invalid_percent"
        v.charge_limit = limit
        if v.charging_state == CHARGING and v.soc >= limit:
            self._open(self.chargers[v.charger], v, t, "Complete")  # type: ignore[index]
        elif v.charging_state == "Complete" and v.soc < limit and v.charger is not None:
            self._close(self.chargers[v.charger], v, t)
        return True, None

    def _set_amps(self, v: VehicleState, amps: str | None) -> tuple[bool, str | None]:
        try:
            value = int(amps or "")
        except ValueError:
            return False, "invalid_amps"
        if not 1 <= value <= 80:
            return False, "invalid_amps"
        v.amps = value
        return True, None

    def wake(self, vin: str) -> bool:
        self.sync()
        self._touch(self.vehicles[vin], self.t)
        return True

    # --- views --------------------------------------------------------------------------------

    def _din(self, charger: str) -> str:
        return self.scenario.charger(charger).din

    def charger_snapshot(self, name: str) -> ChargerSnapshot:
        ch, now = self.chargers[name], self.now
        t = self.t
        contactor = ch.vin is not None and self.vehicles[ch.vin].charging_state == CHARGING
        temps = dict(ch.temps)
        if ch.temp_override and t < ch.temp_override[0]:
            temps.update(ch.temp_override[1])
        alert = ch.alert if ch.alert and t < ch.alert[0] else None
        c = ch.counters
        live = ch.cfg.lifetime_energy == "live"
        lifetime = Lifetime(
            contactor_cycles=c["contactor_cycles"], contactor_cycles_loaded=c["contactor_cycles_loaded"],
            alert_count=c["alert_count"], thermal_foldbacks=c["thermal_foldbacks"],
            avg_startup_temp=c["avg_startup_temp"], charge_starts=c["charge_starts"],
            energy_wh=ch.cfg.lifetime.energy_wh + int(ch.delivered_ws / 3600.0) if live else ch.reported_energy_wh,
            connector_cycles=c["connector_cycles"], uptime_s=c["uptime_s"] + int(now - self.origin),
            charging_time_s=c["charging_time_s"] + ch.charging_s)
        return ChargerSnapshot(
            cfg=ch.cfg, t=now, seed=self.scenario.seed, vehicle_connected=ch.vin is not None,
            contactor_closed=contactor, power_w=self.current_power(name) if contactor else 0.0,
            session_s=int(now - ch.plug_t) if ch.plug_t is not None else 0,
            session_energy_wh=ch.session_energy_ws / 3600.0, uptime_s=ch.cfg.uptime_s + int(now - self.origin),
            handle_c=temps["handle"], pcba_c=temps["pcba"], mcu_c=temps["mcu"], lifetime=lifetime, vin=ch.vin,
            alerts=alert[1] if alert else (), fault_state=alert[2] if alert and alert[2] is not None else 2)

    def _vehicle_snapshot(self, v: VehicleState, t: float, state: str) -> VehicleSnapshot:
        common = dict(cfg=v.cfg, t=t, state=state, soc=v.soc, charge_limit=v.charge_limit,
                      charging_state=v.charging_state, energy_added_kwh=v.energy_added_kwh)
        if v.charger is None:
            return VehicleSnapshot(**common, plugged=False, power_w=0.0, voltage_v=0.0, current_a=0.0, phases=None,
                                   pilot_a=0, charge_amps=v.amps or 48, cable="<invalid>",
                                   ambient_c=self.scenario.chargers[0].ambient_c)
        c = self.chargers[v.charger].cfg
        charging = v.charging_state == CHARGING
        power = self.current_power(c.name) if charging else 0.0
        pilot = int(c.max_current_a)
        three = c.wiring == "three_phase"
        return VehicleSnapshot(**common, plugged=True, power_w=power, voltage_v=c.grid_v if charging else 2.0,
                               current_a=power / c.volts_for_power, phases=3 if three else 1, pilot_a=pilot,
                               charge_amps=min(v.amps or pilot, pilot), cable="IEC" if three else "SAE",
                               ambient_c=c.ambient_c)

    def vehicle_view(self, vin: str, *, use_cache: bool = True) -> VehicleSnapshot | None:
        """What Tessie returns: live when awake; the cached state when asleep (None if the caller
        refuses the cache). Reading never wakes the car."""
        v = self.vehicles[vin]
        if v.awake:
            return self._vehicle_snapshot(v, self.now, "online")
        return v.cached if use_cache else None

    def vehicle_status(self, vin: str) -> str:
        v = self.vehicles[vin]
        if not v.awake:
            return "asleep"
        if self._may_sleep(v) and self.t - v.last_active >= v.cfg.sleep_after_s / 2:
            return "waiting_for_sleep"
        return "awake"

    def charge_records(self) -> list[ChargeRecord]:
        """Fleet charge history (including records not yet visible), oldest first."""
        tel = self.scenario.telemetry
        done = [charge_record(s, tel.meter_error, tel.delay_s) for s in self.truth.sessions if s.unplug is not None]
        return sorted(self._history + done, key=lambda r: r.start)

    def site_power(self) -> dict[str, float] | None:
        flows = self.scenario.site.power_flows
        if flows is None:
            return None
        local = datetime.fromtimestamp(self.now, self.tz)
        hour = local.hour + local.minute / 60.0
        solar = flows.solar_peak_kw * 1000.0 * max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0))
        chargers = sum(self.current_power(name) for name in self.chargers)
        load = flows.base_load_kw * 1000.0 + chargers
        return {"solar_power": solar, "load_power": load, "grid_power": load - solar}
