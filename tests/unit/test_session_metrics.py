"""The session store's counters exist at 0 for every known unit and vehicle before their first session,
so Prometheus sees the first session as an increment (issue 13: `increase()` missed the first session of
every unit and vehicle, whose series appeared at its full value)."""
from __future__ import annotations

import logging
from pathlib import Path

from servicekit.config import load
from session_store.records import Session
from session_store.service import SessionService
from session_store.storage import Storage
from testkit.exposition import samples as parsed_samples
from testkit.store import session_metrics_text

BLUE, GREEN = "5YJ3E1EA7KF000021", "7SAYGDEE1PA000099"
GARAGE, DRIVEWAY = "1457768-01-G--PGT00000000021", "1457768-02-G--PGT00000000022"
CONFIG = {"sessions": {"source": "fleet"}, "vehicles": {"names": {BLUE: "Blue"}},
          "energy_site": {"unit_names": {GARAGE: "garage"}}}
BY_VEHICLE = ("charging_sessions_completed_total", "charging_session_energy_joules_total",
              "charging_session_reference_cost_dollars_total", "charging_sessions_provisional")


def session(unit: str, vehicle: str | None, start: float, energy_wh: float) -> Session:
    return Session(unit=unit, din=None, vin=None, vehicle=vehicle, start=start, end=start + 3600, duration_s=3600,
                   energy_wh=energy_wh, peak_w=7000, average_w=energy_wh, meter_energy_wh=None, supply_cost=0.3,
                   supply_credit=0.0, delivery_cost=0.2, full_cost=0.5, supply_price_cents=10.0, cost_final=True,
                   intervals={start + 300: energy_wh}, gap_s=0.0, source="live_status", reconciliation="pending",
                   reference_cost=0.6)


def exposed(storage: Storage, service: SessionService) -> dict[str, dict[tuple, float]]:
    """Metric name -> {sorted label items: value}, as Prometheus would scrape it."""
    samples: dict[str, dict[tuple, float]] = {}
    for sample in parsed_samples(session_metrics_text(storage, service)):
        samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def pairs(samples: dict[tuple, float]) -> dict[tuple[str, str], float]:
    return {(dict(labels)["unit"], dict(labels).get("vehicle", "")): value for labels, value in samples.items()}


def service_of(tmp_path: Path) -> tuple[Storage, SessionService]:
    storage = Storage(tmp_path / "sessions.db")
    service = SessionService(load(CONFIG, {}, {}), storage, prometheus=None, log=logging.getLogger("test"))
    return storage, service


def test_every_known_unit_and_vehicle_is_exported_at_zero_before_its_first_session(tmp_path: Path) -> None:
    storage, service = service_of(tmp_path)
    service.working.names[DRIVEWAY] = "driveway"            # seen in the power series, no session yet
    samples = exposed(storage, service)
    # configured and seen units x configured vehicles and "no vehicle" (the empty label)
    known = {(unit, vehicle) for unit in ("garage", "driveway") for vehicle in ("Blue", "")}
    for name in BY_VEHICLE:
        assert pairs(samples[name]) == {pair: 0.0 for pair in known}, name
    costs = samples["charging_session_cost_dollars_total"]
    assert {(dict(k)["unit"], dict(k).get("vehicle", ""), dict(k)["component"]) for k in costs} == \
        {(*pair, component) for pair in known for component in ("supply", "supply_credit", "delivery")}
    assert set(costs.values()) == {0.0}
    assert {(dict(k)["unit"], dict(k)["reason"]): v for k, v in samples["charging_sessions_discarded_total"].items()} \
        == {(unit, reason): 0.0 for unit in ("garage", "driveway") for reason in ("too_short", "too_small")}
    assert "charging_session_first_recorded_timestamp_seconds" not in samples, "absent until a session is stored"


def test_a_session_of_a_new_vehicle_adds_it_for_every_unit_and_keeps_the_rest(tmp_path: Path) -> None:
    storage, service = service_of(tmp_path)
    service.working.names[DRIVEWAY] = "driveway"
    storage.save_step({}, [session("garage", "Green", 1_000_000.0, 968.0), session("garage", None, 1_010_000.0, 712.0)],
                      [("driveway", "too_short")], 1_020_000.0)
    samples = exposed(storage, service)
    energy = pairs(samples["charging_session_energy_joules_total"])
    assert energy == {("garage", "Green"): 968.0 * 3600, ("garage", ""): 712.0 * 3600, ("garage", "Blue"): 0.0,
                      ("driveway", "Green"): 0.0, ("driveway", ""): 0.0, ("driveway", "Blue"): 0.0}
    assert pairs(samples["charging_sessions_completed_total"]) == {pair: float(pair in {("garage", "Green"),
                                                                                           ("garage", "")})
                                                                   for pair in energy}
    discarded = {(dict(k)["unit"], dict(k)["reason"]): v
                 for k, v in samples["charging_sessions_discarded_total"].items()}
    assert discarded[("driveway", "too_short")] == 1.0 and discarded[("garage", "too_small")] == 0.0
    [first] = samples["charging_session_first_recorded_timestamp_seconds"].values()
    created = storage.db.execute("SELECT MIN(created_at) FROM sessions").fetchone()[0]
    assert first == created
    # the last session's car, for the session-completed notification
    assert pairs(samples["charging_session_last_info"]) == {("garage", ""): 1.0}


def test_units_of_the_other_source_are_not_exported(tmp_path: Path) -> None:
    """The local API's chargers name units only when sessions come from it."""
    storage = Storage(tmp_path / "sessions.db")
    config = load({**CONFIG, "wall_connectors": {"chargers": [{"name": "barn", "address": "192.0.2.7"}]}}, {}, {})
    service = SessionService(config, storage, prometheus=None, log=logging.getLogger("test"))
    assert {unit for unit, _ in pairs(exposed(storage, service)["charging_sessions_completed_total"])} == {"garage"}
    local = load({**CONFIG, "sessions": {"source": "local"},
                  "wall_connectors": {"chargers": [{"name": "barn", "address": "192.0.2.7"}]}}, {}, {})
    service = SessionService(local, storage, prometheus=None, log=logging.getLogger("test"))
    assert {unit for unit, _ in pairs(exposed(storage, service)["charging_sessions_completed_total"])} == {"barn"}


def test_away_charging_is_counted_per_vehicle_from_zero(tmp_path: Path) -> None:
    from session_store.records import VehicleChargeRecord

    storage, service = service_of(tmp_path)
    storage.save_step({}, [session("garage", "Green", 1_000_000.0, 968.0)], [], 1_020_000.0)
    by_vehicle = {dict(k)["vehicle"]: v for k, v in exposed(storage, service)["charging_away_cost_dollars_total"].items()}
    assert by_vehicle == {"Blue": 0.0, "Green": 0.0}          # configured, or with a session: 0 before the first
    storage.save_vehicle_charges([VehicleChargeRecord(BLUE, "Blue", "7", 2e6, 2e6 + 1800, "Joliet", True, True,
                                                      27_150.0, 28_580.0, 40, 80, 14.29)], {BLUE: 2e6})
    samples = exposed(storage, service)
    assert {dict(k)["vehicle"]: v for k, v in samples["charging_away_cost_dollars_total"].items()} == \
        {"Blue": 14.29, "Green": 0.0}
    assert samples["charging_away_energy_joules_total"][(("vehicle", "Blue"),)] == 27_150.0 * 3600
    assert samples["charging_away_charges_total"][(("vehicle", "Blue"),)] == 1.0
