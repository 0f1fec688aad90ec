"""Reconciliation with Fleet `telemetry_history` (kind=charge), which arrives hours or days late.

A record matches the live session of the same unit (DIN) that started within `window_s` of it:
the session keeps its live timing and gains the meter's energy of record and the record's
`target_id`. A record no live session explains (the sidecar was down, Prometheus lost the data)
becomes a session of its own, source `telemetry_history`. Nothing is ever inserted twice: an
inserted session matches its own record on the next pass. Matches teach which vehicle a
`target_id` (not a VIN) stands for. A record the live data may still explain (its charge ends after the
watermark, or its unit has a session open since before it ended) waits for a later pass: inserting it
now would count the charge twice once the live session completes.

    plan(records, sessions, known_targets, window_s, deferred) -> Plan(matches, inserts, learned)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from upstreams.tessie import ChargeRecord
from session_store.records import Session

MATCH_WINDOW_S = 300.0


@dataclass(frozen=True)
class Match:
    session_id: int
    record: ChargeRecord


@dataclass(frozen=True)
class Plan:
    matches: list[Match] = field(default_factory=list)
    inserts: list[ChargeRecord] = field(default_factory=list)
    learned: dict[str, str] = field(default_factory=dict)    # target_id -> VIN
    deferred: list[ChargeRecord] = field(default_factory=list)   # for the live data to explain first


def plan(records: Sequence[ChargeRecord], sessions: Sequence[Session], known_targets: Mapping[str, str],
         window_s: float = MATCH_WINDOW_S, deferred: Callable[[ChargeRecord], bool] = lambda record: False) -> Plan:
    result = Plan()
    by_din: dict[str, list[Session]] = {}
    for session in sessions:
        if session.din:
            by_din.setdefault(session.din, []).append(session)
    claimed: set[int] = set()
    for record in sorted(records, key=lambda r: r.start):
        if record.energy_wh <= 0 or record.duration_s <= 0:
            continue  # clients see zero records too; they describe no charge
        candidates = [s for s in by_din.get(record.din, []) if abs(s.start - record.start) <= window_s
                      and s.id not in claimed]
        if not candidates:
            (result.deferred if deferred(record) else result.inserts).append(record)
            continue
        session = min(candidates, key=lambda s: abs(s.start - record.start))
        claimed.add(session.id)  # type: ignore[arg-type]
        settled = session.reconciliation == "inserted" or (
            session.reconciliation == "matched" and session.metered_energy_wh == record.energy_wh)
        if not settled:
            result.matches.append(Match(session.id, record))  # type: ignore[arg-type]
        if record.target_id and session.vin and known_targets.get(record.target_id) != session.vin:
            result.learned[record.target_id] = session.vin
    return result
