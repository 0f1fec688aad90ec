"""Reconciliation plan: late records match live sessions, unexplained ones are inserted once, mappings learned."""
from __future__ import annotations

from upstreams.tessie import ChargeRecord
from session_store.reconciliation import plan
from session_store.records import Session

DIN = "1457768-02-G--PGT0000000001"
VIN = "5YJ3E1EA7KF000001"
TARGET = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def session(id_: int, start: float, reconciliation: str = "pending", metered: float | None = None,
            vin: str | None = VIN) -> Session:
    return Session(unit="garage", din=DIN, vin=vin, vehicle="Blue", start=start, end=start + 3600, duration_s=3600,
                   energy_wh=7000, peak_w=7200, average_w=7000, meter_energy_wh=None, supply_cost=0.2,
                   supply_credit=0, delivery_cost=0.5, full_cost=0.7, supply_price_cents=3, cost_final=True,
                   intervals={}, gap_s=0, source="live_status", reconciliation=reconciliation,
                   metered_energy_wh=metered, target_id=None, id=id_)


def record(start: float, energy: float = 7100, target: str | None = TARGET) -> ChargeRecord:
    return ChargeRecord(DIN, start, 3600, energy, target)


def test_record_within_the_window_matches_the_nearest_live_session_and_teaches_the_vehicle() -> None:
    result = plan([record(10_300)], [session(1, 10_000), session(2, 10_400)], {})
    assert [(m.session_id, m.record.energy_wh) for m in result.matches] == [(2, 7100)]
    assert result.inserts == [] and result.learned == {TARGET: VIN}


def test_record_no_live_session_explains_is_inserted_and_then_never_again() -> None:
    first = plan([record(50_000)], [session(1, 10_000)], {})
    assert first.inserts == [record(50_000)] and first.matches == []
    inserted = session(2, 50_000, reconciliation="inserted", metered=7100, vin=None)
    again = plan([record(50_000)], [session(1, 10_000), inserted], {})
    assert again.inserts == [] and again.matches == [], "the inserted session explains its own record"


def test_already_matched_sessions_are_left_alone_and_zero_records_ignored() -> None:
    done = session(1, 10_000, reconciliation="matched", metered=7100)
    assert plan([record(10_000), record(20_000, energy=0)], [done], {TARGET: VIN}).matches == []


def test_one_record_claims_one_session() -> None:
    result = plan([record(10_000), record(10_100)], [session(1, 10_050)], {})
    assert len(result.matches) == 1 and len(result.inserts) == 1


def test_a_record_the_live_data_may_still_explain_waits_instead_of_being_inserted() -> None:
    """Its charge ends after the watermark (or its unit's session is still open): inserting it now would count the
    charge twice once the live session completes; on a later pass it matches that session."""
    early = plan([record(50_000)], [], {}, deferred=lambda r: r.start + r.duration_s > 52_000)
    assert early.inserts == [] and early.matches == []
    later = plan([record(50_000)], [session(1, 50_010)], {}, deferred=lambda r: False)
    assert [m.session_id for m in later.matches] == [1] and later.inserts == []


def test_deferred_records_are_listed_so_the_import_runs_again_soon() -> None:
    result = plan([record(50_000), record(90_000)], [], {}, deferred=lambda r: r.start > 80_000)
    assert result.inserts == [record(50_000)] and result.deferred == [record(90_000)]
