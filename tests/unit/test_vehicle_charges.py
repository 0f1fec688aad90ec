"""The cars' own charges: matched to Wall Connector sessions (home, with the efficiency) or away; stored once."""
from __future__ import annotations

import pytest

from session_store.planning import next_efficiency
from session_store.records import Session
from session_store.storage import Storage
from servicekit.location import Home, haversine_m
from session_store.vehicle_charges import match_charges
from upstreams.tessie_charges import VehicleCharge, parse_charges

VIN, OTHER = "5YJ3E1EA7KF000001", "5YJYGDEE1MF000002"
HOME = Home(41.8781, -87.6298, 150.0)


def session(id_: int, start: float, end: float, wall_wh: float = 10_000, vin: str | None = VIN,
            metered: float | None = None) -> Session:
    return Session(unit="garage", din=None, vin=vin, vehicle="Blue", start=start, end=end, duration_s=end - start,
                   energy_wh=wall_wh, peak_w=7200, average_w=7000, meter_energy_wh=None, supply_cost=0.2,
                   supply_credit=0, delivery_cost=0.5, full_cost=0.7, supply_price_cents=3, cost_final=True,
                   intervals={}, gap_s=0, source="local", reconciliation="pending", metered_energy_wh=metered,
                   id=id_)


def charge(charge_id: str, start: float, end: float, added_wh: float | None = 9_000, vin: str = VIN,
           supercharger: bool = False, lat: float | None = None, lon: float | None = None,
           location: str | None = "Somewhere") -> VehicleCharge:
    return VehicleCharge(charge_id, vin, start, end, location, supercharger, added_wh, None, 40, 60, 1.5, lat, lon)


def name(vin: str) -> str:
    return {VIN: "Blue"}.get(vin, vin)


def test_a_charge_overlapping_the_cars_session_is_home_with_the_efficiency_of_record() -> None:
    [record] = match_charges([charge("1", 1_030, 4_000)], [session(7, 1_000, 4_200, metered=9_500)], name)
    assert (record.away, record.location, record.session_id, record.vehicle) == (False, "home", 7, "Blue")
    assert record.wall_energy_wh == 9_500                       # Fleet's metered energy, not the live integral
    assert record.efficiency == pytest.approx(9_000 / 9_500)


def test_a_supercharger_stop_matches_nothing_and_is_away_with_its_place_and_cost() -> None:
    [record] = match_charges([charge("2", 50_000, 52_000, 30_000, supercharger=True, location="Joliet, IL")],
                             [session(7, 1_000, 4_200)], name)
    assert (record.away, record.location, record.supercharger, record.session_id, record.efficiency) == \
        (True, "Joliet, IL", True, None, None)
    assert record.cost == 1.5


def test_the_session_of_another_car_is_never_matched_but_a_session_without_a_car_is() -> None:
    other = match_charges([charge("3", 1_030, 4_000)], [session(7, 1_000, 4_200, vin=OTHER)], name)
    assert other[0].away and other[0].session_id is None
    unknown = match_charges([charge("3", 1_030, 4_000)], [session(8, 1_000, 4_200, vin=None)], name)
    assert not unknown[0].away and unknown[0].session_id == 8


def test_a_car_pausing_records_two_charges_in_one_session_and_the_efficiency_counts_both() -> None:
    records = match_charges([charge("4", 1_000, 2_000, 4_000), charge("5", 3_000, 4_000, 5_000)],
                            [session(7, 990, 4_100, wall_wh=10_000)], name)
    assert [r.session_id for r in records] == [7, 7]
    assert [r.efficiency for r in records] == [pytest.approx(0.9), pytest.approx(0.9)]


def test_a_short_charge_starting_near_a_session_matches_and_an_implausible_ratio_is_no_efficiency() -> None:
    [near] = match_charges([charge("6", 5_300, 5_400, 1_000)], [session(9, 5_000, 5_200, wall_wh=300)], name)
    assert near.session_id == 9 and near.efficiency is None      # 1000 / 300 Wh is no efficiency


def test_without_a_session_the_configured_home_radius_decides_home_or_away() -> None:
    garage = charge("7", 9_000, 9_500, lat=41.8790, lon=-87.6298)          # ~100 m north
    street = charge("8", 9_000, 9_500, lat=41.8800, lon=-87.6298)          # ~211 m north
    assert haversine_m((41.8781, -87.6298), (41.8790, -87.6298)) == pytest.approx(100.1, abs=0.2)
    records = match_charges([garage, street, charge("9", 9_000, 9_500)], [], name, HOME)
    # no position: away, as far as the suite can tell
    assert [(r.away, r.location) for r in records] == [(False, "home"), (True, "Somewhere"), (True, "Somewhere")]


def test_storage_upserts_a_charge_read_again_and_filters_by_car_and_away(tmp_path) -> None:
    storage = Storage(tmp_path / "s.sqlite3")
    first = match_charges([charge("10", 1_030, 4_000)], [], name)          # the session was not stored yet: away
    assert storage.save_vehicle_charges(first, {VIN: 5_000}) == 1
    again = match_charges([charge("10", 1_030, 4_000)], [session(7, 1_000, 4_200)], name)
    assert storage.save_vehicle_charges(again, {VIN: 6_000}) == 1          # the same row, now home
    assert storage.save_vehicle_charges(again, {VIN: 7_000}) == 0          # nothing changed
    away = match_charges([charge("11", 50_000, 52_000, supercharger=True)], [], name)
    storage.save_vehicle_charges(away, {VIN: 60_000})
    rows = storage.vehicle_charges()
    assert [(r.charge_id, r.away, r.session_id) for r in rows] == [("11", True, None), ("10", False, 7)]
    assert [r.charge_id for r in storage.vehicle_charges(vehicles=["Blue"], away=True)] == ["11"]
    assert storage.vehicle_charges(vins=[OTHER]) == []
    assert storage.imported_until() == {VIN: 60_000}
    assert [tuple(row) for row in storage.away_totals()] == [("Blue", 1, 9_000.0, 1.5)]


def test_the_planner_learns_each_session_once_and_only_plausible_ratios() -> None:
    assert next_efficiency(None, 0.9, 100.0) == (0.9, 1, 100.0)
    assert next_efficiency((0.9, 1, 100.0), 0.8, 100.0) is None                     # this session was learned
    assert next_efficiency((0.9, 1, 100.0), 0.8, 200.0) == (pytest.approx(0.87), 2, 200.0)
    assert next_efficiency((0.9, 1, 100.0), 0.4, 300.0) is None                     # a mismatch, not an efficiency


def test_parse_charges_is_tolerant_and_converts_kwh_to_wh_exactly() -> None:
    body = {"results": [
        {"id": 7, "started_at": 100, "ended_at": 200, "energy_added": 18.47, "energy_used": 20.1,
         "is_supercharger": True, "location": " Joliet ", "cost": 9.5, "starting_battery": 20, "ending_battery": 80},
        {"id": 8, "started_at": 300, "ended_at": 200},                         # ends before it starts
        {"started_at": 1, "ended_at": 2},                                      # no id
        {"id": 9, "started_at": 1, "ended_at": 2, "energy_added": "x", "cost": None}]}
    parsed = parse_charges(body, VIN)
    assert [c.charge_id for c in parsed] == ["7", "9"]
    assert parsed[0].energy_added_wh == 18470.0 and parsed[0].location == "Joliet" and parsed[0].supercharger
    assert parsed[1].energy_added_wh is None and parsed[1].cost is None and not parsed[1].supercharger


def test_the_first_history_import_reads_history_days_and_sessions_get_the_energy_site(tmp_path) -> None:
    import logging

    from servicekit.config import load
    from session_store.service import HISTORY_DAYS, SessionService

    storage = Storage(tmp_path / "s.sqlite3")
    storage.save_step({}, [session(None, 1_000, 2_000)], [], 2_000)    # recorded before the site was known
    config = load({"sessions": {"history_days": 45}}, {}, {})
    service = SessionService(config, storage, None, logging.getLogger("test"))  # type: ignore[arg-type]
    assert service.history_window("42") == 45
    service.history_imported("42", 3_000)
    assert service.history_window("42") == HISTORY_DAYS == 7
    assert [s.energy_site_id for s in storage.sessions()] == ["42"]
    assert load({}, {}, {}).sessions.history_days == 30


def test_a_charge_waits_while_a_session_of_its_car_or_of_an_unknown_car_is_open_or_not_evaluated(tmp_path) -> None:
    import logging

    from servicekit.config import load
    from session_store.charge_import import VehicleChargeImport

    storage = Storage(tmp_path / "s.sqlite3")
    storage.save_step({}, [session(None, 1_000, 4_200)], [], 10_000)            # evaluated up to 10,000
    opened: list[tuple[float, str | None]] = []
    importer = VehicleChargeImport(load({}, {}, {}), storage, None, logging.getLogger("test"),  # type: ignore[arg-type]
                                   lambda: opened, clock=lambda: 20_000)
    home, late = charge("1", 1_030, 4_000), charge("2", 9_000, 11_000)              # `late` ends past the watermark
    opened[:] = [(3_000, VIN)]                                                      # this car: it may be its session
    assert importer._store({VIN: [home, late]}, 20_000).deferred == 2
    opened[:] = [(3_000, None)]                                                     # a car not known yet: it may be
    assert importer._store({VIN: [home]}, 20_000).deferred == 1
    opened[:] = [(3_000, OTHER)]                                                    # another car's session: no
    result = importer._store({VIN: [home, late]}, 20_000)
    assert (result.deferred, result.changed) == (1, 1)
    [stored] = storage.vehicle_charges()
    assert (stored.charge_id, stored.away, stored.session_id) == ("1", False, 1)
