"""The meter's tables, part of `Storage`: reads and bills upserted (a correction replaces the values and
counts a revision, never a second row), and the ledger of what went to Prometheus.

Prometheus is append-only, so a corrected read cannot replace its sample there. Each published series is
a ledger of increments instead: a read's first value is a sample a millisecond before the read's end, and
each later change adds the difference a millisecond earlier again (end - 1 - revision ms). A day's window
ending at midnight then holds exactly that day's reads whether the range includes its start (Prometheus 2)
or not (Prometheus 3). `sum_over_time` over any range
then gives the corrected total, and nothing is counted twice. What to publish is written to an outbox in
the same transaction that records it as published; writing the outbox to the TSDB is idempotent (same
series, timestamps and values), so a crash between the two only repeats identical samples.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Iterator

from billing.tariff import local_day
from session_store.meter_records import Bill, MeterDay, MeterRead, StoredRead

MIGRATION = """
    CREATE TABLE meter_reads (
        start REAL PRIMARY KEY,
        end REAL NOT NULL,
        day TEXT NOT NULL,
        kwh REAL NOT NULL,
        cost REAL,
        revision INTEGER NOT NULL,
        first_seen REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE INDEX meter_reads_by_day ON meter_reads (day);
    CREATE TABLE meter_bills (
        start REAL NOT NULL,
        end REAL NOT NULL,
        bill_date TEXT NOT NULL,
        kwh REAL NOT NULL,
        amount REAL NOT NULL,
        usage_charges REAL,
        estimated INTEGER NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (start, estimated)
    );
    CREATE TABLE meter_ledger (
        series TEXT NOT NULL,
        start REAL NOT NULL,
        published REAL NOT NULL,
        revisions INTEGER NOT NULL,
        PRIMARY KEY (series, start)
    );
    CREATE TABLE meter_outbox (
        id INTEGER PRIMARY KEY,
        series TEXT NOT NULL,
        t_ms INTEGER NOT NULL,
        value REAL NOT NULL,
        written INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX meter_outbox_pending ON meter_outbox (written) WHERE written = 0
"""
SAME = 1e-9     # values closer than this are the same (floating point through JSON)


def _changed(old: float | None, new: float | None) -> bool:
    if old is None or new is None:
        return (old is None) != (new is None)
    return abs(old - new) > SAME


class MeterTables:
    """Mixed into `Storage` (which provides `db`, `zone` and `_transaction`)."""

    db: sqlite3.Connection

    def upsert_meter_reads(self, reads: Iterable[MeterRead], now: float) -> tuple[int, int]:
        """Insert new reads and replace changed ones in one transaction; returns (new, corrected)."""
        new = corrected = 0
        with self._transaction():   # type: ignore[attr-defined]
            for read in reads:
                row = self.db.execute("SELECT kwh, cost, revision FROM meter_reads WHERE start = ?",
                                      (read.start,)).fetchone()
                if row is None:
                    self.db.execute(
                        "INSERT INTO meter_reads (start, end, day, kwh, cost, revision, first_seen, updated) "
                        "VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                        (read.start, read.end, local_day(read.start, self.zone).isoformat(),   # type: ignore[attr-defined]
                         read.kwh, read.cost, now, now))
                    new += 1
                    continue
                # a read pulled without its cost (the portal's cost endpoint failed) keeps the cost it had
                cost = read.cost if read.cost is not None else row["cost"]
                if _changed(row["kwh"], read.kwh) or _changed(row["cost"], cost):
                    self.db.execute("UPDATE meter_reads SET kwh = ?, cost = ?, end = ?, revision = revision + 1, "
                                    "updated = ? WHERE start = ?", (read.kwh, cost, read.end, now, read.start))
                    corrected += 1
        if new or corrected:
            self.version += 1   # type: ignore[attr-defined]
        return new, corrected

    @staticmethod
    def _stored(row: sqlite3.Row) -> StoredRead:
        return StoredRead(start=row["start"], end=row["end"], kwh=row["kwh"], cost=row["cost"],
                          revision=row["revision"], day=row["day"], first_seen=row["first_seen"],
                          updated=row["updated"])

    def meter_reads(self, start: float | None = None, end: float | None = None) -> list[StoredRead]:
        """Reads starting in [start, end), oldest first."""
        rows = self.db.execute("SELECT * FROM meter_reads WHERE start >= ? AND start < ? ORDER BY start",
                               (start if start is not None else -1e18, end if end is not None else 1e18))
        return [self._stored(row) for row in rows]

    def meter_days(self, first: str | None = None, last: str | None = None) -> list[MeterDay]:
        """Per local day (inclusive bounds, YYYY-MM-DD), oldest first. The cost is None when a read of the
        day has none."""
        rows = self.db.execute(
            "SELECT day, SUM(kwh) AS kwh, CASE WHEN COUNT(cost) = COUNT(*) THEN SUM(cost) END AS cost, "
            "COUNT(*) AS reads, SUM(revision > 0) AS corrected FROM meter_reads WHERE day >= ? AND day <= ? "
            "GROUP BY day ORDER BY day", (first or "0000-00-00", last or "9999-99-99"))
        return [MeterDay(day=r["day"], kwh=r["kwh"], cost=r["cost"], reads=r["reads"], corrected=r["corrected"])
                for r in rows]

    def meter_summary(self) -> Mapping[str, Any]:
        """Counts for the health metrics: reads, corrected reads, the newest read's end, bills."""
        row = self.db.execute("SELECT COUNT(*) AS reads, COALESCE(SUM(revision), 0) AS corrections, "
                              "MAX(end) AS newest FROM meter_reads").fetchone()
        bills = self.db.execute("SELECT COUNT(*) FROM meter_bills WHERE estimated = 0").fetchone()[0]
        return {"reads": row["reads"], "corrections": row["corrections"], "newest": row["newest"], "bills": bills}

    def upsert_bills(self, bills: Iterable[Bill], now: float) -> int:
        """Actual bills keyed by their period start, the estimated bill in progress by its own: an issued bill
        replaces the estimate of its period. Returns how many rows changed."""
        changed = 0
        with self._transaction():   # type: ignore[attr-defined]
            for bill in bills:
                row = self.db.execute("SELECT * FROM meter_bills WHERE start = ? AND estimated = ?",
                                      (bill.start, int(bill.estimated))).fetchone()
                values = (bill.end, bill.bill_date, bill.kwh, bill.amount, bill.usage_charges)
                if row is not None and tuple(row[k] for k in ("end", "bill_date", "kwh", "amount", "usage_charges")) == values:
                    continue
                self.db.execute("INSERT OR REPLACE INTO meter_bills (start, end, bill_date, kwh, amount, usage_charges, "
                                "estimated, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (bill.start, *values, int(bill.estimated), now))
                changed += 1
            # an estimate whose period has an actual bill is over
            self.db.execute("DELETE FROM meter_bills WHERE estimated = 1 AND EXISTS (SELECT 1 FROM meter_bills AS b "
                            "WHERE b.estimated = 0 AND b.end > meter_bills.start AND b.start < meter_bills.end)")
        if changed:
            self.version += 1   # type: ignore[attr-defined]
        return changed

    def meter_bills(self, start: float | None = None, end: float | None = None,
                    estimated: bool | None = None) -> list[Bill]:
        """Bills whose period overlaps [start, end), oldest first."""
        where, params = ["end > ?", "start < ?"], [start if start is not None else -1e18, end if end is not None else 1e18]
        if estimated is not None:
            where.append("estimated = ?")
            params.append(int(estimated))
        rows = self.db.execute(f"SELECT * FROM meter_bills WHERE {' AND '.join(where)} ORDER BY start, estimated", params)
        return [Bill(start=r["start"], end=r["end"], bill_date=r["bill_date"], kwh=r["kwh"], amount=r["amount"],
                     usage_charges=r["usage_charges"], estimated=bool(r["estimated"])) for r in rows]

    # --- publication to Prometheus ---------------------------------------------------------------

    def stage_publication(self, wanted: Mapping[str, Mapping[float, tuple[float, float]]]) -> int:
        """`wanted`: series -> read start -> (read end, value). Every difference from what was published
        goes to the outbox as an increment (first a millisecond before the end, each later one a millisecond
        earlier); returns
        how many were staged."""
        staged = 0
        with self._transaction():   # type: ignore[attr-defined]
            for series, values in wanted.items():
                known = {row["start"]: (row["published"], row["revisions"]) for row in self.db.execute(
                    "SELECT start, published, revisions FROM meter_ledger WHERE series = ?", (series,))}
                for start, (end, value) in values.items():
                    published, revisions = known.get(start, (0.0, 0))
                    if start in known and not _changed(published, value):
                        continue
                    self.db.execute("INSERT INTO meter_outbox (series, t_ms, value) VALUES (?, ?, ?)",
                                    (series, round(end * 1000) - 1 - revisions, value - published))
                    self.db.execute("INSERT OR REPLACE INTO meter_ledger (series, start, published, revisions) "
                                    "VALUES (?, ?, ?, ?)", (series, start, value, revisions + 1))
                    staged += 1
        return staged

    def pending_publication(self) -> list[tuple[int, str, int, float]]:
        """(id, series, t_ms, value) not yet written to the TSDB, oldest first."""
        return [tuple(row) for row in self.db.execute(   # type: ignore[misc]
            "SELECT id, series, t_ms, value FROM meter_outbox WHERE written = 0 ORDER BY t_ms, id")]

    def mark_published(self, ids: Sequence[int]) -> None:
        with self._transaction():   # type: ignore[attr-defined]
            self.db.executemany("UPDATE meter_outbox SET written = 1 WHERE id = ?", [(i,) for i in ids])

    def published_totals(self, series: str) -> Iterator[tuple[float, float]]:
        """(read start, published value) of a series: what Prometheus sums to."""
        yield from ((row[0], row[1]) for row in self.db.execute(
            "SELECT start, published FROM meter_ledger WHERE series = ? ORDER BY start", (series,)))
