"""A failed charge-history import is retried within seconds (backing off), not a whole interval later,
and the log names the upstream that failed: Prometheus (the prices) or Tessie (the history)."""
from __future__ import annotations

import asyncio
import logging
import time

import pytest

import session_store.__main__ as store
from servicekit.errors import Timeout, Unreachable

INTERVAL = 3600.0   # the default charge_history_interval is 15 minutes; anything near it would hang the test


class FlakyTessie:
    def __init__(self, failures: int) -> None:
        self.failures = failures

    async def charge_history(self, site_id: str) -> list:
        if self.failures:
            self.failures -= 1
            raise Timeout("telemetry_history at api.tessie.com: no answer within 15s")
        return []


class Service:
    """reconcile() as the store's: Tessie's history first, then the prices from Prometheus."""

    def __init__(self, prometheus_failures: int, stop: asyncio.Event, after: int) -> None:
        self.prometheus_failures = prometheus_failures
        self.calls: list[float] = []
        self.stop, self.after = stop, after

    async def reconcile(self, tessie, site_id: str) -> None:
        self.calls.append(time.monotonic())
        if len(self.calls) >= self.after:
            self.stop.set()
        await tessie.charge_history(site_id)
        if self.prometheus_failures:
            self.prometheus_failures -= 1
            raise Unreachable("query at 127.0.0.1:9090: ClientConnectorError: connection refused")


@pytest.mark.parametrize("tessie_failures, prometheus_failures, upstream", [(0, 2, "Prometheus"), (2, 0, "Tessie")])
async def test_a_failed_import_is_retried_soon_and_names_the_failing_upstream(monkeypatch, caplog, tessie_failures,
                                                                              prometheus_failures, upstream) -> None:
    monkeypatch.setattr(store, "RETRY_S", 0.05)
    stop = asyncio.Event()
    service = Service(prometheus_failures, stop, after=3)
    log = logging.getLogger(f"reconcile-{upstream}")
    with caplog.at_level(logging.INFO, logger=log.name):
        await asyncio.wait_for(store.reconcile_forever(service, FlakyTessie(tessie_failures), "1689500000123456",
                                                       INTERVAL, log, stop), 10)
    assert len(service.calls) == 3, "two failures, then the import that succeeds"
    first, second = service.calls[1] - service.calls[0], service.calls[2] - service.calls[1]
    assert 0.04 <= first < 1 and second >= 2 * 0.05 * 0.9, (first, second)   # 0.05 s, then doubled
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings                          # once per episode
    other = "Tessie" if upstream == "Prometheus" else "Prometheus"
    assert upstream in warnings[0] and other not in warnings[0], warnings[0]
    assert "retrying in 0.05s" in warnings[0]
    assert any(f"charge history imported again ({upstream} answers)" in r.getMessage() for r in caplog.records)


async def test_the_retry_never_exceeds_the_interval(monkeypatch) -> None:
    monkeypatch.setattr(store, "RETRY_S", 0.05)
    stop = asyncio.Event()
    service = Service(10, stop, after=5)
    started = time.monotonic()
    await asyncio.wait_for(store.reconcile_forever(service, FlakyTessie(0), "1", 0.1, logging.getLogger("r"), stop), 10)
    gaps = [b - a for a, b in zip(service.calls, service.calls[1:])]
    assert all(gap < 0.5 for gap in gaps), gaps
    assert time.monotonic() - started < 5
