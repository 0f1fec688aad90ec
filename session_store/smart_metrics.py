"""Smart-charging metrics (prefix `smart_charging_`), read from the driver's state at each render.

    smart_charging_status{state="paused",vehicle="Blue",vin="5YJ3..."} 1.0
    smart_charging_actions_total{action="stop_simulated",outcome="simulated"} 3.0
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric as Family

from servicekit.metrics import ENUM, Metric, build_families
from session_store.smart_charging import Market
from session_store.smart_loop import SmartChargingDriver
from session_store.storage import Storage

STATUS = {0: "not_charging", 1: "charging", 2: "paused", 3: "paused_simulated", 4: "user_override",
          5: "manual_override", 6: "fail_safe"}


def status_code(driver: SmartChargingDriver, vin: str) -> int:
    memory = driver.state.memories.get(vin)
    decision = driver.state.decisions.get(vin)
    vehicle = driver.state.vehicles.get(vin)
    reason = decision.reason if decision else ""
    if memory is not None and memory.paused_by_us:
        return 3 if memory.simulated else 2
    if reason.startswith("manual_override"):
        return 5
    if reason in ("user_override", "user_started_charging"):
        return 4
    if reason.startswith("fail_safe") and vehicle is not None and vehicle.charging:
        return 6
    return 1 if vehicle is not None and vehicle.charging else 0


# Gauges read off the last evaluation's market: (name, help, value); absent while Prometheus is unreachable.
MARKET_GAUGES: tuple[tuple[str, str, Callable[[Market], float | None]], ...] = (
    ("smart_charging_price_cents_per_kwh", "The price the last evaluation decided on (its signal: the projected "
     "hour price, or the 5-minute price with signal five_minute).", lambda m: m.price),
    ("smart_charging_five_minute_price_cents_per_kwh", "The latest 5-minute price at the last evaluation.",
     lambda m: m.five_minute_price),
    ("smart_charging_hour_projected_cents_per_kwh", "The projected billed price of the hour in progress at the "
     "last evaluation.", lambda m: m.hour_projected),
    ("smart_charging_price_age_seconds", "Seconds since the end of the latest 5-minute price's interval.",
     lambda m: m.price_age_s),
    ("smart_charging_price_percentile_rank_percent", "Where the price decided on ranks within the lookback, in "
     "percent.", lambda m: m.price_rank),
    ("smart_charging_stop_threshold_cents_per_kwh", "Stop charging above this price (lookback percentile of the "
     "signal's history: billed hourly prices, or 5-minute prices).", lambda m: m.stop_threshold),
    ("smart_charging_resume_threshold_cents_per_kwh", "Resume below this price (lookback percentile).",
     lambda m: m.resume_threshold),
    ("smart_charging_history_seconds", "Price history behind the thresholds, in seconds.",
     lambda m: m.history_days * 86400),
)
HELP = {
    "smart_charging_enabled": "1 when smart charging evaluates.",
    "smart_charging_signal_info": "The signal smart charging decides on (smart_charging.signal): billed or "
                                  "five_minute.",
    "smart_charging_dry_run": "1 in dry run (the default): actions are recorded, no command is sent.",
    "smart_charging_status": "Smart-charging status of the vehicle.",
    "smart_charging_actions": "Commands decided: stop/start (sent or failed) and stop_simulated/start_simulated "
                              "in dry run.",
    "smart_charging_fail_safe_decisions": "Evaluations where a vehicle was left charging or resumed because the "
                                          "market could not be trusted.",
    "smart_charging_last_evaluation_timestamp_seconds": "When smart charging last evaluated.",
}
STATUS_ROW = Metric("smart_charging_status", ENUM, HELP["smart_charging_status"], lambda vin: None, states=STATUS)

REFERENCE = [
    ("smart_charging_enabled", "gauge", "", HELP["smart_charging_enabled"]),
    ("smart_charging_dry_run", "gauge", "", HELP["smart_charging_dry_run"]),
    ("smart_charging_signal_info", "gauge", "signal", HELP["smart_charging_signal_info"]),
    *[(name, "gauge", "", text) for name, text, _ in MARKET_GAUGES],
    *STATUS_ROW.reference(("vehicle", "vin")),
    ("smart_charging_actions_total", "counter", "action, outcome", HELP["smart_charging_actions"]),
    ("smart_charging_fail_safe_decisions_total", "counter", "reason", HELP["smart_charging_fail_safe_decisions"]),
    ("smart_charging_last_evaluation_timestamp_seconds", "gauge", "",
     HELP["smart_charging_last_evaluation_timestamp_seconds"]),
]


class SmartChargingCollector:
    def __init__(self, driver: SmartChargingDriver, storage: Storage) -> None:
        self.driver = driver
        self.storage = storage

    def collect(self) -> Iterable[Family]:
        state = self.driver.state
        yield GaugeMetricFamily("smart_charging_enabled", HELP["smart_charging_enabled"], value=1.0)
        yield GaugeMetricFamily("smart_charging_dry_run", HELP["smart_charging_dry_run"],
                                value=1.0 if self.driver.params.dry_run else 0.0)
        signal = GaugeMetricFamily("smart_charging_signal_info", HELP["smart_charging_signal_info"], labels=["signal"])
        signal.add_metric([self.driver.config.smart_charging.signal], 1.0)
        yield signal
        market = state.market
        if market is not None and market.prometheus_ok:
            for name, text, read in MARKET_GAUGES:
                if (value := read(market)) is not None:
                    yield GaugeMetricFamily(name, text, value=value)
        vins = sorted(set(state.vehicles) | set(state.memories))
        rows = (replace(STATUS_ROW, value=lambda vin: status_code(self.driver, vin)),)
        yield from build_families(rows, ("vehicle", "vin"), [((state.names.get(vin, vin), vin), vin) for vin in vins])
        actions = CounterMetricFamily("smart_charging_actions", HELP["smart_charging_actions"],
                                      labels=["action", "outcome"])
        for row in self.storage.action_counts():
            if row["action"] != "none":
                actions.add_metric([row["action"], row["outcome"]], row["count"])
        yield actions
        fail_safe = CounterMetricFamily("smart_charging_fail_safe_decisions", HELP["smart_charging_fail_safe_decisions"],
                                        labels=["reason"])
        for reason, count in sorted(state.fail_safe.items()):
            fail_safe.add_metric([reason.removeprefix("fail_safe_")], count)
        yield fail_safe
        if state.last_evaluation is not None:
            yield GaugeMetricFamily("smart_charging_last_evaluation_timestamp_seconds",
                                    HELP["smart_charging_last_evaluation_timestamp_seconds"], value=state.last_evaluation)

    def describe(self) -> Iterable[Family]:
        return []
