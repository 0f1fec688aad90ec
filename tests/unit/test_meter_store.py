"""Meter reads and bills in SQLite: corrections replace and count a revision, never a second row; the
publication ledger gives Prometheus increments whose sums are the corrected totals, and replaying the
outbox after a crash repeats identical samples only."""
from __future__ import annotations

import os
import stat
from zoneinfo import ZoneInfo

import pytest

from meter import credentials
from meter.publish import openmetrics, wanted
from session_store.meter_records import Bill, MeterRead
from session_store.storage import Storage

CHICAGO = ZoneInfo("America/Chicago")
T0 = 1_790_000_000.0 - 1_790_000_000.0 % 1800    # a half-hour boundary


def reads(values: list[float], cost_per_kwh: float = 0.1) -> list[MeterRead]:
    return [MeterRead(T0 + i * 1800, T0 + (i + 1) * 1800, kwh, kwh * cost_per_kwh) for i, kwh in enumerate(values)]


@pytest.fixture
def storage(tmp_path):
    store = Storage(tmp_path / "s.sqlite3", CHICAGO)
    yield store
    store.close()


def test_a_correction_replaces_the_read_and_counts_a_revision(storage):
    assert storage.upsert_meter_reads(reads([1.0, 2.0]), now=10) == (2, 0)
    assert storage.upsert_meter_reads(reads([1.0, 2.0]), now=11) == (0, 0)       # a re-pull changes nothing
    assert storage.upsert_meter_reads(reads([1.0, 2.5]), now=12) == (0, 1)
    stored = storage.meter_reads()
    assert [(r.kwh, r.revision) for r in stored] == [(1.0, 0), (2.5, 1)]
    assert sum(d.kwh for d in storage.meter_days()) == pytest.approx(3.5)
    assert storage.meter_summary()["corrections"] == 1


def test_a_read_pulled_without_its_cost_keeps_the_cost_it_had(storage):
    storage.upsert_meter_reads(reads([1.0]), now=10)
    storage.upsert_meter_reads([MeterRead(T0, T0 + 1800, 1.0, None)], now=11)
    assert storage.meter_reads()[0].cost == pytest.approx(0.1)


def test_an_issued_bill_replaces_the_estimate_of_its_period(storage):
    estimate = Bill(T0, T0 + 30 * 86400, "2026-10-10", 300.0, 40.0, 40.0, estimated=True)
    storage.upsert_bills([estimate], now=1)
    assert [b.estimated for b in storage.meter_bills()] == [True]
    actual = Bill(T0, T0 + 30 * 86400, "2026-11-03", 600.0, 95.0, 75.44, estimated=False)
    storage.upsert_bills([actual], now=2)
    assert storage.meter_bills() == [actual]
    storage.upsert_bills([actual], now=3)
    assert storage.meter_bills() == [actual]


def _sums(rows) -> dict[str, float]:
    out: dict[str, float] = {}
    for _, series, _, value in rows:
        out[series] = out.get(series, 0.0) + value
    return out


def test_published_increments_sum_to_the_corrected_values_without_shared_timestamps(storage):
    storage.upsert_meter_reads(reads([1.0, 2.0]), now=10)
    storage.stage_publication(wanted(storage.meter_reads(), {}, "comed"))
    storage.upsert_meter_reads(reads([1.0, 2.5]), now=11)
    storage.stage_publication(wanted(storage.meter_reads(), {}, "comed"))
    storage.upsert_meter_reads(reads([1.0, 2.25]), now=12)
    storage.stage_publication(wanted(storage.meter_reads(), {}, "comed"))
    rows = storage.pending_publication()
    energy = 'utility_meter_read_energy_joules{utility="comed"}'
    assert _sums(rows)[energy] == pytest.approx(3.25 * 3.6e6)
    stamps = [(series, t) for _, series, t, _ in rows]
    assert len(stamps) == len(set(stamps))
    second_end_ms = int((T0 + 3600) * 1000)
    # a millisecond before the end, each correction a millisecond earlier: a day's window ending at midnight
    # holds exactly its reads whether the range includes its start (Prometheus 2) or not (3)
    assert sorted(t for _, s, t, _ in rows if s == energy and t > second_end_ms - 10) == [
        second_end_ms - 3, second_end_ms - 2, second_end_ms - 1]
    # nothing new to stage: the same values again
    assert storage.stage_publication(wanted(storage.meter_reads(), {}, "comed")) == 0


def test_the_outbox_survives_until_marked_written(tmp_path):
    path = tmp_path / "s.sqlite3"
    store = Storage(path, CHICAGO)
    store.upsert_meter_reads(reads([1.0]), now=10)
    store.stage_publication(wanted(store.meter_reads(), {}, "comed"))
    before = store.pending_publication()
    store.close()                                   # a crash before the blocks were written
    store = Storage(path, CHICAGO)
    assert store.pending_publication() == before    # the same rows: the same samples, written again
    store.mark_published([row[0] for row in before])
    assert store.pending_publication() == []
    store.close()


def test_openmetrics_keeps_each_series_in_time_order_with_millisecond_stamps():
    rows = [(1, 'a{utility="comed"}', 1_800_000, 2.0), (2, 'a{utility="comed"}', 1_799_999, 0.5)]
    text = openmetrics(rows)
    assert text.splitlines()[2:4] == ['a{utility="comed"} 0.5 1799.999', 'a{utility="comed"} 2.0 1800.000']
    assert text.endswith("# EOF\n")


def test_the_login_file_is_private_atomic_and_never_shows_the_token(tmp_path):
    path = tmp_path / "login.json"
    credential = credentials.Credential("comed", "me@example.com", {"token": "refresh-SECRET", "account": {}}, 5.0)
    credentials.save(path, credential)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "refresh-SECRET" not in repr(credentials.load(path))
    assert credentials.load(path).login_data["token"] == "refresh-SECRET"
    assert [p.name for p in tmp_path.iterdir()] == ["login.json"]      # no temporary left behind
    os.chmod(path, 0o644)
    with pytest.raises(credentials.CredentialError, match="chmod 600"):
        credentials.load(path)
    with pytest.raises(credentials.CredentialError, match="charging-meter --setup|charging-meter setup"):
        credentials.load(tmp_path / "missing.json")
