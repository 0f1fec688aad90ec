"""The smart-charging driver: read the market and the vehicles from Prometheus, decide per vehicle
(`smart_charging.decide`), send or simulate the command, and persist memories and the action log
in one transaction. Decisions are pure; this module only fetches, executes and records.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

from billing.settings import tariff_for
from upstreams.tessie import unit_name, vehicle_name
from servicekit.config import Config
from servicekit.errors import UpstreamError
from session_store.prometheus import Prometheus, first_value
from session_store.planning import Planning
from session_store.smart_charging import (
    Decision, Market, Memory, Params, VehicleNow, decide, decide_planned, remember, status_code,
)
from session_store.views import SmartChargingView, VehicleStatus
from session_store.records import ActionRecord
from session_store.storage import Storage

# Per signal: its history (one sample per price or billed period, so every one weighs once) and its rank.
SIGNALS = {
    "billed": ("electricity_price_billed_cents_per_kwh", "electricity_price_hour_projected_percentile_rank_percent"),
    "five_minute": ("electricity_price_5m_cents_per_kwh", "electricity_price_percentile_rank_percent"),
}
SUCCESS_REASONS = {"is_charging", "not_charging"}   # Tessie says it is already in the requested state


class Commands(Protocol):
    async def send(self, vin: str, kind: str) -> tuple[bool, str | None]:
        """(ok, detail) for start or stop; raises UpstreamError for transport failures."""


class TessieCommands:
    """Live mode: start_charging / stop_charging through Tessie (which wakes the car itself)."""

    def __init__(self, tessie: Any) -> None:
        self.tessie = tessie

    async def send(self, vin: str, kind: str) -> tuple[bool, str | None]:
        result = await self.tessie.command(vin, f"{kind}_charging")
        return result.ok or result.reason in SUCCESS_REASONS, result.reason


@dataclass
class SmartState:
    """The driver's own working state between evaluations; others read `SmartChargingDriver.view()`."""

    market: Market | None = None
    vehicles: dict[str, VehicleNow] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    memories: dict[str, Memory] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    last_evaluation: float | None = None
    fail_safe: dict[str, int] = field(default_factory=dict)   # reason -> decisions taken for it


def settle_time(config: Config) -> float:
    """How long a unit may still report power after our stop: two Fleet polls and two scrapes behind,
    plus half a minute for the command to reach the car and the car to ramp down (120 s by default)."""
    return 2 * (config.energy_site.live_status_interval + config.prometheus.scrape_interval) + 30


class SmartChargingDriver:
    """Evaluates every vehicle and publishes a frozen `SmartChargingView` after each evaluation and each
    override; it is the API's `SmartChargingControl`."""

    def __init__(self, config: Config, storage: Storage, prometheus: Prometheus, commands: Commands | None,
                 log: logging.Logger, session_starts: Callable[[], dict[str, float]] = dict,
                 clock: Callable[[], float] = time.time, planning: Planning | None = None) -> None:
        settings = config.smart_charging
        self.config = config
        self.storage = storage
        self.prometheus = prometheus
        self.commands = commands
        self.log = log
        self.session_starts = session_starts   # unit key (DIN) -> start of its open session
        self.planning = planning               # cars with a departure set follow their plan
        self.clock = clock
        self.lookback = f"{int(settings.lookback_days * 86400)}s"
        self.period_s = tariff_for(config).period_length()   # seconds per billed price (ComEd: an hour)
        self.params = Params(max_price_age_s=settings.max_price_age, min_history_days=settings.min_history_days,
                             min_interval_s=settings.min_interval,
                             dry_run=not settings.control_enabled or commands is None,
                             settle_s=settle_time(config))
        self.state = SmartState(memories=storage.load_memories())
        self._view = self._make_view()

    def view(self) -> SmartChargingView:
        return self._view

    def now(self) -> float:
        return self.clock()

    def _make_view(self) -> SmartChargingView:
        state = self.state
        vehicles = []
        for vin in sorted(set(state.vehicles) | set(state.memories)):
            vehicle, memory, decision = state.vehicles.get(vin), state.memories.get(vin), state.decisions.get(vin)
            vehicles.append(VehicleStatus(
                vin=vin, vehicle=state.names.get(vin), unit=vehicle.unit if vehicle else None,
                plugged=bool(vehicle and vehicle.plugged), charging=bool(vehicle and vehicle.charging),
                paused_by_us=bool(memory and memory.paused_by_us), last_decision=decision.reason if decision else None,
                last_command_at=memory.last_command_at if memory else None,
                override_until=memory.override_until if memory else None,
                status=status_code(vehicle, memory, decision)))
        return SmartChargingView(dry_run=self.params.dry_run, signal=self.config.smart_charging.signal,
                                 evaluated_at=state.last_evaluation, market=state.market, vehicles=tuple(vehicles),
                                 fail_safe=dict(state.fail_safe),
                                 planning=self.planning.view() if self.planning else None)

    async def market(self) -> Market:
        """The signal and its thresholds: percentiles over the signal's own history (billed hourly
        prices for the billed signal, so every hour weighs once)."""
        settings = self.config.smart_charging
        history, rank_series = SIGNALS[settings.signal]
        seconds_per_sample = self.period_s if settings.signal == "billed" else 300.0
        try:
            five = first_value(await self.prometheus.query("max(electricity_price_cents_per_kwh)"))
            projected = first_value(await self.prometheus.query("max(electricity_price_hour_projected_cents_per_kwh)"))
            end = first_value(await self.prometheus.query("max(electricity_price_interval_end_timestamp_seconds)"))
            stop = first_value(await self.prometheus.query(
                f"max(quantile_over_time({settings.stop_percentile / 100:g}, {history}[{self.lookback}]))"))
            resume = first_value(await self.prometheus.query(
                f"max(quantile_over_time({settings.resume_percentile / 100:g}, {history}[{self.lookback}]))"))
            count = first_value(await self.prometheus.query(f"max(count_over_time({history}[{self.lookback}]))"))
            rank = first_value(await self.prometheus.query(f"max({rank_series})"))
        except UpstreamError:
            return Market(None, None, None, None, 0.0, prometheus_ok=False, signal=settings.signal)
        age = None if end is None else max(0.0, self.clock() - end)
        price = projected if settings.signal == "billed" else five
        return Market(price, age, stop, resume, (count or 0.0) * seconds_per_sample / 86400, price_rank=rank,
                      signal=settings.signal, five_minute_price=five, hour_projected=projected)

    async def vehicles(self) -> dict[str, VehicleNow]:
        """Plugged-in vehicles from the Fleet view (fresher than the cars' own data): VIN and unit power."""
        threshold = self.config.sessions.power_threshold_w
        infos = await self.prometheus.query("tesla_wall_connector_vehicle_info")
        power = {item["metric"].get("din"): float(item["value"][1])
                 for item in await self.prometheus.query("tesla_wall_connector_power_watts")}
        starts = self.session_starts()
        found = {}
        for item in infos:
            labels = item["metric"]
            vin, din = labels.get("vin"), labels.get("din")
            if not vin:
                continue
            # the rule of every component: vehicles.names, else the Fleet exporter's name (Tessie's display name)
            self.state.names[vin] = vehicle_name(self.config.vehicles.names, vin, labels.get("vehicle"))
            unit = labels.get("unit") or (unit_name(self.config.energy_site.unit_names, din) if din else None)
            found[vin] = VehicleNow(vin, plugged=True, charging=power.get(din, 0.0) > threshold,
                                    session_start=starts.get(din), unit=unit, din=din)
        return found

    async def evaluate(self) -> list[ActionRecord]:
        now = self.clock()
        market = await self.market()
        try:
            vehicles = await self.vehicles() if market.prometheus_ok else {}
        except UpstreamError:
            market, vehicles = Market(None, None, None, None, 0.0, prometheus_ok=False, signal=market.signal), {}
        verdicts = await self.planning.evaluate(now, market, vehicles, self.params, self.state.names,
                                                market.stop_threshold) if self.planning else {}
        memories = dict(self.state.memories)
        records: list[ActionRecord] = []
        decisions = {}
        known = market.prometheus_ok   # without Prometheus a paused car is assumed still plugged: resume it
        for vin in sorted(set(vehicles) | {v for v, m in memories.items() if m.paused_by_us}):
            vehicle = vehicles.get(vin) or VehicleNow(vin, plugged=not known, charging=False)
            memory = memories.get(vin, Memory())
            if vin in verdicts:
                decision = decide_planned(*verdicts[vin], vehicle, memory, self.params, now)
            elif memory.paused_by_us and (memory.paused_for or "").startswith("plan_"):
                # its plan ended (departure cleared or passed) while it held the car: the plan's pause ends too
                decision = decide_planned(True, "plan_ended", vehicle, memory, self.params, now)
            else:
                decision = decide(market, vehicle, memory, self.params, now)
            decisions[vin] = decision
            ok, outcome, detail = await self._execute(vin, decision)
            memories[vin] = remember(memory, decision, vehicle, ok, now, self.params)
            if decision.reason.startswith("fail_safe_"):
                self.state.fail_safe[decision.reason] = self.state.fail_safe.get(decision.reason, 0) + 1
            if decision.action is not None or decision.reason != self.state.decisions.get(vin, Decision(None, "")).reason:
                records.append(ActionRecord(now, vin, self.state.names.get(vin), decision.action, decision.reason,
                                            outcome, market.price, market.stop_threshold, market.resume_threshold,
                                            detail))
        self.storage.save_smart_charging(memories, records)
        for record in records:
            if record.action is not None or record.reason.startswith(("fail_safe", "user_", "manual")):
                self.log.info("smart charging: %s %s (%s) -> %s%s", record.vehicle or record.vin,
                              record.action or "no action", record.reason, record.outcome,
                              f": {record.detail}" if record.detail else "")
        self.state = SmartState(market, vehicles, decisions, memories, self.state.names, now, self.state.fail_safe)
        self._view = self._make_view()
        return records

    def set_override(self, vin: str, until: float) -> ActionRecord:
        """Leave the vehicle alone until `until` (resuming it first if we paused it); kept across restarts."""
        memories = dict(self.state.memories)
        memories[vin] = replace(memories.get(vin, Memory()), override_until=until)
        record = ActionRecord(self.clock(), vin, self.state.names.get(vin), None, "manual_override_set", "recorded",
                              None, None, None, f"until {until:.0f}")
        self.storage.save_smart_charging({vin: memories[vin]}, [record])
        self.state.memories = memories
        self._view = self._make_view()
        self.log.info("smart charging: manual override for %s until %s", self.state.names.get(vin, vin),
                      time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(until)))
        return record

    async def _execute(self, vin: str, decision: Decision) -> tuple[bool | None, str, str | None]:
        if decision.action is None:
            return None, "skipped", None
        if decision.action.endswith("simulated") or self.commands is None:
            return True, "simulated", None
        try:
            ok, detail = await self.commands.send(vin, decision.kind or "")
        except UpstreamError as error:
            return False, "failed", f"{error.outcome}: {error}"
        return ok, "sent" if ok else "failed", detail
