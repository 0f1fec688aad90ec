"""Session detection and costing with hand-built arrays: dips, grace, thresholds, restarts, gaps."""
from __future__ import annotations

import numpy as np
import pytest

from zoneinfo import ZoneInfo

from billing.tariff import HOURLY_AVERAGE, Tariff
from session_store.costing import cost_fields, session_bill
from session_store.sessions import Completed, Discarded, Params, UnitState, known_alike, segment_energy, step

P = Params(threshold_w=100, grace_s=600, max_gap_s=300, min_energy_wh=100, min_duration_s=60)


def series(*runs: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Runs of (seconds, watts) sampled every 15 s, back to back, starting at t=0."""
    t, w, now = [], [], 0.0
    for seconds, watts in runs:
        for _ in range(int(seconds // 15)):
            t.append(now)
            w.append(watts)
            now += 15
    return np.array(t), np.array(w)


def completed(events) -> list[Completed]:
    return [e for e in events if isinstance(e, Completed)]


def test_constant_power_gives_exact_energy_and_timing() -> None:
    t, w = series((300, 0), (3600, 7200), (1200, 0))
    state, events = step(UnitState(), t, w, P)
    [session] = completed(events)
    assert session.start == 300 and session.end == 300 + 3600 - 15
    # 3585 s between the first and last sample at 7.2 kW, plus the 15-s ramps up and down (15 Wh each)
    assert session.energy_wh == pytest.approx(7200 * 3585 / 3600 + 2 * 15)
    assert state.open is None


def test_brief_dip_does_not_split_and_its_energy_counts() -> None:
    t, w = series((60, 0), (1800, 11500), (300, 0), (1800, 11500), (900, 0))
    _, events = step(UnitState(), t, w, P)
    assert len(completed(events)) == 1


def test_below_for_longer_than_grace_splits() -> None:
    t, w = series((60, 0), (1800, 11500), (660, 0), (1800, 11500), (900, 0))
    _, events = step(UnitState(), t, w, P)
    assert len(completed(events)) == 2


def test_power_exactly_at_the_threshold_is_not_charging() -> None:
    t, w = series((60, 0), (1800, 100), (900, 0))
    _, events = step(UnitState(), t, w, P)
    assert events == []


def test_disconnect_ends_the_session_at_once() -> None:
    t, w = series((60, 0), (600, 7000), (120, 0))
    _, events = step(UnitState(), t, w, P, connected=[(700.0, False)])
    [session] = completed(events)
    assert session.end == 645


def test_an_unplug_delivered_late_still_ends_the_session_at_the_unplug() -> None:
    """Remote write sends each series in its own batches: one evaluation may see the power of a re-plug
    after an unplug whose link sample has not arrived. Evaluated with what both series hold, the next
    evaluation (with the late unplug) still ends the session there, as one pass over everything does."""
    t, w = series((60, 0), (600, 7000), (15, 0), (45, 7000), (900, 0))   # unplugged at 660, re-plugged at 675
    # (the power to 690 s has arrived, the links only to 645 s)
    links = [(float(x), not 660 <= x < 675) for x in t]
    _, whole = step(UnitState(), t, w, P, connected=links)
    arrived = [link for link in links if link[0] < 660]                   # the unplug and after: not yet
    samples, connected = known_alike(list(zip(t[:47].tolist(), w[:47].tolist())), arrived, late_s=60)
    assert samples[-1][0] <= 645 and connected == arrived                 # the power ahead of the links waits
    first, early = step(UnitState(), [x for x, _ in samples], [v for _, v in samples], P, connected=connected)
    _, late = step(first, t, w, P, connected=links)
    assert early + late == whole and completed(whole)[0].end == 645
    # without holding back, the re-plug's power runs the first session past the unplug it cannot see
    hasty, _ = step(UnitState(), t[:47], w[:47], P, connected=arrived)
    _, merged = step(hasty, t, w, P, connected=links)
    assert completed(merged)[0].end > 645


def test_a_link_series_far_behind_has_stopped_and_holds_nothing_back() -> None:
    samples = [(float(x), 7000.0) for x in range(0, 600, 15)]
    stopped = [(0.0, True), (15.0, True)]                   # 570 s behind the power: not a delivery lag
    assert known_alike(samples, stopped, late_s=60) == (samples, stopped)
    assert known_alike(samples, [], late_s=60) == (samples, [])


def test_restart_in_the_middle_gives_the_same_session_as_one_pass() -> None:
    t, w = series((60, 0), (5400, 9000), (900, 0))
    _, whole = step(UnitState(), t, w, P)
    for cut in (70, 200, 365):
        first, early = step(UnitState(), t[:cut], w[:cut], P)
        assert early == [] and first.open is not None
        _, late = step(first, t, w, P)  # replaying already-seen samples is harmless
        assert late == whole


def test_short_or_small_sessions_are_discarded_with_a_reason() -> None:
    t, w = series((60, 0), (45, 7000), (900, 0), (1800, 150), (900, 0))
    _, events = step(UnitState(), t, w, P)
    assert [(type(e), e.reason) for e in events] == [(Discarded, "too_short"), (Discarded, "too_small")]


def test_missing_data_is_not_integrated_but_recorded_as_a_gap() -> None:
    t, w = series((60, 0), (1800, 7200), (900, 0))
    keep = (t < 900) | (t >= 1500)   # 10 minutes of samples missing in the middle
    _, events = step(UnitState(), t[keep], w[keep], P)
    [session] = completed(events)
    assert session.gap_s == pytest.approx(615)
    # charging 60..885 and 1500..1845 at 7.2 kW, plus the 15-s ramps up and down (15 Wh each)
    assert session.energy_wh == pytest.approx(7200 * (825 + 345) / 3600 + 2 * 15, rel=1e-9)


def test_vin_seen_while_open_names_the_session() -> None:
    t, w = series((60, 0), (1800, 7200), (900, 0))
    _, events = step(UnitState(), t, w, P, vins=[(30.0, "5YJ3E1EA7KF000001"), (600.0, "5YJ3E1EA7KF000001")])
    assert completed(events)[0].vin == "5YJ3E1EA7KF000001"


def test_segment_energy_is_split_exactly_at_five_minute_boundaries() -> None:
    parts = segment_energy(290.0, 3600.0, 310.0, 3600.0)
    assert parts == {300.0: pytest.approx(10.0), 600.0: pytest.approx(10.0)}


HOUR = 1_784_000_000 // 3600 * 3600          # a clock hour in Chicago too (whole-hour offsets)
TARIFF = Tariff(ZoneInfo("America/Chicago"), HOURLY_AVERAGE, delivery_per_kwh=0.075,
                reference_supply_per_kwh=0.10)


def test_session_cost_fields_come_from_the_hourly_bill_with_credits_apart() -> None:
    intervals = {HOUR + 300.0: 1000.0, HOUR + 3900.0: 1000.0}                   # 1 kWh in each of two hours
    prices = {HOUR + 300.0 * i: (4.0 if i <= 12 else -2.0) for i in range(1, 25)}
    fields = cost_fields(session_bill(intervals, prices, TARIFF, now=HOUR + 7200))
    assert fields["supply_cost"] == pytest.approx(0.02) and fields["supply_credit"] == pytest.approx(0.02)
    assert fields["delivery_cost"] == pytest.approx(0.15) and fields["full_cost"] == pytest.approx(0.17)
    assert fields["reference_cost"] == pytest.approx(0.20 + 0.15) and fields["cost_final"]
    assert fields["supply_price_cents"] == pytest.approx(1.0) and len(fields["bill_lines"]) == 2


def test_an_hour_still_missing_prices_an_hour_after_it_ended_is_billed_at_what_was_published() -> None:
    intervals = {HOUR + 300.0: 1000.0}
    prices = {HOUR + 300.0: 5.0, HOUR + 600.0: 7.0}                              # 2 of 12 published
    soon = cost_fields(session_bill(intervals, prices, TARIFF, now=HOUR + 3600 + 60))
    assert not soon["cost_final"] and soon["supply_cost"] == pytest.approx((5 + 7 * 11) / 12 / 100)
    late = cost_fields(session_bill(intervals, prices, TARIFF, now=HOUR + 7200 + 60))
    assert late["cost_final"] and late["supply_cost"] == pytest.approx(0.06)


def test_replayed_link_observations_do_not_end_a_later_session() -> None:
    """A window re-read after a restart repeats an old disconnect: it must not close the next car's session."""
    t, w = series((60, 0), (600, 7000), (300, 0), (900, 7000), (900, 0))
    unplug = (700.0, False)
    first, early = step(UnitState(), t[:70], w[:70], P, connected=[unplug])
    assert len(completed(early)) == 1 and first.open is not None   # the second session is open
    later, rest = step(first, t, w, P, connected=[unplug])         # the same observations again
    assert [s.start for s in completed(rest)] == [960.0]


def test_a_short_sessions_average_power_never_exceeds_its_peak() -> None:
    """The ramps from and to the samples around the session are integrated, so the average is taken
    over the same seconds as the energy (found end to end: 47.9 Wh in 14 s read as 12.3 kW > 11.5 kW peak)."""
    t = np.arange(0, 60, 5.0)
    watts = np.where((t >= 10) & (t <= 24), 11500.0, 0.0)
    _, events = step(UnitState(), t, watts, Params(grace_s=20, min_energy_wh=1, min_duration_s=1))
    [done] = [e for e in events if isinstance(e, Completed)]
    # samples at 10, 15, 20 s: full power for 10 s plus two 5-s ramps = 15 s of full power over 20 s
    assert done.duration_s == 10 and done.energy_wh == pytest.approx(11500 * 15 / 3600)
    assert done.span_s == 20 and done.average_w == pytest.approx(11500 * 15 / 20)
    assert done.average_w < done.peak_w
