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
             *(r for m in COUNT_ROWS for r in m.reference(())),
             *UpstreamMetrics.reference(COMMANDS_PREFIX, COMMANDS_UPSTREAM)]


def smart_charging_families(view: SmartChargingView, ledger: LedgerView) -> list[Family]:
    market = view.market if view.market is not None and view.market.prometheus_ok else None
    return [*build_families(VIEW_ROWS, (), [((), view)]),
            *build_families(MARKET_ROWS, (), [((), market)] if market else []),
            *build_families(VEHICLE_ROWS, ("vehicle", "vin"), [((v.vehicle or v.vin, v.vin), v) for v in view.vehicles]),
            *build_families(COUNT_ROWS, (), [((), Counted(view, ledger))])]
