"""Import each car's own charge history (Tessie `/{vin}/charges`) and match it to the Wall Connector sessions.

The cars are those on the Tessie account (its vehicle list: cached state, no car is woken) and the
configured ones. The first import of a car reads `sessions.history_days`; later ones re-read the last
`RECHECK_DAYS`, so a charge listed late, or a session stored late, is matched when it is. A charge is
only decided once the session store has evaluated past its end and no session of that car (or of an unknown
car) is still open from before it ended: until then the wall may yet explain it, and deciding early would
count a home charge as away.

Matched charges teach the planner the car's charging efficiency (the same learned value the planner
keeps from the car's state: each session is learned from once).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from servicekit.config import Config
from servicekit.location import home_from
from session_store.planning import MIN_LEARN_WH, next_efficiency
from session_store.records import VehicleChargeRecord
from session_store.storage import Storage
from session_store.vehicle_charges import match_charges
from upstreams.tessie import Tessie, VehicleNames
from upstreams.tessie_charges import VehicleCharge, fetch_charges

RECHECK_DAYS = 7.0


@dataclass(frozen=True)
class ImportResult:
    vehicles: int
    charges: int            # read from Tessie
    changed: int            # stored rows new or changed
    deferred: int           # left for a later import (the wall's sessions are not all in yet)


class VehicleChargeImport:
    def __init__(self, config: Config, storage: Storage, tessie: Tessie, log: logging.Logger,
                 open_sessions: Callable[[], Iterable[tuple[float, str | None]]],
                 clock: Callable[[], float] = time.time,
                 on_learned: Callable[[str, float], None] = lambda vin, efficiency: None) -> None:
        """`open_sessions`: (start, VIN or None) of the sessions open now: a charge of that car (or of any car,
        for a session whose car is not known) that ended after such a start waits until it closes.
        `on_learned`: a car's efficiency was learned (the planner's copy follows it)."""
        self.config, self.storage, self.tessie, self.log = config, storage, tessie, log
        self.open_sessions, self.clock, self.on_learned = open_sessions, clock, on_learned
        self.names = VehicleNames(config.vehicles.names)
        self.home = home_from(config.vehicles)

    async def step(self) -> ImportResult:
        states = await self.tessie.vehicles()
        self.names.learn(states)
        vins = sorted({state.vin for state in states} | set(self.config.vehicles.names))
        now = self.clock()
        marks = self.storage.imported_until()
        first = now - self.config.sessions.history_days * 86400
        fetched: dict[str, list[VehicleCharge]] = {}
        for vin in vins:
            since = marks[vin] - RECHECK_DAYS * 86400 if vin in marks else first
            fetched[vin] = await fetch_charges(self.tessie, vin, since, now)
        return self._store(fetched, now)

    def _store(self, fetched: dict[str, list[VehicleCharge]], now: float) -> ImportResult:
        watermark = self.storage.watermark()
        opened = list(self.open_sessions())
        records: list[VehicleChargeRecord] = []
        starts: dict[int, float] = {}      # session id -> start, for learning
        imported: dict[str, float] = {}
        deferred = 0
        for vin, charges in fetched.items():
            ready = [c for c in charges if watermark is not None and c.end <= watermark
                     and not any(start <= c.end and car in (None, vin) for start, car in opened)]
            deferred += len(charges) - len(ready)
            if ready:
                low, high = min(c.start for c in ready), max(c.end for c in ready)
                sessions = [s for s in self.storage.sessions(start=low - 86400, end=high + 86400, limit=100_000)
                            if s.vin in (None, vin)]
                starts.update((s.id, s.start) for s in sessions if s.id is not None)
                records += match_charges(ready, sessions, self.names.name, self.home)
            imported[vin] = now
        changed = self.storage.save_vehicle_charges(records, imported)
        self._learn(records, starts)
        if changed:
            self.log.info("charge history of the cars: %d charges new or updated", changed)
        return ImportResult(len(fetched), sum(map(len, fetched.values())), changed, deferred)

    def _learn(self, records: list[VehicleChargeRecord], starts: dict[int, float]) -> None:
        """Matched charges with an efficiency, oldest first, into the planner's value; keyed by the session's
        start, as the planner's own learning is, so a session teaches once whichever learns it first."""
        known = self.storage.efficiencies()
        for record in sorted((r for r in records if r.efficiency is not None and r.session_id in starts
                              and (r.wall_energy_wh or 0) >= MIN_LEARN_WH),
                             key=lambda r: starts[r.session_id]):  # type: ignore[index]
            update = next_efficiency(known.get(record.vin), record.efficiency,  # type: ignore[arg-type]
                                     starts[record.session_id])  # type: ignore[index]
            if update is not None:
                self.storage.save_efficiency(record.vin, *update)
                known[record.vin] = update
                self.on_learned(record.vin, update[0])
