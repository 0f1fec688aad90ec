"""A session costed before its prices could be read is repriced once they can: missing price history is only
'gone' (the cost kept as final) once the store has waited long enough for a backfill or an import."""
from __future__ import annotations

import logging
from typing import Any

import pytest

from servicekit.config import load
from session_store.prometheus import Series
from session_store.records import Session
from session_store.service import PRICE_SERIES, PRICE_WAIT_S, SessionService
from session_store.storage import Storage

LOG = logging.getLogger("test")
HOUR = 1_752_501_600.0          # a whole hour in UTC (and in Chicago)
START, END = HOUR, HOUR + 3600   # a charge of one hour, known from Fleet's history a day later
INTERVALS = {START + 300 * (i + 1): 1000.0 for i in range(12)}   # 12 kWh, 1 kWh per 5 minutes


class Prices:
    """The price history a fresh VictoriaMetrics (or a backfill in progress) does not serve yet."""

    def __init__(self) -> None:
        self.series: list[Series] = []

    async def samples(self, selector: str, start: float, end: float) -> list[Series]:
        assert selector == PRICE_SERIES
        return [Series(s.labels, [t for t in s.t if start < t <= end], [v for t, v in zip(s.t, s.v) if start < t <= end])
                for s in self.series]

    async def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        return []

    def publish(self) -> None:
        """The hour before (the store reads from an hour before the session) and the session's: 6 cents."""
        times = [START - 3600 + 300 * (i + 1) for i in range(24)]
        self.series = [Series({"provider": "comed"}, times, [6.0] * 24)]


def session() -> Session:
    """Costed with no price at all: delivery only, provisional."""
    return Session(unit="garage", din=None, vin=None, vehicle=None, start=START, end=END, duration_s=3600,
                   energy_wh=12000, peak_w=12000, average_w=12000, meter_energy_wh=None, supply_cost=0.0,
                   supply_credit=0.0, delivery_cost=0.9, full_cost=0.9, supply_price_cents=0.0, cost_final=False,
                   intervals=INTERVALS, gap_s=0, source="telemetry_history", reconciliation="inserted")


@pytest.mark.parametrize("prices_arrive", [True, False])
async def test_a_session_without_prices_waits_for_them_after_a_start(tmp_path, prices_arrive: bool) -> None:
    now = [END + 86400]
    prices = Prices()
    storage = Storage(tmp_path / "s.db")
    storage.save_step({}, [session()], [], END)
    service = SessionService(load({}, {}, {}), storage, prices, LOG, clock=lambda: now[0])
    await service._reprice()
    [stored] = storage.sessions()
    assert not stored.cost_final, "no price history yet, seconds after the start: it may be on its way"
    now[0] += 60
    if prices_arrive:
        prices.publish()
        await service._reprice()
        [stored] = storage.sessions()
        assert stored.cost_final and stored.supply_cost == pytest.approx(12 * 0.06)
    else:
        now[0] += PRICE_WAIT_S
        await service._reprice()
        [stored] = storage.sessions()
        assert stored.cost_final and stored.supply_cost == 0.0, "gone for good: the cost it has is kept"
