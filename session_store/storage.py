"""SQLite behind one module: schema, numbered migrations, and intent-named transactions.

WAL mode; the completed sessions of an evaluation, every unit's open-session state and the
watermark are written in one transaction (`save_step`), so a crash at any point leaves either the
whole step or none of it. Sessions are unique on (unit, start): replaying a step after a crash
inserts nothing twice.
"""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, astuple
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo

from billing.tariff import Line, local_day
from session_store.sessions import OpenSession, UnitState
from session_store.departure import Departure
from session_store.charge_storage import MIGRATION as CHARGES_MIGRATION, VehicleChargeTables
from session_store.meter_storage import MIGRATION as METER_MIGRATION, MeterTables
from session_store.records import ActionRecord, PlanOutcome, PlanRevision, Session
from session_store.smart_charging import Memory

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        unit TEXT NOT NULL,
        din TEXT,
        vin TEXT,
        vehicle TEXT,
        start REAL NOT NULL,
        end REAL NOT NULL,
        duration_s REAL NOT NULL,
        energy_wh REAL NOT NULL,
        peak_w REAL NOT NULL,
        average_w REAL NOT NULL,
        meter_energy_wh REAL,
        supply_cost REAL NOT NULL,
        supply_credit REAL NOT NULL,
        delivery_cost REAL NOT NULL,
        full_cost REAL NOT NULL,
        average_price_cents REAL,
        cost_final INTEGER NOT NULL,
        intervals TEXT NOT NULL,
        gap_s REAL NOT NULL DEFAULT 0,
        source TEXT NOT NULL,
        reconciliation TEXT NOT NULL,
        metered_energy_wh REAL,
        target_id TEXT,
        created_at REAL NOT NULL,
        UNIQUE (unit, start)
    );
    CREATE INDEX sessions_by_start ON sessions (start);
    CREATE INDEX sessions_by_end ON sessions (end);
    CREATE TABLE unit_state (unit TEXT PRIMARY KEY, state TEXT NOT NULL);
    CREATE TABLE watermark (id INTEGER PRIMARY KEY CHECK (id = 1), t REAL NOT NULL);
    CREATE TABLE discarded (unit TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL,
                            PRIMARY KEY (unit, reason));
    """,
    """
    CREATE TABLE target_ids (target_id TEXT PRIMARY KEY, vin TEXT NOT NULL, learned_at REAL NOT NULL);
    CREATE INDEX sessions_by_din ON sessions (din, start);
    """,
    """
    CREATE TABLE smart_charging_memory (vin TEXT PRIMARY KEY, memory TEXT NOT NULL);
    CREATE TABLE smart_charging_actions (
        id INTEGER PRIMARY KEY,
        t REAL NOT NULL,
        vin TEXT NOT NULL,
        vehicle TEXT,
        action TEXT,
        reason TEXT NOT NULL,
        outcome TEXT NOT NULL,
        price REAL,
        stop_threshold REAL,
        resume_threshold REAL,
        detail TEXT
    );
    CREATE INDEX smart_charging_actions_by_t ON smart_charging_actions (t);
    """,
    """
    CREATE INDEX sessions_by_unit_end ON sessions (unit, end);
    CREATE INDEX sessions_provisional ON sessions (start) WHERE cost_final = 0;
    """,
    # Costs as the bill computes them (billing/tariff.py): every stored session is repriced once, its
    # bill lines kept, and each local day's share kept apart so summaries split sessions at midnight.
    """
    ALTER TABLE sessions ADD COLUMN reference_cost REAL;
    ALTER TABLE sessions ADD COLUMN bill_lines TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE session_days (
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        day TEXT NOT NULL,
        energy_wh REAL NOT NULL,
        supply_cost REAL NOT NULL,
        delivery_cost REAL NOT NULL,
        reference_cost REAL,
        final INTEGER NOT NULL,
        started INTEGER NOT NULL,
        PRIMARY KEY (session_id, day)
    );
    CREATE INDEX session_days_by_day ON session_days (day);
    UPDATE sessions SET cost_final = 0;
    """,
    # The average price paid is supply only: say so in its name.
    """
    ALTER TABLE sessions RENAME COLUMN average_price_cents TO supply_price_cents;
    """,
    # Departure planning: what the user set, every material revision of a plan, how each departure went,
    # and each car's charging efficiency learned from its sessions.
    """
    CREATE TABLE departures (
        vin TEXT PRIMARY KEY,
        target_percent REAL NOT NULL,
        at REAL,
        weekly TEXT NOT NULL DEFAULT '[]',
        battery_kwh REAL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE plan_revisions (
        id INTEGER PRIMARY KEY,
        t REAL NOT NULL,
        vin TEXT NOT NULL,
        departure REAL NOT NULL,
        target_percent REAL NOT NULL,
        soc_percent REAL NOT NULL,
        soc_source TEXT NOT NULL,
        need_wh REAL NOT NULL,
        energy_wh REAL NOT NULL,
        cost REAL NOT NULL,
        finish REAL,
        feasible INTEGER NOT NULL,
        reachable_percent REAL NOT NULL,
        reason TEXT NOT NULL,
        hours TEXT NOT NULL
    );
    CREATE INDEX plan_revisions_by_vin ON plan_revisions (vin, departure, t);
    CREATE TABLE plan_outcomes (
        vin TEXT NOT NULL,
        departure REAL NOT NULL,
        target_percent REAL NOT NULL,
        planned_cost REAL,
        revisions INTEGER NOT NULL,
        soc_percent REAL,
        met INTEGER NOT NULL,
        energy_wh REAL NOT NULL,
        cost REAL NOT NULL,
        recorded_at REAL NOT NULL,
        PRIMARY KEY (vin, departure)
    );
    CREATE TABLE vehicle_efficiency (
        vin TEXT PRIMARY KEY,
        efficiency REAL NOT NULL,
        sessions INTEGER NOT NULL,
        last_session REAL NOT NULL
    );
    """,
    # Meter data from the utility (session_store/meter_storage.py).
    METER_MIGRATION,
    # The cars' own charge history (Tessie) and the sessions' energy site (session_store/charge_storage.py).
    CHARGES_MIGRATION,
)


COLUMNS = [name for name in Session.__dataclass_fields__ if name != "id"]
FIRST_DAY, LAST_DAY = -62_135_000_000.0, 253_402_000_000.0   # Unix seconds within years 1 to 9999


def _lines_to_json(lines: Sequence[Line]) -> str:
    return json.dumps([astuple(line) for line in lines])


def _lines_from_json(text: str) -> tuple[Line, ...]:
    return tuple(Line(*row) for row in json.loads(text))


def _state_to_json(state: UnitState) -> str:
    open_ = state.open
    data: dict[str, Any] = {"last_t": state.last_t, "last_w": state.last_w, "open": None}
    if open_ is not None:
        data["open"] = {**asdict(open_), "intervals": list(open_.intervals.items()),
                        "pending": list(open_.pending.items())}
    return json.dumps(data)


def _state_from_json(text: str) -> UnitState:
    data = json.loads(text)
    open_ = data.get("open")
    if open_:
        open_ = OpenSession(**{**open_, "intervals": dict(map(tuple, open_["intervals"])),
                               "pending": dict(map(tuple, open_["pending"]))})
    return UnitState(data.get("last_t"), data.get("last_w"), open_)


class Storage(MeterTables, VehicleChargeTables):
    def __init__(self, path: str | Path, zone: ZoneInfo = ZoneInfo("UTC")) -> None:
        """`zone` names the local days summaries are kept by."""
        self.path = str(path)
        self.zone = zone
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        # bumped by every committed write that changes an aggregate (sessions, their costs, discards,
        # reconciliation, actions): the ledger re-reads them per version, not per evaluation
        self.version = 0
        self._migrate()

    def reader(self) -> "Storage":
        """A second, read-only connection to the same database, for a worker thread: in WAL mode it reads
        the last committed state while this one writes (an in-memory database has only this one)."""
        if self.path == ":memory:":
            return self
        return Storage.open_read_only(self.path, self.zone)

    @classmethod
    def open_read_only(cls, path: str | Path, zone: ZoneInfo = ZoneInfo("UTC")) -> "Storage":
        """A database another process writes, read without opening it for writing: nothing is created,
        migrated or locked (a report while session-store runs)."""
        reader = object.__new__(cls)
        reader.path, reader.zone, reader.version = str(path), zone, 0
        reader.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        reader.db.row_factory = sqlite3.Row
        return reader

    def _migrate(self) -> None:
        """Each migration in its own write transaction, the version read again inside it: the session store
        and charging-meter share the file, and whichever starts first migrates it."""
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self._transaction():
                if self.db.execute("PRAGMA user_version").fetchone()[0] >= number:
                    continue
                for statement in filter(str.strip, script.split(";")):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (a SIGKILL simply never commits)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- the sidecar's step ----------------------------------------------------------------------

    def load_states(self) -> dict[str, UnitState]:
        return {row["unit"]: _state_from_json(row["state"]) for row in self.db.execute("SELECT * FROM unit_state")}

    def watermark(self) -> float | None:
        row = self.db.execute("SELECT t FROM watermark WHERE id = 1").fetchone()
        return row["t"] if row else None

    def save_step(self, states: Mapping[str, UnitState], sessions: Sequence[Session],
                  discarded: Sequence[tuple[str, str]], watermark: float) -> list[Session]:
        """One transaction: new sessions (duplicates ignored), unit states, discards, watermark.
        Returns the sessions actually inserted (with ids)."""
        inserted = []
        with self._transaction():
            for session in sessions:
                row = self._insert(session)
                if row is not None:
                    inserted.append(row)
            for unit, state in states.items():
                self.db.execute("INSERT INTO unit_state (unit, state) VALUES (?, ?) "
                                "ON CONFLICT (unit) DO UPDATE SET state = excluded.state", (unit, _state_to_json(state)))
            for unit, reason in discarded:
                self.db.execute("INSERT INTO discarded (unit, reason, count) VALUES (?, ?, 1) "
                                "ON CONFLICT (unit, reason) DO UPDATE SET count = count + 1", (unit, reason))
            self.db.execute("INSERT INTO watermark (id, t) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET t = excluded.t",
                            (watermark,))
        self.version += bool(inserted or discarded)
        return inserted

    def _insert(self, session: Session) -> Session | None:
        values = [getattr(session, c) for c in COLUMNS]
        values[COLUMNS.index("intervals")] = json.dumps(sorted(session.intervals.items()))
        values[COLUMNS.index("bill_lines")] = _lines_to_json(session.bill_lines)
        cursor = self.db.execute(
            f"INSERT OR IGNORE INTO sessions ({', '.join(COLUMNS)}, created_at) "
            f"VALUES ({', '.join('?' * len(COLUMNS))}, ?)", (*values, time.time()))
        if cursor.rowcount == 0:
            return None
        inserted = Session(**{**session.__dict__, "id": cursor.lastrowid})
        self._write_days(inserted)
        return inserted

    def _write_days(self, session: Session) -> None:
        """Each local day's share of the session's bill, the session counted on its first day. A session
        without lines (one whose prices were gone when it was repriced) counts whole on its start day."""
        self.db.execute("DELETE FROM session_days WHERE session_id = ?", (session.id,))
        reference = session.reference_cost is not None
        # reference = energy x the reference supply price + delivery; its supply price per kWh:
        supply_reference = (session.reference_cost - session.delivery_cost) / session.energy_wh \
            if reference and session.energy_wh > 0 else 0.0
        rows = [(line.end - 1, line.energy_wh, line.supply, line.delivery) for line in session.bill_lines] or \
               [(session.start, session.energy_wh, session.supply_cost, session.delivery_cost)]
        days: dict[str, list[float]] = {}
        for moment, energy, supply, delivery in rows:
            totals = days.setdefault(local_day(moment, self.zone).isoformat(), [0.0, 0.0, 0.0, 0.0])
            for index, value in enumerate((energy, supply, delivery, energy * supply_reference + delivery)):
                totals[index] += value
        first = min(days)
        self.db.executemany(
            "INSERT INTO session_days (session_id, day, energy_wh, supply_cost, delivery_cost, reference_cost, final, "
            "started) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(session.id, day, e, s, d, r if reference else None, int(session.cost_final), int(day == first))
             for day, (e, s, d, r) in days.items()])

    def update_costs(self, sessions: Sequence[Session]) -> None:
        """Re-priced sessions: their money fields, bill lines and days, in one transaction."""
        if not sessions:
            return
        self.version += 1
        with self._transaction():
            for session in sessions:
                self.db.execute("UPDATE sessions SET supply_cost = ?, supply_credit = ?, delivery_cost = ?, "
                                "full_cost = ?, supply_price_cents = ?, cost_final = ?, reference_cost = ?, "
                                "bill_lines = ? WHERE id = ?",
                                (session.supply_cost, session.supply_credit, session.delivery_cost,
                                 session.full_cost, session.supply_price_cents, int(session.cost_final),
                                 session.reference_cost, _lines_to_json(session.bill_lines), session.id))
                self._write_days(session)

    # --- reading ---------------------------------------------------------------------------------

    @staticmethod
    def _row(row: sqlite3.Row) -> Session:
        data = {key: row[key] for key in row.keys() if key != "created_at"}
        data["intervals"] = {float(end): wh for end, wh in json.loads(data["intervals"])}
        data["bill_lines"] = _lines_from_json(data["bill_lines"])
        data["cost_final"] = bool(data["cost_final"])
        return Session(**data)

    def sessions(self, *, start: float | None = None, end: float | None = None,
                 unit: str | Sequence[str] | None = None, vehicle: str | Sequence[str] | None = None,
                 limit: int = 100, offset: int = 0, provisional_only: bool = False,
                 vin: str | Sequence[str] | None = None) -> list[Session]:
        """Newest first; `unit`, `vehicle` and `vin` take one value or several (see `_filters`)."""
        where, params = self._filters(start, end, unit, vehicle, vin)
        if provisional_only:
            where.append("cost_final = 0")
        sql = f"SELECT * FROM sessions {'WHERE ' + ' AND '.join(where) if where else ''} " \
              "ORDER BY start DESC, id DESC LIMIT ? OFFSET ?"
        return [self._row(r) for r in self.db.execute(sql, (*params, limit, offset))]

    def iter_sessions(self, *, start: float | None = None, end: float | None = None,
                      unit: str | Sequence[str] | None = None, vehicle: str | Sequence[str] | None = None,
                      batch: int = 1000) -> Iterator[list[Session]]:
        """Every matching session, newest first, a batch at a time (exports never hold them all)."""
        where, params = self._filters(start, end, unit, vehicle)
        cursor = self.db.execute(f"SELECT * FROM sessions {'WHERE ' + ' AND '.join(where) if where else ''} "
                                 "ORDER BY start DESC, id DESC", params)
        while rows := cursor.fetchmany(batch):
            yield [self._row(r) for r in rows]

    def day_totals(self, *, start: float | None = None, end: float | None = None,
                   unit: str | Sequence[str] | None = None,
                   vehicle: str | Sequence[str] | None = None) -> list[sqlite3.Row]:
        """Per local day of the matching sessions' bills, oldest first: day, sessions (first days) that day,
        energy_wh, supply_cost, delivery_cost, reference_cost (NULL without a reference), final (0 or 1).
        Days outside [start, end) are left out, so a session crossing `start` counts only its share."""
        where, params = self._filters(start, end, unit, vehicle, table="s.")
        for clause, moment in (("d.day >= ?", start), ("d.day <= ?", None if end is None else end - 1e-3)):
            if moment is not None:
                where.append(clause)
                params.append(local_day(min(max(moment, FIRST_DAY), LAST_DAY), self.zone).isoformat())
        return self.db.execute(
            "SELECT d.day AS day, SUM(d.energy_wh) AS energy_wh, SUM(d.supply_cost) AS supply_cost, "
            "SUM(d.delivery_cost) AS delivery_cost, SUM(d.reference_cost) AS reference_cost, "
            "MIN(d.final) AS final, SUM(d.started) AS sessions "
            "FROM session_days AS d JOIN sessions AS s ON s.id = d.session_id "
            f"{'WHERE ' + ' AND '.join(where) if where else ''} GROUP BY d.day ORDER BY d.day", params).fetchall()

    def count(self, *, start: float | None = None, end: float | None = None,
              unit: str | Sequence[str] | None = None, vehicle: str | Sequence[str] | None = None) -> int:
        where, params = self._filters(start, end, unit, vehicle)
        sql = f"SELECT COUNT(*) FROM sessions {'WHERE ' + ' AND '.join(where) if where else ''}"
        return self.db.execute(sql, params).fetchone()[0]

    @staticmethod
    def _filters(start: float | None, end: float | None, unit: str | Sequence[str] | None,
                 vehicle: str | Sequence[str] | None, vin: str | Sequence[str] | None = None,
                 table: str = "") -> tuple[list[str], list[Any]]:
        """WHERE clauses (columns prefixed with `table`) and their parameters. `unit`, `vehicle` and `vin`
        each take one value or a sequence of values, any of which matches (OR; Grafana's multi-select
        sends several units); an empty sequence or None filters nothing. A vehicle matches by name or
        VIN, so a car is found whichever the caller knows."""
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (("end >= ?", start), ("start < ?", end)):
            if value is not None:
                where.append(f"{table}{clause}")
                params.append(value)
        for columns, value in ((("unit",), unit), (("vehicle", "vin"), vehicle), (("vin",), vin)):
            values = [value] if isinstance(value, str) else list(dict.fromkeys(value or ()))
            if values:
                marks = ", ".join("?" * len(values))
                where.append("(" + " OR ".join(f"{table}{column} IN ({marks})" for column in columns) + ")")
                params.extend(values * len(columns))
        return where, params

    def session(self, session_id: int) -> Session | None:
        row = self.db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return self._row(row) if row else None

    def totals(self) -> list[sqlite3.Row]:
        """Per unit and vehicle: counts, energy, and final costs, for the `_total` counters."""
        return self.db.execute(
            "SELECT unit, COALESCE(vehicle, '') AS vehicle, COUNT(*) AS sessions, SUM(energy_wh) AS energy_wh, "
            "SUM(CASE WHEN cost_final THEN supply_cost + supply_credit ELSE 0 END) AS supply_charged, "
            "SUM(CASE WHEN cost_final THEN supply_credit ELSE 0 END) AS supply_credit, "
            "SUM(CASE WHEN cost_final THEN delivery_cost ELSE 0 END) AS delivery, "
            "SUM(CASE WHEN cost_final THEN COALESCE(reference_cost, 0) ELSE 0 END) AS reference, "
            "SUM(cost_final = 0) AS provisional "
            "FROM sessions GROUP BY unit, COALESCE(vehicle, '')").fetchall()

    def first_recorded(self) -> float | None:
        """When the first stored session entered the database: tells a new installation from history
        lost to Prometheus's retention."""
        return self.db.execute("SELECT MIN(created_at) FROM sessions").fetchone()[0]

    def discarded(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT unit, reason, count FROM discarded").fetchall()

    def last_sessions(self) -> list[Session]:
        """The most recent completed session of every unit."""
        rows = self.db.execute("SELECT s.* FROM (SELECT unit, MAX(end) AS end FROM sessions GROUP BY unit) AS last "
                               "JOIN sessions AS s ON s.unit = last.unit AND s.end = last.end")
        return [self._row(r) for r in rows]

    # --- reconciliation --------------------------------------------------------------------------

    def sessions_with_din(self, since: float) -> list[Session]:
        rows = self.db.execute("SELECT * FROM sessions WHERE din IS NOT NULL AND start >= ?", (since,))
        return [self._row(r) for r in rows]

    def target_ids(self) -> dict[str, str]:
        return {row["target_id"]: row["vin"] for row in self.db.execute("SELECT target_id, vin FROM target_ids")}

    def apply_reconciliation(self, matches: Iterable[tuple[int, float, str | None]], inserts: Sequence[Session],
                             learned: Mapping[str, tuple[str, str | None]]) -> list[Session]:
        """One transaction: matched sessions gain the meter's energy and target_id, records no live
        session explains are inserted (duplicates ignored), learned target_id -> (VIN, name) pairs are
        kept and name the sessions of that target_id that had no vehicle yet."""
        inserted = []
        self.version += 1
        with self._transaction():
            self.db.executemany("UPDATE sessions SET reconciliation = 'matched', metered_energy_wh = ?, target_id = ? "
                                "WHERE id = ?", [(energy, target, sid) for sid, energy, target in matches])
            for session in inserts:
                row = self._insert(session)
                if row is not None:
                    inserted.append(row)
            now = time.time()
            self.db.executemany("INSERT INTO target_ids (target_id, vin, learned_at) VALUES (?, ?, ?) "
                                "ON CONFLICT (target_id) DO UPDATE SET vin = excluded.vin, learned_at = excluded.learned_at",
                                [(target, vin, now) for target, (vin, _) in learned.items()])
            self.db.executemany("UPDATE sessions SET vin = ?, vehicle = COALESCE(vehicle, ?) "
                                "WHERE target_id = ? AND vin IS NULL",
                                [(vin, name, target) for target, (vin, name) in learned.items()])
        return inserted

    def reconciliation_counts(self) -> dict[str, int]:
        return {row[0]: row[1] for row in
                self.db.execute("SELECT reconciliation, COUNT(*) FROM sessions GROUP BY reconciliation")}

    # --- smart charging --------------------------------------------------------------------------

    def load_memories(self) -> dict[str, Memory]:
        return {row["vin"]: Memory(**json.loads(row["memory"]))
                for row in self.db.execute("SELECT vin, memory FROM smart_charging_memory")}

    def save_smart_charging(self, memories: Mapping[str, Memory], actions: Sequence[ActionRecord]) -> None:
        """One transaction: every vehicle's memory and the actions taken, so a restart never re-sends
        a command it already sent nor forgets a pause."""
        self.version += bool(actions)
        with self._transaction():
            self.db.executemany("INSERT INTO smart_charging_memory (vin, memory) VALUES (?, ?) "
                                "ON CONFLICT (vin) DO UPDATE SET memory = excluded.memory",
                                [(vin, json.dumps(asdict(memory))) for vin, memory in memories.items()])
            self.db.executemany("INSERT INTO smart_charging_actions (t, vin, vehicle, action, reason, outcome, price, "
                                "stop_threshold, resume_threshold, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                [astuple(action) for action in actions])

    def actions(self, limit: int = 100, vin: str | None = None) -> list[ActionRecord]:
        sql = "SELECT t, vin, vehicle, action, reason, outcome, price, stop_threshold, resume_threshold, detail " \
              "FROM smart_charging_actions " + ("WHERE vin = ? " if vin else "") + "ORDER BY t DESC, id DESC LIMIT ?"
        return [ActionRecord(*row) for row in self.db.execute(sql, (vin, limit) if vin else (limit,))]

    def action_counts(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT COALESCE(action, 'none') AS action, outcome, COUNT(*) AS count "
                               "FROM smart_charging_actions GROUP BY action, outcome").fetchall()

    # --- departure planning ----------------------------------------------------------------------

    def departures(self) -> dict[str, Departure]:
        return {row["vin"]: Departure(row["vin"], row["target_percent"], row["at"],
                                      tuple(map(tuple, json.loads(row["weekly"]))), row["battery_kwh"],
                                      row["updated_at"])
                for row in self.db.execute("SELECT * FROM departures")}

    def save_departure(self, departure: Departure) -> None:
        with self._transaction():
            self.db.execute("INSERT INTO departures (vin, target_percent, at, weekly, battery_kwh, updated_at) "
                            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vin) DO UPDATE SET "
                            "target_percent = excluded.target_percent, at = excluded.at, weekly = excluded.weekly, "
                            "battery_kwh = excluded.battery_kwh, updated_at = excluded.updated_at",
                            (departure.vin, departure.target_percent, departure.at, json.dumps(departure.weekly),
                             departure.battery_kwh, departure.updated_at))

    def delete_departure(self, vin: str) -> bool:
        with self._transaction():
            return self.db.execute("DELETE FROM departures WHERE vin = ?", (vin,)).rowcount > 0

    def save_plans(self, revisions: Sequence[PlanRevision], outcomes: Sequence[PlanOutcome]) -> None:
        """Revisions and outcomes in one transaction (an outcome is recorded once per departure)."""
        if not revisions and not outcomes:
            return
        with self._transaction():
            self.db.executemany(
                "INSERT INTO plan_revisions (t, vin, departure, target_percent, soc_percent, soc_source, need_wh, "
                "energy_wh, cost, finish, feasible, reachable_percent, reason, hours) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*astuple(r)[:-1], json.dumps(r.hours)) for r in revisions])
            self.db.executemany(
                "INSERT OR IGNORE INTO plan_outcomes (vin, departure, target_percent, planned_cost, revisions, "
                "soc_percent, met, energy_wh, cost, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [astuple(o) for o in outcomes])

    def plan_revisions(self, vin: str | None = None, departure: float | None = None,
                       limit: int = 100) -> list[PlanRevision]:
        where = [f"{name} = ?" for name, value in (("vin", vin), ("departure", departure)) if value is not None]
        sql = "SELECT t, vin, departure, target_percent, soc_percent, soc_source, need_wh, energy_wh, cost, finish, " \
              "feasible, reachable_percent, reason, hours FROM plan_revisions" + \
              (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY t DESC, id DESC LIMIT ?"
        params = [value for value in (vin, departure) if value is not None] + [limit]
        return [PlanRevision(*row[:10], bool(row[10]), *row[11:13], tuple(map(tuple, json.loads(row[13]))))
                for row in self.db.execute(sql, params)]

    def open_departures(self, before: float) -> list[tuple[str, float, int, float]]:
        """(vin, departure, revisions, first revision's time) of planned departures before `before` with no
        outcome yet."""
        return [tuple(row) for row in self.db.execute(
            "SELECT r.vin, r.departure, COUNT(*), MIN(r.t) FROM plan_revisions r LEFT JOIN plan_outcomes o "
            "ON o.vin = r.vin AND o.departure = r.departure WHERE r.departure < ? AND o.vin IS NULL "
            "GROUP BY r.vin, r.departure", (before,))]

    def plan_outcomes(self, vin: str | None = None, limit: int = 100) -> list[PlanOutcome]:
        sql = "SELECT vin, departure, target_percent, planned_cost, revisions, soc_percent, met, energy_wh, cost, " \
              "recorded_at FROM plan_outcomes" + (" WHERE vin = ?" if vin else "") + " ORDER BY departure DESC LIMIT ?"
        return [PlanOutcome(*row[:6], bool(row[6]), *row[7:])
                for row in self.db.execute(sql, (vin, limit) if vin else (limit,))]

    def vin_sessions(self, vin: str, start: float, end: float) -> list[Session]:
        """The car's sessions that started in [start, end)."""
        return [self._row(row) for row in self.db.execute(
            "SELECT * FROM sessions WHERE vin = ? AND start >= ? AND start < ? ORDER BY start", (vin, start, end))]

    def efficiencies(self) -> dict[str, tuple[float, int, float]]:
        """vin -> (learned efficiency, sessions it was learned from, start of the last one)."""
        return {row["vin"]: (row["efficiency"], row["sessions"], row["last_session"])
                for row in self.db.execute("SELECT * FROM vehicle_efficiency")}

    def save_efficiency(self, vin: str, efficiency: float, sessions: int, last_session: float) -> None:
        with self._transaction():
            self.db.execute("INSERT INTO vehicle_efficiency (vin, efficiency, sessions, last_session) "
                            "VALUES (?, ?, ?, ?) ON CONFLICT (vin) DO UPDATE SET efficiency = excluded.efficiency, "
                            "sessions = excluded.sessions, last_session = excluded.last_session",
                            (vin, efficiency, sessions, last_session))

    def integrity_check(self) -> str:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]
