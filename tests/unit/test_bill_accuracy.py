"""Costs as the bill computes them: every session's supply, delivery and full cost, and every month's
total with its fixed and capacity charges, within 0.5 % of the simulator's independent bill, on
partial hours, a spike outside the charging minutes, midnight, both clock-change days, negative
prices and a month boundary (the cases are in testkit/bill_cases.py; benchmark 3a tabulates them)."""
from __future__ import annotations

import pytest

from testkit.bill_cases import CASES, TARIFF, Outcome, run

TOLERANCE_PCT = 0.5


@pytest.fixture(scope="module", params=list(CASES))
def outcome(request) -> Outcome:
    return run(request.param)


def test_each_sessions_supply_delivery_and_full_cost_match_the_bill(outcome: Outcome) -> None:
    assert outcome.sessions, "the case charges"
    for session in outcome.sessions:
        for line in ("supply", "delivery", "full"):
            assert abs(session.error_pct(line)) <= TOLERANCE_PCT, (session.name, line, session.ours, session.truth)


def test_each_months_charging_and_total_with_fixed_and_capacity_match_the_bill(outcome: Outcome) -> None:
    for month, ours, truth in outcome.months:
        assert (ours["fixed"], ours["capacity"]) == (truth["fixed"], truth["capacity"]) == (
            TARIFF["monthly_fixed_dollars"], TARIFF["capacity_dollars_per_month"])
        for line in ("charging", "total"):
            assert ours[line] == pytest.approx(truth[line], rel=TOLERANCE_PCT / 100), (month, line)


def test_the_month_boundary_case_is_billed_in_both_months() -> None:
    months = [month for month, _, _ in run("fall back (25-hour day), across the month boundary").months]
    assert months == ["2026-10", "2026-11"]


def test_the_old_per_interval_rule_misses_a_spike_in_the_charging_hour_by_far_more() -> None:
    [session] = run("partial hours, spike outside the charging minutes").sessions
    assert session.old_rule_error_pct < -10, "the spike's hour is billed at its mean: the old rule never saw it"
    assert abs(session.error_pct("supply")) <= TOLERANCE_PCT
