"""The running meter component's one job: when a pull is due, log in from the stored login (saving the
rotated token), pull reads and bills, store them (corrections replace), publish what changed to
Prometheus, and rebuild the view. Failures raise the suite's upstream errors; the poller logs one line
per episode, backs off, and keeps the last view.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

from billing.tariff import Tariff
from meter import credentials
from meter.client import LoginExpired, pull
from meter.publish import openmetrics, wanted, write_blocks
from servicekit import history_import
from meter.reconcile import ev_intervals, read_shares
from meter.view import MeterView, build_view
from servicekit.config import Config
from session_store.storage import Storage
from upstreams.opower_route import session_for

DAY_S = 86400.0
VIEW_DAYS = 70          # reads kept in the view: this month, the last bill, last month


class NotSetUp(LoginExpired):
    """No stored login yet (or one we cannot read)."""

    outcome = "not_set_up"


class MeterSync:
    def __init__(self, config: Config, storage: Storage, tariff: Tariff, log: logging.Logger,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = config.meter
        self.import_url = config.prometheus.import_url   # VictoriaMetrics: imported there, not as blocks
        self.storage = storage
        self.tariff = tariff
        self.log = log
        self.clock = clock
        self.login = "unknown"
        self.last_pull: float | None = None
        self._credential_mtime: float | None = None
        self._publish_disabled_logged = False
        self._published_sessions: tuple = ()
        self.view = self.rebuild()

    def _credential(self) -> credentials.Credential:
        try:
            credential = credentials.load(self.settings.credential_file)
        except credentials.CredentialError as error:
            raise NotSetUp(str(error)) from None
        if credential.utility != self.settings.utility:
            raise NotSetUp(f"{self.settings.credential_file} is a login for {credential.utility}, not "
                           f"{self.settings.utility}; run: {credentials.SETUP_COMMAND}")
        return credential

    def due(self) -> bool:
        """A pull is due at the first attempt, every poll_interval, and as soon as the login file changes
        (someone ran the set-up)."""
        try:
            mtime = os.stat(self.settings.credential_file).st_mtime
        except OSError:
            mtime = None
        changed = mtime != self._credential_mtime
        return (self.last_pull is None or changed
                or self.clock() - self.last_pull >= self.settings.poll_interval)

    def sessions_signature(self) -> tuple:
        """Changes when the session store records, reconciles or reprices a session (another process)."""
        return tuple(self.storage.db.execute(
            "SELECT COUNT(*), MAX(created_at), SUM(full_cost), SUM(COALESCE(metered_energy_wh, 0)) FROM sessions"
        ).fetchone())

    async def fetch(self) -> MeterView:
        """The poller's fetch: pull when due; between pulls, publish again when the sessions changed (the EV
        part of the reads) and keep the view current (today and yesterday move at midnight)."""
        if not self.due():
            signature = self.sessions_signature()
            if self.last_pull is not None and signature != self._published_sessions:
                await asyncio.to_thread(self.publish, self.clock() - self.settings.recheck_days * DAY_S)
            self.view = self.rebuild()
            return self.view
        try:
            return await self.pull_now()
        finally:
            try:
                self._credential_mtime = os.stat(self.settings.credential_file).st_mtime
            except OSError:
                self._credential_mtime = None

    async def pull_now(self) -> MeterView:
        try:
            credential = self._credential()
            now = self.clock()
            newest = self.storage.meter_summary()["newest"]
            first = newest is None
            since = (now - self.settings.history_days * DAY_S if first
                     else min(newest, now) - self.settings.recheck_days * DAY_S)
            async with session_for(self.settings.base_url, self.settings.timeout) as session:
                result = await pull(session, credential, datetime.fromtimestamp(since, self.tariff.zone),
                                    datetime.fromtimestamp(now, self.tariff.zone))
        except LoginExpired as error:
            self.login = "not_set_up" if isinstance(error, NotSetUp) else "expired"
            self.view = self.rebuild()
            raise
        self.login = "ok"
        if result.login_data != credential.login_data:
            credentials.save(self.settings.credential_file, credentials.rotated(credential, result.login_data))
        new, corrected = self.storage.upsert_meter_reads(result.reads, now)
        self.storage.upsert_bills(result.bills, now)
        self.last_pull = now
        if new or corrected or first:
            self.log.info("meter: %d reads (%d new, %d corrected), %d bills, resolution %s",
                          len(result.reads), new, corrected, len(result.bills), result.resolution)
        await asyncio.to_thread(self.publish, since)   # promtool takes seconds: never on the event loop
        self.view = self.rebuild()
        return self.view

    def publish(self, since: float) -> None:
        """Stage what changed since the last publication and write the outbox to the TSDB."""
        self._published_sessions = self.sessions_signature()
        reads = self.storage.meter_reads(since - DAY_S)
        if reads:
            sessions = self._sessions(reads[0].start, reads[-1].end)
            shares = {s.start: s for s in read_shares(reads, ev_intervals(sessions, self.tariff))}
            self.storage.stage_publication(wanted(reads, shares, self.settings.utility))
        rows = self.storage.pending_publication()
        data_dir = Path(self.settings.prometheus_data_dir)
        if not rows:
            return
        if self.import_url:
            self._import(rows)
            return
        if not data_dir.is_dir():
            if not self._publish_disabled_logged:
                self._publish_disabled_logged = True
                self.log.warning("meter: %s is not a directory: reads stay in SQLite and the API, not in Prometheus; "
                                 "set meter.prometheus_data_dir to the TSDB of a Prometheus on this machine",
                                 data_dir)
            return
        try:
            blocks = write_blocks(rows, data_dir)
        except Exception as error:   # promtool missing or failing must not lose the staged rows
            self.log.warning("meter: writing %d samples to %s failed: %s; retried at the next pull", len(rows),
                             data_dir, error)
            return
        self.storage.mark_published([row[0] for row in rows])
        self.log.info("meter: %d samples written to Prometheus's TSDB (%s)", len(rows), ", ".join(blocks) or "no block")

    def _import(self, rows: list) -> None:
        """The outbox into VictoriaMetrics's import API; on failure the rows stay staged for the next pull."""
        try:
            count = history_import.post(self.import_url, openmetrics(rows))
        except (history_import.ImportFailed, ValueError) as error:
            self.log.warning("meter: importing %d samples failed: %s; retried at the next pull", len(rows), error)
            return
        self.storage.mark_published([row[0] for row in rows])
        self.log.info("meter: %d samples imported into %s", count, history_import.endpoint(self.import_url))

    def _sessions(self, start: float, end: float) -> list:
        return [s for batch in self.storage.iter_sessions(start=start - DAY_S, end=end + DAY_S) for s in batch]

    def rebuild(self) -> MeterView:
        now = self.clock()
        summary = self.storage.meter_summary()
        reads = self.storage.meter_reads(now - VIEW_DAYS * DAY_S)
        bills = self.storage.meter_bills(now - 400 * DAY_S)
        sessions = self._sessions(reads[0].start, reads[-1].end) if reads else []
        return build_view(self.settings.utility, self.login, now, reads, sessions, bills, self.tariff,
                          self.settings.discrepancy_tolerance, summary["corrections"],
                          len(self.storage.pending_publication()), summary["reads"])
