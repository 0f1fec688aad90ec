"""Storage queries the metrics and API lean on: the newest session per unit, summaries' rows, batched
iteration, and the write version that lets readers cache aggregates."""
from __future__ import annotations

from session_store.storage import Session, Storage


def session(unit: str, start: float, energy_wh: float = 1000.0) -> Session:
    return Session(unit=unit, din=None, vin=None, vehicle=None, start=start, end=start + 3600, duration_s=3600,
                   energy_wh=energy_wh, peak_w=7000, average_w=1000, meter_energy_wh=None, supply_cost=0.1,
                   supply_credit=0.0, delivery_cost=0.05, full_cost=0.15, average_price_cents=10.0, cost_final=True,
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
    rows = storage.summary_rows(unit="barn")
    assert [r[0] for r in rows] == sorted(r[0] for r in rows) and len(rows) == 30 and rows[-1][1] == 30
    batches = list(storage.iter_sessions(batch=40))
    assert [len(b) for b in batches] == [40, 40, 10]
    assert [s.start for b in batches for s in b] == sorted((s.start for s in stored), reverse=True)
    assert storage.version == version + 1, "reads leave the version alone"
