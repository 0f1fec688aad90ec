"""Smart charging's metrics come from its frozen view and the ledger alone: each vehicle's status, the
actions taken (not the logged non-actions), the fail-safe decisions by reason, and the market only
while Prometheus answered."""
from __future__ import annotations

from servicekit.exposition import Part, PartsRenderer
from session_store.smart_charging import Market
from session_store.smart_metrics import smart_charging_families
from session_store.views import LedgerView, SmartChargingView, VehicleStatus
from testkit.exposition import parse

VIN = "5YJ3E1EA7KF000001"
PAUSED = VehicleStatus(VIN, "Blue", "garage", plugged=True, charging=False, paused_by_us=True,
                       last_decision="price_high", last_command_at=1.0, override_until=None, status=3)
LEDGER = LedgerView(version=1, actions={("stop_simulated", "simulated"): 3, ("none", "skipped"): 5})


def exposed(view: SmartChargingView) -> dict[str, float]:
    return parse(PartsRenderer([Part(lambda: smart_charging_families(view, LEDGER))])().text.decode())


def test_the_view_and_the_ledger_become_the_smart_charging_metrics() -> None:
    market = Market(25.0, 40.0, 8.0, 4.0, 30.0, prometheus_ok=True, signal="billed")
    found = exposed(SmartChargingView(True, "billed", 1_700_000_000.0, market, (PAUSED,), {"fail_safe_stale_price": 2}))
    assert found["smart_charging_dry_run"] == 1.0 and found['smart_charging_signal_info{signal="billed"}'] == 1.0
    assert found["smart_charging_price_cents_per_kwh"] == 25.0 and found["smart_charging_history_seconds"] == 30 * 86400
    assert found[f'smart_charging_status_code{{vehicle="Blue",vin="{VIN}"}}'] == 3.0
    assert found[f'smart_charging_status{{state="paused_simulated",vehicle="Blue",vin="{VIN}"}}'] == 1.0
    assert {k: v for k, v in found.items() if k.startswith("smart_charging_actions_total")} == {
        'smart_charging_actions_total{action="stop_simulated",outcome="simulated"}': 3.0}
    assert found['smart_charging_fail_safe_decisions_total{reason="stale_price"}'] == 2.0
    assert found["smart_charging_last_evaluation_timestamp_seconds"] == 1_700_000_000.0


def test_no_market_gauges_while_prometheus_is_unreachable() -> None:
    blind = Market(None, None, None, None, 0.0, prometheus_ok=False, signal="billed")
    found = exposed(SmartChargingView(False, "billed", 1.0, blind, (PAUSED,)))
    assert not any(k.startswith(("smart_charging_price", "smart_charging_stop")) for k in found)
    assert found["smart_charging_dry_run"] == 0.0 and f'smart_charging_status_code{{vehicle="Blue",vin="{VIN}"}}' in found
