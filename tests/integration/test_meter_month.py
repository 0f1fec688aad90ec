"""A simulated month through the whole meter path: the real `opower` library logs in (MFA) and pulls a
month of half-hour reads from the simulator's portal, charging-meter stores and reconciles them with the
sessions derived from 15-s power samples, and the EV share and EV cost are compared with the simulator's
truth of the home's meter (a base load plus the true EV energy, billed by ComEd's rule without the
suite's code). A tariff with the wrong delivery rate is caught, and the hint names the right one."""
from __future__ import annotations

import asyncio

import pytest

from billing.settings import tariff_for
from meter.reconcile import ev_intervals, read_shares, reconcile
from servicekit.config import load
from testkit import meter_month

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    return asyncio.run(meter_month.run(tmp_path_factory.mktemp("meter-month")))


def test_a_month_of_reads_arrives_whole(month) -> None:
    assert month.sessions >= 35                       # two cars, most nights
    assert month.ours.reads == 30 * 48                # October 1-30, a read every half hour
    assert month.ours.home_kwh == pytest.approx(month.truth_home_kwh, rel=1e-9)


def test_the_ev_share_is_within_1_percent_of_the_truth(month) -> None:
    assert month.ours.ev_share == pytest.approx(month.truth_share, rel=0.01)
    assert abs(month.share_error) < 0.01


def test_the_computed_ev_cost_is_within_1_percent_of_the_bills_ev_part(month) -> None:
    assert abs(month.cost_error) < 0.01
    # and the utility's own figure for the same energy (its reads' costs x EV share) agrees with the truth
    assert month.ours.ev_cost_utility == pytest.approx(month.truth_ev_cost, rel=0.01)
    assert month.ours.hint == ""


def test_a_wrong_delivery_rate_is_named_with_the_rate_the_bill_implies(month) -> None:
    wrong = tariff_for(load({"general": {"timezone": "America/Chicago"},
                             "tariff": {**meter_month.TARIFF, "delivery_cents_per_kwh": 4.5}}, {}, {}))
    sessions = meter_month.priced(month.completed, month.prices, wrong, month.end + 86400)
    result = reconcile("2026-10", month.start, month.end, read_shares(month.reads, ev_intervals(sessions, wrong)),
                       wrong, 0.02)
    assert result.discrepancy == pytest.approx(-(5.9 - 4.5) * result.ev_kwh / 100 / result.ev_cost_utility, rel=0.01)
    assert "tariff.delivery_cents_per_kwh" in result.hint and "set it to 5.90" in result.hint
