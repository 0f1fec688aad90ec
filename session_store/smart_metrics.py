"""Smart-charging metrics (prefix `smart_charging_`): tables from its frozen view to metric families.

    smart_charging_status{state="paused",vehicle="Blue",vin="5YJ3..."} 1.0
    smart_charging_actions_total{action="stop_simulated",outcome="simulated"} 3.0
"""
from __future__ import annotations

from typing import NamedTuple

from prometheus_client.core import Metric as Family

from servicekit.metrics import COUNTER, ENUM, GAUGE, Metric, build_families
from servicekit.upstream import UpstreamMetrics
from session_store.smart_charging import STATUS
from session_store.views import LedgerView, SmartChargingView

COMMANDS_PREFIX = "smart_charging_tessie"
COMMANDS_UPSTREAM = "Tessie (start_charging, stop_charging commands)"

VIEW_ROWS = (   # over the view
    Metric("smart_charging_enabled", GAUGE, "1 when smart charging evaluates.", lambda v: 1.0),
    Metric("smart_charging_dry_run", GAUGE, "1 in dry run (the default): actions are recorded, no command is sent.",
           lambda v: 1.0 if v.dry_run else 0.0),
    Metric("smart_charging_signal_info", GAUGE, "The signal smart charging decides on (smart_charging.signal): billed "
           "or five_minute.", lambda v: {v.signal: 1.0}, ("signal",)),
)
MARKET_ROWS = (   # over the last evaluation's market; absent while Prometheus is unreachable
    Metric("smart_charging_price_cents_per_kwh", GAUGE, "The price the last evaluation decided on (its signal: the "
           "projected hour price, or the 5-minute price with signal five_minute).", lambda m: m.price),
    Metric("smart_charging_five_minute_price_cents_per_kwh", GAUGE, "The latest 5-minute price at the last "
           "evaluation.", lambda m: m.five_minute_price),
    Metric("smart_charging_hour_projected_cents_per_kwh", GAUGE, "The projected billed price of the hour in progress "
           "at the last evaluation.", lambda m: m.hour_projected),
    Metric("smart_charging_price_age_seconds", GAUGE, "Seconds since the end of the latest 5-minute price's "
           "interval.", lambda m: m.price_age_s),
    Metric("smart_charging_price_percentile_rank_percent", GAUGE, "Where the price decided on ranks within the "
           "lookback, in percent.", lambda m: m.price_rank),
    Metric("smart_charging_stop_threshold_cents_per_kwh", GAUGE, "Stop charging above this price (lookback "
           "percentile of the signal's history: billed hourly prices, or 5-minute prices).",
           lambda m: m.stop_threshold),
    Metric("smart_charging_resume_threshold_cents_per_kwh", GAUGE, "Resume below this price (lookback percentile).",
           lambda m: m.resume_threshold),
    Metric("smart_charging_history_seconds", GAUGE, "Price history behind the thresholds, in seconds.",
           lambda m: m.history_days * 86400),
)
VEHICLE_ROWS = (
    Metric("smart_charging_status", ENUM, "Smart-charging status of the vehicle.", lambda v: v.status, states=STATUS),
)
PLAN_ROWS = (   # over each car with a departure set (views.PlanStatus)
    Metric("smart_charging_plan_departure_timestamp_seconds", GAUGE, "The car's next departure (one-off or weekly); "
           "absent when none is set within the planner's horizon.", lambda p: p.next_departure),
    Metric("smart_charging_plan_target_percent", GAUGE, "The state of charge the car should have at departure.",
           lambda p: p.departure.target_percent),
    Metric("smart_charging_plan_state_of_charge_percent", GAUGE, "The state of charge the plan starts from: the car's "
           "cached reading, or that reading plus the wall energy since when it is stale (see "
           "smart_charging_plan_state_of_charge_estimated).", lambda p: p.soc.percent if p.soc else None),
    Metric("smart_charging_plan_state_of_charge_estimated", GAUGE, "1 when the state of charge is estimated (a stale "
           "reading advanced by the wall energy since x efficiency / battery), 0 when it is the car's fresh reading.",
           lambda p: None if p.soc is None else float(p.soc.source == "estimated")),
    Metric("smart_charging_plan_efficiency_ratio", GAUGE, "Battery energy per wall energy the plan assumes (learned "
           "from the car's sessions, planner.efficiency until then).", lambda p: p.efficiency),
    Metric("smart_charging_plan_energy_joules", GAUGE, "Wall energy the plan charges before departure.",
           lambda p: p.plan.energy_wh * 3600 if p.plan else None),
    Metric("smart_charging_plan_expected_cost_dollars", GAUGE, "Expected cost of the planned energy on the bill "
           "(billed hourly supply price, forecast for hours to come, plus delivery).",
           lambda p: round(p.plan.cost, 6) if p.plan else None),
    Metric("smart_charging_plan_expected_finish_timestamp_seconds", GAUGE, "When the plan expects charging to end.",
           lambda p: p.plan.finish if p.plan else None),
    Metric("smart_charging_plan_reachable_percent", GAUGE, "The state of charge the plan reaches by departure (the "
           "target when it is reachable).", lambda p: p.plan.reachable_percent if p.plan else None),
    Metric("smart_charging_plan_deadline_at_risk", GAUGE, "1 when the target cannot be reached by the departure "
           "(with the planner's margin): the car then charges at every chance.",
           lambda p: None if p.plan is None else float(p.at_risk)),
    Metric("smart_charging_plan_charge_now", GAUGE, "1 when the plan (or its fail-safe) says the car charges now.",
           lambda p: None if p.next_departure is None or not p.plugged else float(p.charge_now)),
    Metric("smart_charging_plan_hour_energy_joules", GAUGE, "Planned wall energy per clock hour ahead (hours_ahead 0 "
           "is the hour in progress, as electricity_price_forecast_cents_per_kwh).",
           lambda p: {str(round((h.start - p.first_hour) / 3600)): round(h.energy_wh * 3600, 1)
                      for h in p.plan.hours} if p.plan and p.first_hour is not None else {}, ("hours_ahead",)),
)
HOUR_ROWS = (   # over the planning view's priced hours
    Metric("smart_charging_plan_hour_price_cents_per_kwh", GAUGE, "The price the planner expects a kWh drawn in each "
           "clock hour ahead to cost: billed supply (the hour in progress from its published prices) plus delivery.",
           lambda v: {str(i): round(h.cents, 4) for i, h in enumerate(v.hours)}, ("hours_ahead",)),
    Metric("smart_charging_plan_trusted", GAUGE, "1 when plans can be trusted (prices, forecast and Prometheus), 0 when "
           "planned cars charge now (fail-safe).", lambda v: None if v.evaluated_at is None else float(v.untrusted is None)),
)


class Counted(NamedTuple):
    view: SmartChargingView
    ledger: LedgerView         # the action log's counts


COUNT_ROWS = (   # over a Counted
    Metric("smart_charging_actions", COUNTER, "Commands decided: stop/start (sent or failed) and "
           "stop_simulated/start_simulated in dry run.",
           lambda r: {key: count for key, count in sorted(r.ledger.actions.items()) if key[0] != "none"},
           ("action", "outcome")),
    Metric("smart_charging_fail_safe_decisions", COUNTER, "Evaluations where a vehicle was left charging or resumed "
           "because the market could not be trusted.",
           lambda r: {reason.removeprefix("fail_safe_"): n for reason, n in sorted(r.view.fail_safe.items())},
           ("reason",)),
    Metric("smart_charging_last_evaluation_timestamp_seconds", GAUGE, "When smart charging last evaluated.",
           lambda r: r.view.evaluated_at),
)

# (name, type, labels, help) of every metric above, for docs/metrics.md: the same texts as /metrics.
REFERENCE = [*(r for m in (*VIEW_ROWS, *MARKET_ROWS) for r in m.reference(())),
             *(r for m in VEHICLE_ROWS for r in m.reference(("vehicle", "vin"))),
             *(r for m in PLAN_ROWS for r in m.reference(("vehicle", "vin"))),
             *(r for m in HOUR_ROWS for r in m.reference(())),
             *(r for m in COUNT_ROWS for r in m.reference(())),
             *UpstreamMetrics.reference(COMMANDS_PREFIX, COMMANDS_UPSTREAM)]


def smart_charging_families(view: SmartChargingView, ledger: LedgerView) -> list[Family]:
    market = view.market if view.market is not None and view.market.prometheus_ok else None
    return [*build_families(VIEW_ROWS, (), [((), view)]),
            *build_families(MARKET_ROWS, (), [((), market)] if market else []),
            *build_families(VEHICLE_ROWS, ("vehicle", "vin"), [((v.vehicle or v.vin, v.vin), v) for v in view.vehicles]),
            *build_families(COUNT_ROWS, (), [((), Counted(view, ledger))]),
            *plan_families(view)]


def plan_families(view: SmartChargingView) -> list[Family]:
    planning = view.planning
    if planning is None:
        return []
    cars = [((p.vehicle or p.vin, p.vin), p) for p in planning.cars]
    return [*build_families(PLAN_ROWS, ("vehicle", "vin"), cars),
            *build_families(HOUR_ROWS, (), [((), planning)])]
