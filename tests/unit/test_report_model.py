"""The report's figures (reports/model.py, pure): totals are the sessions' bills plus the monthly charges,
sessions across midnight or a month boundary count by their day shares, the best and worst sessions, the
savings against the fixed rate and what pausing saved, with and without the utility's meter data."""
from __future__ import annotations

import math
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from billing.tariff import Tariff, bill, billed_prices, local_day, month_totals
from meter.reconcile import ev_intervals, read_shares, reconcile
from reports.model import (
    BadPeriod, build_report, days_from_sessions, month_bounds, parse_period, report_dict, session_days,
)
from reports.text import cents, kwh, money, sections, summary
from session_store.meter_records import MeterDay, MeterRead
from session_store.records import ActionRecord, Session

CHICAGO = ZoneInfo("America/Chicago")
TARIFF = Tariff(CHICAGO, delivery_per_kwh=0.075, monthly_fixed=19.56, capacity_per_month=9.84,
                reference_supply_per_kwh=0.10028)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=CHICAGO).timestamp()


def five_minute_prices(start: str, end: str) -> dict[float, float]:
    """Nights at 2 cents, days at 4, 14:00-20:00 at 9, one price per 5 minutes."""
    prices, t = {}, at(start) + 300
    while t <= at(end):
        hour = datetime.fromtimestamp(t - 300, CHICAGO).hour
        prices[t] = 9.0 if 14 <= hour < 20 else 4.0 if 7 <= hour < 14 else 2.0
        t += 300
    return prices


PRICES = five_minute_prices("2026-09-25T00:00", "2026-11-05T00:00")
HOURLY = dict(billed_prices(PRICES, TARIFF))


def charged(start: str, kwh_: float, power_w: float = 11500.0, unit: str = "garage", vehicle: str = "Model Y",
            vin: str = "5YJYGDEE1MF000001", session_id: int | None = None) -> Session:
    """A session charging at `power_w` from `start`, billed by the suite's tariff."""
    begin, energy = at(start), kwh_ * 1000.0
    intervals, left, t = {}, energy, begin
    while left > 1e-9:
        end = math.floor(t / 300) * 300 + 300
        take = min(left, power_w * (end - t) / 3600)
        intervals[end] = take
        left, t = left - take, end
    billed = bill(intervals, PRICES, TARIFF)
    finish = begin + energy / power_w * 3600
    return Session(unit=unit, din=None, vin=vin, vehicle=vehicle, start=begin, end=finish, duration_s=finish - begin,
                   energy_wh=energy, peak_w=power_w, average_w=power_w, meter_energy_wh=None,
                   supply_cost=billed.supply, supply_credit=billed.supply_credit, delivery_cost=billed.delivery,
                   full_cost=billed.full, supply_price_cents=billed.per_kwh_cents(billed.supply),
                   cost_final=billed.final, intervals=intervals, gap_s=0.0, source="live_status",
                   reconciliation="pending", reference_cost=billed.reference, bill_lines=billed.lines, id=session_id)


def report_of(label: str, sessions: list[Session], **kwargs):
    period = parse_period(label, CHICAGO)
    return build_report(period, sessions, days_from_sessions(sessions, CHICAGO), kwargs.pop("meter_days", []),
                        kwargs.pop("bills", []), kwargs.pop("reconciliations", []), TARIFF, **kwargs)


OCTOBER = [charged("2026-10-02T21:10", 30.0), charged("2026-10-05T18:00", 12.0, 7700, "driveway", "Model 3",
                                                      "5YJ3E1EA1PF000002"),
           charged("2026-10-09T01:00", 20.0), charged("2026-10-12T15:30", 8.0, 7700, "driveway", "Model 3",
                                                      "5YJ3E1EA1PF000002"),
           charged("2026-10-20T10:00", 25.0, 11500, "driveway", "Cybertruck", "7G2CEHED1RA000003")]


def test_totals_are_the_sessions_bills_plus_the_months_charges() -> None:
    report = report_of("2026-10", OCTOBER)
    t = report.totals
    assert t.sessions == 5 and t.months_charged == 1
    assert t.energy_kwh == pytest.approx(95.0)
    assert t.supply == pytest.approx(sum(s.supply_cost for s in OCTOBER))
    assert t.charging == pytest.approx(sum(s.full_cost for s in OCTOBER))
    assert t.total == pytest.approx(sum(s.full_cost for s in OCTOBER) + 19.56 + 9.84)
    assert [p.name for p in report.breakdown] == ["supply", "delivery", "fixed", "capacity"]
    assert sum(p.dollars for p in report.breakdown) == pytest.approx(t.total)
    # billing/tariff.py's month total is the same bill
    days = [(d, b) for s in OCTOBER for d, b in bill(s.intervals, PRICES, TARIFF).by_day(CHICAGO).items()]
    assert month_totals(days, TARIFF)[(2026, 10)].total == pytest.approx(t.total)
    # the tables split the same money
    for rows in (report.vehicles, report.units):
        assert sum(r.energy_kwh for r in rows) == pytest.approx(t.energy_kwh)
        assert sum(r.cost for r in rows) == pytest.approx(t.charging)
        assert sum(r.sessions for r in rows) == 5
    assert [r.name for r in report.vehicles] == ["Model Y", "Cybertruck", "Model 3"]   # by energy
    assert len(report.bars) == 31 and sum(b.cost for b in report.bars) == pytest.approx(t.charging)
    assert report.bars[1].key == "2026-10-02" and report.bars[1].sessions == 1


def test_a_year_has_twelve_bars_and_charges_only_the_months_begun() -> None:
    full = report_of("2026", OCTOBER)
    assert [b.label for b in full.bars][:3] == ["Jan", "Feb", "Mar"] and len(full.bars) == 12
    assert full.bars[9].energy_kwh == pytest.approx(95.0) and full.totals.months_charged == 12
    assert full.totals.total == pytest.approx(full.totals.charging + 12 * (19.56 + 9.84))
    so_far = report_of("2026", OCTOBER, as_of=at("2026-10-15T12:00"))
    assert so_far.totals.months_charged == 10
    assert so_far.totals.fixed == pytest.approx(10 * 19.56)


def test_sessions_across_midnight_and_a_month_boundary_count_by_their_day_shares() -> None:
    night = charged("2026-10-03T23:00", 23.0)          # 23:00-01:00 at 11.5 kW: half each day
    boundary = charged("2026-09-30T22:30", 23.0, session_id=7)   # 22:30-00:30: 1.5 h in September
    shares = session_days(night, CHICAGO)
    assert list(shares) == ["2026-10-03", "2026-10-04"]
    assert shares["2026-10-03"].energy_wh == pytest.approx(11500.0)
    october = report_of("2026-10", [night, boundary])
    september = report_of("2026-09", [night, boundary])
    assert october.totals.sessions == 1 and september.totals.sessions == 1, "counted once, on its first day"
    assert october.totals.energy_kwh == pytest.approx(23.0 + 5.75)
    assert september.totals.energy_kwh == pytest.approx(17.25)
    assert october.bars[0].energy_kwh == pytest.approx(5.75) and october.bars[0].sessions == 0
    assert (october.bars[2].energy_kwh, october.bars[3].energy_kwh) == pytest.approx((11.5, 11.5))
    both = october.totals.charging + september.totals.charging
    assert both == pytest.approx(night.full_cost + boundary.full_cost), "nothing lost or counted twice"
    # the session that began in September is in October's tables by its share, ranked only in September
    assert sum(r.energy_kwh for r in october.vehicles) == pytest.approx(28.75)
    assert 7 not in {r.id for r in october.best} and 7 in {r.id for r in september.best}


def test_best_and_worst_sessions_by_all_in_price() -> None:
    sessions = [charged(f"2026-10-{day:02d}T{hour:02d}:00", 10.0, session_id=day)
                for day, hour in ((1, 2), (2, 16), (3, 9), (4, 17), (5, 1), (6, 14), (7, 23), (8, 12))]
    sessions.append(charged("2026-10-09T15:00", 0.5, session_id=99))   # under 1 kWh: not ranked
    report = report_of("2026-10", sessions)
    best, worst = report.best, report.worst
    assert len(best) == len(worst) == 5
    assert [r.cents_per_kwh for r in best] == sorted(r.cents_per_kwh for r in best)
    assert [r.cents_per_kwh for r in worst] == sorted((r.cents_per_kwh for r in worst), reverse=True)
    assert best[0].cents_per_kwh == pytest.approx(2.0 + 7.5) and worst[0].cents_per_kwh == pytest.approx(9.0 + 7.5)
    assert best[0].id == 1, "ties keep the earlier session first"
    assert 99 not in {r.id for r in best + worst}
    assert best[0].start_text == "2026-10-01 02:00"


def test_savings_against_the_fixed_rate_subtract_the_capacity_charge() -> None:
    report = report_of("2026-10", OCTOBER)
    fixed = report.fixed_rate
    per_session = sum(s.reference_cost - s.full_cost for s in OCTOBER)
    assert per_session == pytest.approx(95.0 * 0.10028 - sum(s.supply_cost for s in OCTOBER)), "supply only"
    assert fixed.sessions_savings == pytest.approx(per_session)
    assert fixed.capacity_difference == pytest.approx(-9.84)
    assert fixed.savings == pytest.approx(per_session - 9.84)
    assert fixed.reference_bill == pytest.approx(95.0 * 0.10028 + report.totals.delivery + 19.56)
    none = build_report(parse_period("2026-10", CHICAGO), OCTOBER, days_from_sessions(OCTOBER, CHICAGO), [], [], [],
                        Tariff(CHICAGO, reference_supply_per_kwh=None))
    assert not none.fixed_rate.available and "reference_supply_cents_per_kwh" in none.fixed_rate.note


def stop(t: float, reason: str = "price_above_stop_threshold", outcome: str = "sent",
         action: str = "stop") -> ActionRecord:
    return ActionRecord(t, "5YJYGDEE1MF000001", "Model Y", action, reason, outcome, 12.0, 9.0, 6.0)


def test_what_a_pause_saved_is_charging_at_once_minus_what_it_cost() -> None:
    # plugged in 16:00 at 11.5 kW for 23 kWh: paused at 16:30 (5.75 kWh in), resumed 21:00 for the rest
    one = charged("2026-10-14T16:00", 5.75)
    two = charged("2026-10-14T21:00", 17.25)
    # the planner held a car from its arrival at 18:00 until 01:00
    held = charged("2026-10-16T01:00", 11.5)
    plain = charged("2026-10-20T17:00", 11.5)        # never paused: nothing saved, nothing claimed
    actions = [stop(one.end - 10), stop(one.end + 9000, "price_below_resume_threshold", action="start"),
               stop(at("2026-10-15T18:00"), "plan_wait"),
               stop(at("2026-10-20T17:30"), outcome="simulated", action="stop_simulated")]
    report = report_of("2026-10", [one, two, held, plain], actions=actions, hourly_prices=HOURLY)
    smart = report.smart
    assert smart.available and smart.simulated_stops == 1 and "dry run" in smart.note
    assert [(s.by, s.sessions) for s in smart.shifted] == [("smart charging", 2), ("planner", 1)]
    paused, planned = smart.shifted
    # at once: 16:00-18:00 at 9 cents supply, delivery 7.5 cents
    assert paused.charge_now == pytest.approx(23.0 * (0.09 + 0.075))
    assert paused.actual == pytest.approx(one.full_cost + two.full_cost)
    assert paused.actual == pytest.approx(5.75 * 0.165 + 17.25 * 0.095)   # 16:00-16:30 at 9, 21:00-22:30 at 2
    assert paused.saved == pytest.approx(paused.charge_now - paused.actual)
    # held from 18:00: one hour at 9 cents (18-19), then at 2 cents at night; it charged 01:00-02:00 at 2
    assert planned.plug_in_text == "2026-10-15 18:00"
    assert planned.charge_now == pytest.approx(11.5 * 0.165)
    assert planned.saved == pytest.approx(11.5 * 0.165 - 11.5 * 0.095)
    assert smart.smart_charging == pytest.approx(paused.saved) and smart.planner == pytest.approx(planned.saved)
    assert smart.total == pytest.approx(paused.saved + planned.saved)
    without = report_of("2026-10", [one, two, held, plain], actions=actions,
                        prices_note="needs price history (Prometheus unreachable)")
    assert not without.smart.available and without.smart.note.startswith("needs price history (Prometheus unreachable)")
    assert all(s.charge_now is None for s in without.smart.shifted)
    text = [b for s in sections(without) if s.title.startswith("What smart") for b in s.blocks]
    assert any("needs price history (Prometheus unreachable)" in getattr(b, "text", "") for b in text)


def test_an_unpaused_session_charged_at_once_costs_what_it_cost() -> None:
    session = charged("2026-10-14T16:20", 20.0)
    report = report_of("2026-10", [session], actions=[stop(session.end - 5)], hourly_prices=HOURLY)
    assert report.smart.shifted[0].saved == pytest.approx(0.0, abs=1e-9)


def test_the_ev_share_with_meter_data_and_its_absence() -> None:
    sessions = OCTOBER[:2]
    reads = []
    start, end = month_bounds("2026-10", CHICAGO)
    ev = ev_intervals(sessions, TARIFF)
    t = start
    while t < end:
        car = sum(ev.get(t + k * 300, None).kwh for k in range(1, 7) if t + k * 300 in ev)
        home = 0.5 + car
        reads.append(MeterRead(t, t + 1800, home, home * 0.1))
        t += 1800
    shares = read_shares(reads, ev)
    month = reconcile("2026-10", start, end, shares, TARIFF, 0.02)
    days: dict[str, list[float]] = {}
    for read in reads:
        days.setdefault(local_day(read.start, CHICAGO).isoformat(), []).append(read.kwh)
    meter_days = [MeterDay(day, sum(v), sum(v) * 0.1, len(v), 0) for day, v in sorted(days.items())]
    report = report_of("2026-10", sessions, reconciliations=[month], meter_days=meter_days)
    share = report.ev_share
    assert share.available and share.ev_kwh == pytest.approx(42.0)
    assert share.home_kwh == pytest.approx(len(reads) * 0.5 + 42.0)
    assert share.share == pytest.approx(42.0 / share.home_kwh)
    assert share.ev_cost_utility == pytest.approx(42.0 * 0.1)
    assert share.discrepancy == pytest.approx(share.ev_cost_computed / (42.0 * 0.1) - 1)
    assert report.bars[1].home_kwh == pytest.approx(sum(days["2026-10-02"]))
    absent = report_of("2026-10", sessions)
    assert not absent.ev_share.available and "No meter data" in absent.ev_share.note
    assert all(b.home_kwh is None for b in absent.bars)
    assert "No meter data" in summary(absent) and "EV share of the home's energy" in summary(report)


def test_periods_are_local_calendar_months_and_years_and_refuse_anything_else() -> None:
    october = parse_period("2026-10", CHICAGO)
    assert (october.start, october.end) == (at("2026-10-01T00:00"), at("2026-11-01T00:00"))
    assert october.title == "October 2026" and october.last_day == "2026-10-31"
    year = parse_period("2026", CHICAGO)
    assert year.months[0] == "2026-01" and year.months[-1] == "2026-12" and year.end == at("2027-01-01T00:00")
    for bad in ("2026-13", "2026-1", "26", "2026/10", "october", "", "2026-10-01"):
        with pytest.raises(BadPeriod, match=r"^period: expected a month YYYY-MM \(2026-10\) or a year YYYY \(2026\)"):
            parse_period(bad, CHICAGO)


def test_the_report_as_json_and_text_formats() -> None:
    report = report_of("2026-10", OCTOBER, hourly_prices=HOURLY)
    data = report_dict(report)
    assert data["period"]["label"] == "2026-10" and data["totals"]["sessions"] == 5
    assert data["price_trend"]["available"] and len(data["price_trend"]["days"]) == 31
    assert date.fromisoformat(data["bars"][0]["key"]) == date(2026, 10, 1)
    assert (money(1234.5), money(-0.5), kwh(1234.56), cents(9.5)) == ("$1,234.50", "-$0.50", "1,234.6 kWh",
                                                                       "9.50 ¢/kWh")
    assert money(report.totals.total) in summary(report)


def test_away_charging_is_reported_beside_the_bill_with_the_home_efficiency() -> None:
    from reports.text import sections
    from session_store.records import VehicleChargeRecord

    def charge(start: str, away: bool, added_wh: float, cost: float, session_id: int | None = None,
               wall_wh: float | None = None) -> VehicleChargeRecord:
        return VehicleChargeRecord("5YJ3E1EA1PF000002", "Model 3", start, at(start), at(start) + 1800,
                                   "Supercharger Joliet, IL" if away else "home", away, away, added_wh, None, 20, 80,
                                   cost, session_id, wall_wh, None if away else added_wh / (wall_wh or 1))
    charges = [charge("2026-10-03T12:00", True, 40_000, 18.4), charge("2026-11-03T12:00", True, 9_000, 4.0),
               charge("2026-10-05T18:00", False, 10_800, 1.8, 7, 12_000),
               charge("2026-10-12T15:30", False, 7_200, 1.2, 9, 8_000)]
    base = report_of("2026-10", OCTOBER)
    report = report_of("2026-10", OCTOBER, charges=charges)
    assert report.totals == base.totals, "away charging is not on the home's bill"
    away = report.away
    assert (away.charges, away.energy_kwh, away.cost) == (1, 40.0, 18.4)            # November's is outside
    assert away.efficiency == pytest.approx((10_800 + 7_200) / (12_000 + 8_000))     # 0.9
    assert [(r.location, r.supercharger) for r in away.rows] == [("Supercharger Joliet, IL", True)]
    [section] = [s for s in sections(report) if s.title == "Away from home"]
    assert ("cost away (as Tessie reports it)", "$18.40") in section.blocks[0].rows
    assert ("home charging efficiency (battery / wall)", "90.0 %") in section.blocks[0].rows
