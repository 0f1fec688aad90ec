"""Match the cars' own charges (Tessie's charge history) to the Wall Connector sessions (pure).

A charge of the car that overlaps a session of that car (or a session whose car is not known) is the same
charge seen from the wall: it is home charging, and the energy the car says it added over the wall energy
of record is the charging efficiency of that session. A charge matching no session is away: at a
Supercharger, or at any charger that is not ours, unless it happened within the configured home radius
(a mobile connector in the garage): then it is home charging the Wall Connectors did not see.

A charge matches the session it overlaps most (never a Supercharger's: that is DC, not a Wall Connector) (the car's own sessions before sessions with no car); a
charge overlapping nothing may still match a session that started within `START_SLACK_S` of it (the car
and the wall start a few seconds apart, a very short session may not overlap at all).
"""
from __future__ import annotations

from typing import Callable, Sequence

from servicekit.location import Home, is_at_home
from session_store.records import Session, VehicleChargeRecord
from upstreams.tessie_charges import VehicleCharge

START_SLACK_S = 600.0
EFFICIENCY_RANGE = (0.5, 1.05)   # outside: a mismatch or a meter glitch, not an efficiency
HOME = "home"


def _overlap(charge: VehicleCharge, session: Session) -> float:
    return min(charge.end, session.end) - max(charge.start, session.start)


def _candidates(charge: VehicleCharge, sessions: Sequence[Session]) -> list[tuple[float, Session]]:
    if charge.supercharger:
        return []     # DC fast charging: never a Wall Connector's
    found = []
    for session in sessions:
        if session.vin not in (None, charge.vin) or session.id is None:
            continue
        overlap = _overlap(charge, session)
        if overlap > 0 or abs(charge.start - session.start) <= START_SLACK_S:
            # the car's own sessions first, then the longest overlap
            found.append((overlap + (1e9 if session.vin == charge.vin else 0.0), session))
    return sorted(found, key=lambda pair: -pair[0])


def _at_home(charge: VehicleCharge, home: Home | None) -> bool:
    """Within the home radius; no home or no position: not at home as far as the suite can tell."""
    position = (charge.latitude, charge.longitude) if charge.latitude is not None and charge.longitude is not None \
        else None
    return home is not None and is_at_home(home, position) is True


def efficiency(added_wh: float | None, wall_wh: float) -> float | None:
    """Energy into the battery over the wall energy, when both are known and the ratio is plausible."""
    if added_wh is None or added_wh <= 0 or wall_wh <= 0:
        return None
    ratio = added_wh / wall_wh
    return ratio if EFFICIENCY_RANGE[0] <= ratio <= EFFICIENCY_RANGE[1] else None


def match_charges(charges: Sequence[VehicleCharge], sessions: Sequence[Session], name: Callable[[str], str],
                  home: Home | None = None) -> list[VehicleChargeRecord]:
    """Records for `charges`: matched ones with their session, its wall energy and the efficiency, the others
    away (or home, by position). `name` names a car by VIN. A car that pauses may record several charges in
    one wall session: all match it, and the efficiency is their energy together over the session's."""
    matched: dict[int, Session] = {}
    for index, charge in enumerate(charges):
        found = _candidates(charge, sessions)
        if found:
            matched[index] = found[0][1]
    added: dict[int, float | None] = {}
    for index, session in matched.items():
        energy = charges[index].energy_added_wh
        total = added.get(session.id, 0.0)  # type: ignore[arg-type]
        added[session.id] = None if energy is None or total is None else total + energy  # type: ignore[index]
    records = []
    for index, charge in enumerate(charges):
        session = matched.get(index)
        away = False if session is not None else not _at_home(charge, home)
        wall = session.energy_of_record_wh if session is not None else None
        records.append(VehicleChargeRecord(
            vin=charge.vin, vehicle=name(charge.vin), charge_id=charge.charge_id, start=charge.start, end=charge.end,
            location=(charge.location or "away") if away else HOME, away=away, supercharger=charge.supercharger,
            energy_added_wh=charge.energy_added_wh, energy_used_wh=charge.energy_used_wh,
            starting_battery=charge.starting_battery, ending_battery=charge.ending_battery, cost=charge.cost,
            session_id=session.id if session is not None else None, wall_energy_wh=wall,
            efficiency=efficiency(added[session.id], wall) if session is not None and wall is not None else None))
    return records
