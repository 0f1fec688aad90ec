"""The car-side charges' tables, part of `Storage`: Tessie's charge history upserted per (VIN, Tessie id), so
an import that reads a charge again replaces it (a late match, a corrected cost) and never adds a second row,
and how far each charge history (each car's, the site's) has been imported: the first import reads
sessions.history_days, the later ones only the recheck window.

No coordinates are stored: a charge keeps its place name and whether it was away.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from session_store.records import VehicleChargeRecord

MIGRATION = """
    CREATE TABLE vehicle_charges (
        id INTEGER PRIMARY KEY,
        vin TEXT NOT NULL,
        vehicle TEXT NOT NULL,
        charge_id TEXT NOT NULL,
        start REAL NOT NULL,
        end REAL NOT NULL,
        location TEXT NOT NULL,
        away INTEGER NOT NULL,
        supercharger INTEGER NOT NULL,
        energy_added_wh REAL,
        energy_used_wh REAL,
        starting_battery REAL,
        ending_battery REAL,
        cost REAL,
        session_id INTEGER,
        wall_energy_wh REAL,
        efficiency REAL,
        UNIQUE (vin, charge_id)
    );
    CREATE INDEX vehicle_charges_by_start ON vehicle_charges (start);
    CREATE TABLE history_imports (key TEXT PRIMARY KEY, imported_until REAL NOT NULL);
    ALTER TABLE sessions ADD COLUMN energy_site_id TEXT
"""
FIELDS = [name for name in VehicleChargeRecord.__dataclass_fields__ if name != "id"]


class VehicleChargeTables:
    """Mixed into `Storage` (which provides `db`, `version` and `_transaction`)."""

    db: sqlite3.Connection
    version: int

    def save_vehicle_charges(self, charges: Sequence[VehicleChargeRecord], imported: dict[str, float]) -> int:
        """Upsert the charges and advance each car's import mark, in one transaction; returns how many rows
        were new or changed."""
        changed = 0
        with self._transaction():   # type: ignore[attr-defined]
            for charge in charges:
                values = [getattr(charge, name) for name in FIELDS]
                cursor = self.db.execute(
                    f"INSERT INTO vehicle_charges ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))}) "
                    f"ON CONFLICT (vin, charge_id) DO UPDATE SET "
                    + ", ".join(f"{name} = excluded.{name}" for name in FIELDS if name not in ("vin", "charge_id"))
                    + " WHERE " + " OR ".join(f"{name} IS NOT excluded.{name}" for name in FIELDS
                                              if name not in ("vin", "charge_id")), values)
                changed += cursor.rowcount
            self._mark_imported(imported)
        if changed:
            self.version += 1
        return changed

    def _mark_imported(self, imported: dict[str, float]) -> None:
        self.db.executemany(
            "INSERT INTO history_imports (key, imported_until) VALUES (?, ?) ON CONFLICT (key) "
            "DO UPDATE SET imported_until = MAX(imported_until, excluded.imported_until)", imported.items())

    def mark_imported(self, imported: dict[str, float]) -> None:
        """Record successful imports of charge history (key: a VIN, or `site:<id>` for Fleet's)."""
        with self._transaction():   # type: ignore[attr-defined]
            self._mark_imported(imported)

    def imported_until(self) -> dict[str, float]:
        """Key (a VIN, or `site:<id>`) -> the end of the last successful import of that charge history."""
        return {row[0]: row[1] for row in self.db.execute("SELECT key, imported_until FROM history_imports")}

    def vehicle_charges(self, *, vins: Iterable[str] = (), vehicles: Iterable[str] = (), away: bool | None = None,
                        start: float | None = None, end: float | None = None,
                        limit: int | None = None) -> list[VehicleChargeRecord]:
        """Charges overlapping [start, end), newest first; `vins`/`vehicles` (names) filter when given."""
        where: list[str] = ["1 = 1"]
        args: list[Any] = []
        vins, vehicles = list(vins), list(vehicles)
        if vins or vehicles:
            where.append(f"(vin IN ({', '.join('?' * len(vins)) or 'NULL'}) "
                         f"OR vehicle IN ({', '.join('?' * len(vehicles)) or 'NULL'}))")
            args += [*vins, *vehicles]
        if away is not None:
            where.append("away = ?")
            args.append(int(away))
        if start is not None:
            where.append("end > ?")
            args.append(start)
        if end is not None:
            where.append("start < ?")
            args.append(end)
        rows = self.db.execute(f"SELECT * FROM vehicle_charges WHERE {' AND '.join(where)} ORDER BY start DESC"
                               + (" LIMIT ?" if limit is not None else ""), (*args, *([] if limit is None else [limit])))
        return [charge_from_row(row) for row in rows]

    def away_totals(self) -> list[sqlite3.Row]:
        """Per vehicle: away charges, their energy added and Tessie's cost (the counters' sums)."""
        return self.db.execute("SELECT vehicle, COUNT(*) AS charges, COALESCE(SUM(energy_added_wh), 0) AS energy_wh, "
                               "COALESCE(SUM(cost), 0) AS cost FROM vehicle_charges WHERE away = 1 "
                               "GROUP BY vehicle").fetchall()

    def assign_energy_site(self, site_id: str) -> int:
        """Sessions recorded before the site was known belong to it (the suite watches one site)."""
        with self._transaction():   # type: ignore[attr-defined]
            cursor = self.db.execute("UPDATE sessions SET energy_site_id = ? WHERE energy_site_id IS NULL", (site_id,))
        return cursor.rowcount


def charge_from_row(row: sqlite3.Row) -> VehicleChargeRecord:
    data = {key: row[key] for key in row.keys()}
    data["away"], data["supercharger"] = bool(data["away"]), bool(data["supercharger"])
    return VehicleChargeRecord(**data)
