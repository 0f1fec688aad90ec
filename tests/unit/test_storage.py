"""Storage queries the metrics and API lean on: the newest session per unit, summaries' per-day
rows, batched iteration, the write version that lets readers cache aggregates, and the migration
that reprices sessions stored before the tariff."""
from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from billing.tariff import Line
from session_store.records import Session
from session_store.storage import MIGRATIONS, Storage

CHICAGO = ZoneInfo("America/Chicago")


def session(unit: str, start: float, energy_wh: float = 1000.0) -> Session:
    return Session(unit=unit, din=None, vin=None, vehicle=None, start=start, end=start + 3600, duration_s=3600,
                   energy_wh=energy_wh, peak_w=7000, average_w=1000, meter_energy_wh=None, supply_cost=0.1,
                   supply_credit=0.0, delivery_cost=0.05, full_cost=0.15, supply_price_cents=10.0, cost_final=True,
                   intervals={start + 300: energy_wh}, gap_s=0.0, source="live_status", reconciliation="pending",
                   metered_energy_wh=None, target_id=None)


def test_newest_session_per_unit_summary_rows_and_batches(tmp_path) -> None:
    storage = Storage(tmp_path / "s.db")
    stored = [session(unit, day * 86400.0 + offset, energy_wh=day + 1)
              for day in range(30) for unit, offset in (("garage", 0), ("driveway", 7200), ("barn", 3600))]
    version = storage.version
    storage.save_step({}, stored, [], 30 * 86400.0)
    assert storage.version == version + 1, "a committed write moves the version"
    last = {s.unit: s.start for s in storage.last_sessions()}
    assert last == {"garage": 29 * 86400.0, "driveway": 29 * 86400.0 + 7200, "barn": 29 * 86400.0 + 3600}
    rows = storage.day_totals(unit="barn")
    assert [r["day"] for r in rows] == sorted(r["day"] for r in rows) and len(rows) == 30
    assert rows[-1]["energy_wh"] == 30 and {r["sessions"] for r in rows} == {1}
    batches = list(storage.iter_sessions(batch=40))
    assert [len(b) for b in batches] == [40, 40, 10]
    assert [s.start for b in batches for s in b] == sorted((s.start for s in stored), reverse=True)
    assert storage.version == version + 1, "reads leave the version alone"


def test_a_session_across_midnight_counts_each_days_share_and_once_as_a_session(tmp_path) -> None:
    storage = Storage(tmp_path / "s.db", CHICAGO)
    midnight = datetime(2026, 7, 15, tzinfo=CHICAGO).timestamp()
    lines = (Line(midnight, 1500.0, 2.0, 0.03, 0.1125, True), Line(midnight + 3600, 2500.0, 6.0, 0.15, 0.1875, True))
    stored = replace(session("garage", midnight - 3600, energy_wh=4000.0), end=midnight + 3600, supply_cost=0.18,
                     delivery_cost=0.30, full_cost=0.48, reference_cost=0.70, bill_lines=lines)
    storage.save_step({}, [stored], [], midnight + 7200)
    rows = storage.day_totals()
    assert [(r["day"], r["sessions"], r["energy_wh"]) for r in rows] == [("2026-07-14", 1, 1500.0),
                                                                        ("2026-07-15", 0, 2500.0)]
    assert rows[1]["supply_cost"] == pytest.approx(0.15) and rows[1]["delivery_cost"] == pytest.approx(0.1875)
    assert rows[1]["reference_cost"] == pytest.approx(2.5 * 0.1 + 0.1875)   # (0.70 - 0.30) / 4 kWh = $0.10/kWh
    assert [r["day"] for r in storage.day_totals(start=midnight)] == ["2026-07-15"]
    assert [r["day"] for r in storage.day_totals(end=midnight)] == ["2026-07-14"]
    assert storage.session(1).public(lines=True)["bill_lines"][1]["price_cents"] == 6.0


def test_sessions_stored_before_the_tariff_are_marked_for_repricing(tmp_path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:4], start=1):
        for statement in filter(str.strip, script.split(";")):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {number}")
    db.execute("INSERT INTO sessions (unit, start, end, duration_s, energy_wh, peak_w, average_w, supply_cost, "
               "supply_credit, delivery_cost, full_cost, cost_final, intervals, source, reconciliation, created_at) "
               "VALUES ('garage', 0, 3600, 3600, 1000, 7000, 1000, 0.03, 0, 0.075, 0.105, 1, '[[300.0, 1000.0]]', "
               "'live_status', 'pending', 0)")
    db.close()
    storage = Storage(path)
    [legacy] = storage.sessions(provisional_only=True)
    assert (legacy.supply_cost, legacy.bill_lines, legacy.reference_cost) == (0.03, (), None)
    storage.update_costs([replace(legacy, cost_final=True)])       # its prices were gone: it keeps its cost
    [day] = storage.day_totals()
    assert (day["day"], day["supply_cost"], day["final"]) == ("1970-01-01", 0.03, 1)


def test_the_api_shape_carries_no_float_noise(tmp_path) -> None:
    noisy = replace(session("garage", 1000.0, energy_wh=1600.0000000000008), peak_w=11500.710000000001,
                    supply_cost=0.1 + 0.2, duration_s=3600.0000000004)
    shown = noisy.public()
    assert (shown["energy_wh"], shown["peak_w"], shown["supply_cost"], shown["duration_s"]) == (1600.0, 11500.7, 0.3,
                                                                                                  3600.0)
    assert shown["unit"] == "garage" and shown["cost_final"] is True
