"""Smart-charging decisions: thresholds, hysteresis, minimum interval, fail-safes, overrides, dry run."""
from __future__ import annotations

import pytest

from session_store.smart_charging import Decision, Market, Memory, Params, VehicleNow, decide, remember

VIN = "5YJ3E1EA7KF000001"
GOOD = Market(price=5.0, price_age_s=60, stop_threshold=8.0, resume_threshold=6.0, history_days=30)
LIVE = Params(dry_run=False, min_interval_s=600)
CHARGING = VehicleNow(VIN, plugged=True, charging=True, session_start=1000.0)
PAUSED_CAR = VehicleNow(VIN, plugged=True, charging=False, session_start=1000.0)


def market(**changes) -> Market:
    return Market(**{**GOOD.__dict__, **changes})


def test_stops_above_the_stop_threshold_not_at_it() -> None:
    assert decide(market(price=8.1), CHARGING, Memory(), LIVE, 5000).action == "stop"
    assert decide(market(price=8.0), CHARGING, Memory(), LIVE, 5000).action is None


def test_resumes_below_the_resume_threshold_and_holds_between() -> None:
    paused = Memory(paused_by_us=True, paused_at=4000, last_command_at=4000)
    assert decide(market(price=7.0), PAUSED_CAR, paused, LIVE, 5000) == Decision(None, "holding")
    assert decide(market(price=6.0), PAUSED_CAR, paused, LIVE, 5000).action is None
    assert decide(market(price=5.9), PAUSED_CAR, paused, LIVE, 5000) == Decision("start", "price_below_resume")


def test_never_two_commands_within_the_minimum_interval() -> None:
    paused = Memory(paused_by_us=True, last_command_at=4500)
    assert decide(market(price=2.0), PAUSED_CAR, paused, LIVE, 5099).action is None
    assert decide(market(price=2.0), PAUSED_CAR, paused, LIVE, 5100).action == "start"


@pytest.mark.parametrize("changes, why", [
    ({"prometheus_ok": False}, "prometheus_unreachable"), ({"price": None}, "no_price"),
    ({"price_age_s": 901}, "stale_price"), ({"stop_threshold": None}, "no_thresholds"),
    ({"history_days": 6.9}, "too_little_history")])
def test_fail_safe_never_stops_and_resumes_what_we_paused(changes: dict, why: str) -> None:
    expensive = market(**{"price": 30.0, **changes})
    assert decide(expensive, CHARGING, Memory(), LIVE, 5000) == Decision(None, f"fail_safe_{why}")
    paused = Memory(paused_by_us=True, last_command_at=1000)
    assert decide(expensive, PAUSED_CAR, paused, LIVE, 5000) == Decision("start", f"fail_safe_{why}")


def test_power_still_reported_just_after_our_stop_is_not_the_user_taking_over() -> None:
    paused = Memory(paused_by_us=True, paused_at=4000, last_command_at=4000)
    settle = LIVE.settle_s
    assert decide(market(price=30.0), CHARGING, paused, LIVE, 4000 + settle - 1) == Decision(None, "stopping")
    assert decide(market(price=30.0), CHARGING, paused, LIVE, 4000 + settle) == Decision(None, "user_started_charging")


def test_user_who_starts_charging_while_paused_wins_until_the_session_ends() -> None:
    paused = Memory(paused_by_us=True, paused_at=3000, last_command_at=3000)
    decision = decide(market(price=30.0), CHARGING, paused, LIVE, 5000)
    assert decision == Decision(None, "user_started_charging")
    memory = remember(paused, decision, CHARGING, None, 5000, LIVE)
    assert not memory.paused_by_us and memory.user_session == 1000.0
    assert decide(market(price=30.0), CHARGING, memory, LIVE, 9000) == Decision(None, "user_override")
    next_session = VehicleNow(VIN, plugged=True, charging=True, session_start=20000.0)
    assert decide(market(price=30.0), next_session, memory, LIVE, 21000).action == "stop"


def test_dry_run_records_simulated_actions_and_is_not_fooled_by_the_car_still_charging() -> None:
    dry = Params(dry_run=True)
    stop = decide(market(price=9.0), CHARGING, Memory(), dry, 5000)
    assert stop.action == "stop_simulated"
    memory = remember(Memory(), stop, CHARGING, True, 5000, dry)
    assert memory.paused_by_us and memory.simulated
    # the car never stopped: still charging is not the user taking over, and it resumes in simulation
    assert decide(market(price=7.0), CHARGING, memory, dry, 6000) == Decision(None, "holding")
    assert decide(market(price=5.0), CHARGING, memory, dry, 6000).action == "start_simulated"


def test_manual_override_resumes_what_we_paused_then_leaves_the_car_alone() -> None:
    paused = Memory(paused_by_us=True, last_command_at=1000, override_until=9000)
    assert decide(market(price=30.0), PAUSED_CAR, paused, LIVE, 5000) == Decision("start", "manual_override")
    assert decide(market(price=30.0), CHARGING, Memory(override_until=9000), LIVE, 5000).action is None
    assert decide(market(price=30.0), CHARGING, Memory(override_until=9000), LIVE, 9001).action == "stop"


def test_failing_start_is_retried_with_backoff_and_a_failing_stop_is_given_up() -> None:
    paused = Memory(paused_by_us=True, last_command_at=1000)
    start = decide(market(price=2.0), PAUSED_CAR, paused, LIVE, 5000)
    failed = remember(paused, start, PAUSED_CAR, False, 5000, LIVE)
    assert failed.paused_by_us and failed.retry_at == 5060
    assert decide(market(price=2.0), PAUSED_CAR, failed, LIVE, 5030).action is None
    assert decide(market(price=2.0), PAUSED_CAR, failed, LIVE, 5060).action == "start"
    memory = Memory()
    for attempt in range(3):
        now = 5000 + attempt * 1000
        stop = decide(market(price=30.0), CHARGING, memory, LIVE, now)
        assert stop.action == "stop"
        memory = remember(memory, stop, CHARGING, False, now, LIVE)
    assert not memory.paused_by_us and memory.retry_at == 7000 + 900, "gave up: the car keeps charging"


def test_unplugging_forgets_our_pause() -> None:
    paused = Memory(paused_by_us=True, last_command_at=1000)
    gone = VehicleNow(VIN, plugged=False, charging=False)
    decision = decide(market(price=2.0), gone, paused, LIVE, 5000)
    assert decision == Decision(None, "unplugged")
    assert not remember(paused, decision, gone, None, 5000, LIVE).paused_by_us


def test_memory_and_action_log_survive_a_restart(tmp_path) -> None:
    from session_store.records import ActionRecord
    from session_store.storage import Storage

    path = tmp_path / "sessions.db"
    storage = Storage(path)
    paused = Memory(paused_by_us=True, paused_at=5000, last_command_at=5000, user_session=None)
    log = ActionRecord(5000, VIN, "Blue", "stop", "price_above_stop", "sent", 9.1, 8.0, 6.0)
    storage.save_smart_charging({VIN: paused}, [log])
    storage.close()
    reopened = Storage(path)
    assert reopened.load_memories() == {VIN: paused}
    assert reopened.actions() == [log]
    # after the restart the same market sends nothing again: the pause is remembered
    assert decide(market(price=9.1), PAUSED_CAR, reopened.load_memories()[VIN], LIVE, 5010) == Decision(None, "holding")
    assert [tuple(r) for r in reopened.action_counts()] == [("stop", "sent", 1)]


def run_hour(prices: list[float], signal: str, stop: float, resume: float) -> list[str | None]:
    """Evaluate just after each 5-minute price is published, through one clock hour and into the next,
    as the driver would: the billed signal is the projected price of the hour in progress (the one of
    the interval after the latest price), the other the latest price itself."""
    from zoneinfo import ZoneInfo

    from billing.tariff import HOURLY_AVERAGE, Tariff, projected_price

    tariff = Tariff(ZoneInfo("America/Chicago"), HOURLY_AVERAGE)
    hour = 1_784_000_000 // 3600 * 3600
    memory, actions, published = Memory(), [], {}
    for i, cents in enumerate(prices, start=1):
        end = hour + 300 * i
        published[end] = cents
        projection = projected_price(published, tariff.period_end(end + 300), tariff).cents
        signal_price = projection if signal == "billed" else cents
        now = end + 30
        car = PAUSED_CAR if memory.paused_by_us else CHARGING
        decision = decide(market(price=signal_price, stop_threshold=stop, resume_threshold=resume), car, memory,
                          Params(dry_run=False, min_interval_s=0), now)
        memory = remember(memory, decision, car, True if decision.action else None, now, LIVE)
        actions.append(decision.action)
    return actions


# a 50-cent spike for ten minutes early in an hour of 3 cents: the hour is billed at 10.8 cents
SPIKE_HOUR = [3, 3, 50, 50, 3, 3, 3, 3, 3, 3, 3, 3] + [3, 3]


def test_the_billed_signal_holds_the_pause_through_the_rest_of_an_expensive_hour() -> None:
    actions = run_hour(SPIKE_HOUR, "billed", stop=6.0, resume=4.0)
    assert actions[2] == "stop"                       # the spike makes the hour expensive
    assert set(actions[3:11]) == {None}               # every later minute of the hour still pays 10.8 cents
    assert actions[11] == "start"                     # its last price is in: the next hour, at 3 cents, has begun


def test_the_five_minute_signal_resumes_inside_the_expensive_hour() -> None:
    actions = run_hour(SPIKE_HOUR, "five_minute", stop=6.0, resume=4.0)
    assert actions[2] == "stop" and actions[4] == "start"   # back on at minute 25, billed at the hour's 10.8


def test_a_pause_remembers_why_and_forgets_it_when_it_ends() -> None:
    from session_store.smart_charging import Decision, Memory, Params, VehicleNow, remember
    car, params = VehicleNow("V", plugged=True, charging=True), Params(dry_run=False)
    paused = remember(Memory(), Decision("stop", "plan_wait"), car, True, 100.0, params)
    assert paused.paused_by_us and paused.paused_for == "plan_wait"
    resumed = remember(paused, Decision("start", "plan_ended"), car, True, 800.0, params)
    assert not resumed.paused_by_us and resumed.paused_for is None
    gone = remember(paused, Decision(None, "unplugged"), VehicleNow("V", plugged=False, charging=False), None, 900.0,
                    params)
    assert gone.paused_for is None
