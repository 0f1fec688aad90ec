"""A failed charge-history import is retried within seconds (backing off), not a whole interval later,
and the log names the upstream that failed: Prometheus (the prices) or Tessie (the history)."""
from __future__ import annotations

import asyncio
import logging
import time

import pytest

from servicekit.config import load
from servicekit.errors import Timeout, Unreachable
from session_store import steps

INTERVAL = 3600.0   # the default charge_history_interval is 15 minutes; anything near it would hang the test
SITE = "1689500000123456"


class FlakyTessie:
    def __init__(self, failures: int) -> None:
        self.failures = failures


class Service:
    """The store's two halves of an import: Tessie's history first, then the prices from Prometheus."""

    def __init__(self, tessie_failures: int, prometheus_failures: int, done: asyncio.Event, after: int) -> None:
        self.tessie_failures, self.prometheus_failures = tessie_failures, prometheus_failures
        self.calls: list[float] = []
        self.done, self.after = done, after

    def history_window(self, site_id: str) -> float:
        return 30.0

    def history_imported(self, site_id: str, started: float) -> None:
        pass

    async def fetch_charge_history(self, tessie, site_id: str, days: float) -> list:
        assert site_id == SITE
        self.calls.append(time.monotonic())
        if len(self.calls) >= self.after:
            self.done.set()
        if self.tessie_failures:
            self.tessie_failures -= 1
            raise Timeout("telemetry_history at api.tessie.com: no answer within 15s")
        return []

    async def reconcile(self, records: list, days: float) -> None:
        if self.prometheus_failures:
            self.prometheus_failures -= 1
            raise Unreachable("query at 127.0.0.1:9090: ClientConnectorError: connection refused")


class Ledger:
    async def refresh(self) -> None:
        return None


async def run_until_done(service: Service, interval: float, log: logging.Logger) -> None:
    config = load({"energy_site": {"site_id": SITE, "charge_history_interval": interval}}, {}, {})
    ended: list[None] = []            # the poller calls on_update once an attempt's outcome is logged
    all_ended = asyncio.Event()

    def on_update() -> None:
        ended.append(None)
        if len(ended) >= service.after:
            all_ended.set()
    poller = steps.pollers(config, service, Ledger(), None, log, None, FlakyTessie(0), on_update)["reconciliation"]
    poller.rng = lambda: 0.5          # no jitter: the delays are exact

    async def attempts_ended() -> None:
        await service.done.wait()
        await all_ended.wait()
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.wait_for(attempts_ended(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("tessie_failures, prometheus_failures, upstream", [(0, 2, "Prometheus"), (2, 0, "Tessie")])
async def test_a_failed_import_is_retried_soon_and_names_the_failing_upstream(monkeypatch, caplog, tessie_failures,
                                                                              prometheus_failures, upstream) -> None:
    monkeypatch.setattr(steps, "RETRY_S", 0.05)
    service = Service(tessie_failures, prometheus_failures, asyncio.Event(), after=3)
    log = logging.getLogger(f"reconcile-{upstream}")
    with caplog.at_level(logging.INFO, logger=log.name):
        await run_until_done(service, INTERVAL, log)
    assert len(service.calls) == 3, "two failures, then the import that succeeds"
    first, second = service.calls[1] - service.calls[0], service.calls[2] - service.calls[1]
    assert 0.04 <= first < 1 and second >= 2 * 0.05 * 0.9, (first, second)   # 0.05 s, then doubled
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings                          # once per episode
    other = "Tessie" if upstream == "Prometheus" else "Prometheus"
    assert "charge history import failed" in warnings[0], warnings[0]
    assert upstream in warnings[0] and other not in warnings[0], warnings[0]
    assert "next attempt in 0.05s" in warnings[0]
    assert any("charge history import: recovered after 2 failed attempts" in r.getMessage() for r in caplog.records)


async def test_the_retry_never_exceeds_the_interval(monkeypatch) -> None:
    monkeypatch.setattr(steps, "RETRY_S", 0.05)
    service = Service(0, 10, asyncio.Event(), after=5)
    started = time.monotonic()
    await run_until_done(service, 0.1, logging.getLogger("r"))
    gaps = [b - a for a, b in zip(service.calls, service.calls[1:])]
    assert all(gap < 0.5 for gap in gaps), gaps
    assert time.monotonic() - started < 5
