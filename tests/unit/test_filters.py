"""Multi-value filters: Grafana's multi-select sends `unit=a&unit=b` or `unit=a,b` (`${unit:csv}`), and its
"All" an empty value, `All`, `$__all` or `.*` (the dashboards' allValue). Sessions, the export and the summaries keep the sessions of any
of the chosen units or vehicles (a vehicle by name or VIN); one value keeps working as before."""
from __future__ import annotations

from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from billing.settings import tariff_for
from servicekit.config import load
from session_store.api import Events, add_routes
from session_store.records import Session
from session_store.storage import Storage

CHICAGO = ZoneInfo("America/Chicago")
BLUE, RED = "5YJ3E1EA7KF000001", "5YJYGDEE5PF000002"
DAY = 86400.0


def session(unit: str, start: float, vin: str | None, vehicle: str | None, energy_wh: float = 1000.0) -> Session:
    return Session(unit=unit, din=None, vin=vin, vehicle=vehicle, start=start, end=start + 3600, duration_s=3600,
                   energy_wh=energy_wh, peak_w=7000, average_w=1000, meter_energy_wh=None, supply_cost=0.1,
                   supply_credit=0.0, delivery_cost=0.05, full_cost=0.15, supply_price_cents=10.0, cost_final=True,
                   intervals={start + 300: energy_wh}, gap_s=0.0, source="live_status", reconciliation="pending",
                   metered_energy_wh=None, target_id=None)


def stored(tmp_path) -> Storage:
    """Ten days: garage charges Blue, driveway Red, barn an unknown car, each once a day."""
    storage = Storage(tmp_path / "s.db", CHICAGO)
    base = 1_780_000_000.0
    rows = [session(unit, base + day * DAY + offset, vin, name)
            for day in range(10)
            for unit, offset, vin, name in (("garage", 0, BLUE, "Blue"), ("driveway", 7200, RED, "Red"),
                                            ("barn", 3600, None, None))]
    storage.save_step({}, rows, [], base + 11 * DAY)
    return storage


def test_storage_filters_take_one_value_or_several(tmp_path) -> None:
    storage = stored(tmp_path)
    units = lambda rows: {s.unit for s in rows}   # noqa: E731
    assert units(storage.sessions(unit="garage", limit=100)) == {"garage"}, "one value as before"
    assert units(storage.sessions(unit=("garage", "barn"), limit=100)) == {"garage", "barn"}
    assert storage.count(unit=["garage", "barn"]) == 20 and storage.count(unit=["garage"]) == 10
    assert storage.count(unit=()) == 30 and storage.count(unit=None) == 30, "no value: no filter"
    assert storage.count(unit=["nowhere"]) == 0
    assert storage.count(vehicle=["Blue", "Red"]) == 20
    assert storage.count(vehicle=[RED]) == 10, "a vehicle by its VIN"
    assert units(storage.sessions(vin=BLUE, limit=3)) == {"garage"} and len(storage.sessions(vin=BLUE, limit=3)) == 3
    assert storage.count(unit=["garage", "barn"], vehicle=["Blue"]) == 10, "unit AND vehicle, each any of"
    exported = [s for batch in storage.iter_sessions(unit=["driveway", "barn"], batch=7) for s in batch]
    assert len(exported) == 20 and units(exported) == {"driveway", "barn"}
    days = storage.day_totals(unit=["garage", "driveway"], vehicle=["Red", "nobody"])
    assert len(days) == 10 and sum(d["sessions"] for d in days) == 10
    assert sum(d["energy_wh"] for d in storage.day_totals(unit=["garage", "driveway"])) == 20 * 1000.0


async def client_for(storage: Storage) -> TestClient:
    config = load({}, {}, {})
    app = web.Application()
    add_routes(app, storage, lambda: None, tariff_for(config), Events(), CHICAGO)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_the_api_reads_repeated_and_comma_separated_values_as_any_of(tmp_path) -> None:
    client = await client_for(stored(tmp_path))
    try:
        async def total(query: str) -> int:
            response = await client.get(f"/api/sessions?{query}")
            assert response.status == 200, await response.text()
            return (await response.json())["total"]

        async def units(query: str) -> set[str]:
            response = await client.get(f"/api/sessions?limit=1000&{query}")
            return {s["unit"] for s in (await response.json())["sessions"]}

        assert await total("unit=garage") == 10, "one value as before"
        assert await units("unit=garage&unit=barn") == {"garage", "barn"}
        assert await units("unit=garage,barn") == {"garage", "barn"}, "Grafana's ${unit:csv}"
        assert await units("unit=garage,%20barn&unit=garage") == {"garage", "barn"}
        for everything in ("unit=", "unit=All", "unit=%24__all", "unit=.%2A", "unit=garage&unit=All", ""):
            assert await total(everything) == 30, everything
        assert await total("unit=nowhere") == 0
        assert await units(f"vehicle=Blue,{RED}") == {"garage", "driveway"}, "by name or VIN"
        assert await total("vehicle=Blue&unit=garage,driveway") == 10

        response = await client.get("/api/export?format=json&unit=driveway&unit=barn")
        assert {s["unit"] for s in await response.json()} == {"driveway", "barn"}
        response = await client.get("/api/export?unit=garage,barn")
        lines = (await response.text()).splitlines()
        assert len(lines) == 21 and {line.split(",")[1] for line in lines[1:]} == {"garage", "barn"}
        response = await client.get("/api/summary?period=month&unit=garage,driveway")
        assert sum(s["sessions"] for s in (await response.json())["summaries"]) == 20

        many = quote(",".join(f"u{i}" for i in range(101)))
        response = await client.get(f"/api/sessions?unit={many}")
        assert response.status == 400 and (await response.json())["error"] == "unit: at most 100 values, got 101"
    finally:
        await client.close()
