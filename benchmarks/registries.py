"""Each exporter's real registry and collector, with synthetic snapshots already in its pollers.

The registries are built by the exporters' own `parts_factory` (price: the same public parts, see
`price_registry`), so /metrics carries exactly what a running exporter would serve: health
gauges, upstream request counters and histograms, and the data families. Upstream payloads are
generated in the real wire shapes (the recorded fixtures under tests/unit/fixtures, varied per
unit so that gzip sees realistic, not identical, values) and parsed by the exporters' own parsers.
Nothing is ever fetched: the pollers are never started, their `latest` and `health` are set here.
"""
from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import aiohttp
import numpy as np
from prometheus_client import CollectorRegistry

from billing.settings import tariff_for
from exporters import fleet, price, twc, vehicle
from upstreams.comed import INTERVAL_S, parse_feed
from upstreams.tessie import parse_live_status, parse_site_info, parse_vehicle_state, unwrap
from upstreams.wallconnector import PARSERS, decode_lenient
from servicekit.collector import SnapshotCollector, Target
from servicekit.config import Config, load
from servicekit.incremental import TrackingRegistry
from servicekit.poller import Health, Poller, Snapshot
from servicekit.runtime import PartsContext, ExporterParts
from servicekit.upstream import Upstream, UpstreamMetrics, decode_json
from upstreams.price_providers import PROVIDERS, CurrentPrice, Rate

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "unit" / "fixtures"
TOKEN = {"TESSIE_ACCESS_TOKEN": "benchmark-token-not-used"}  # never sent: nothing is fetched
LOG = logging.getLogger("benchmarks")


@dataclass
class BenchRegistry:
    """One exporter's registry as it would be serving, plus what refreshing its snapshots needs."""

    name: str          # e.g. "twc (1,000 chargers)"
    exporter: str
    units: int
    registry: CollectorRegistry
    collector: SnapshotCollector
    targets: list[Target]
    records: dict[tuple[str, str], Any]  # (target, endpoint) -> parsed upstream record

    def refresh(self, now: float | None = None) -> None:
        """Put every record in its poller as if the poll had just succeeded (snapshots never turn stale)."""
        now = time.time() if now is None else now
        for target in self.targets:
            for endpoint, poller in target.pollers.items():
                if (target.name, endpoint) in self.records:
                    fill(poller, self.records[target.name, endpoint], now)


def fill(poller: Poller[Any], value: Any, now: float) -> None:
    poller.latest = Snapshot(value, now)
    poller.health = Health(up=True, last_success=now, last_outcome="success", next_attempt=now + poller.interval)


def _context(session: aiohttp.ClientSession, registry: CollectorRegistry) -> PartsContext:
    def spawn(target: Target) -> None:
        raise AssertionError("benchmark registries discover nothing")
    return PartsContext(session, registry, lambda: None, spawn)


def _build(parts_factory: Callable[[Config, logging.Logger], Any], config: Config,
           session: aiohttp.ClientSession) -> tuple[CollectorRegistry, ExporterParts]:
    registry = TrackingRegistry()
    parts = parts_factory(config, LOG)(_context(session, registry))
    return registry, parts


def _vary(payload: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same payload with its measured numbers moved by a few percent (ints stay ints, codes stay put)."""
    fixed = {"config_status", "evse_state", "wifi_connected", "internet", "contactor_closed", "vehicle_connected"}
    varied: dict[str, Any] = {}
    for key, value in payload.items():
        if key in fixed or isinstance(value, bool) or not isinstance(value, (int, float)):
            varied[key] = value
        elif isinstance(value, int):
            varied[key] = int(value * rng.uniform(0.9, 1.1))
        else:
            varied[key] = round(value * rng.uniform(0.97, 1.03), 3)
    return varied


# --- twc: the local API of N Wall Connectors ------------------------------------------------------

TWC_VITALS = ("vitals_us_charging.json", "vitals_eu_charging.json", "vitals_new_firmware_plugged.json")


def twc_registry(units: int, session: aiohttp.ClientSession, seed: int = 1) -> BenchRegistry:
    """N chargers, each with vitals, lifetime, version and wifi_status parsed from real-shaped bodies."""
    rng = random.Random(seed)
    names = [f"wc{i:04d}" for i in range(units)]
    config = load({"wall_connectors": {"chargers": [{"name": n, "address": f"192.0.2.{i % 250 + 1}:{8000 + i}"}
                                                    for i, n in enumerate(names)]}}, {}, {})
    registry, parts = _build(twc.parts_factory, config, session)
    raw = {f: json.loads((FIXTURES / "wallconnector" / f).read_text()) for f in
           (*TWC_VITALS, "lifetime.json", "version.json", "wifi_status.json")}
    records: dict[tuple[str, str], Any] = {}
    for i, name in enumerate(names):
        version = {**raw["version.json"], "serial_number": f"ACB{12345600000 + i:011d}"}
        wifi = {**_vary(raw["wifi_status.json"], rng), "wifi_infra_ip": f"192.0.2.{i % 250 + 1}",
                "wifi_mac": "AA:BB:CC:%02X:%02X:%02X" % (i >> 16 & 255, i >> 8 & 255, i & 255)}
        bodies = {"vitals": _vary(raw[TWC_VITALS[i % len(TWC_VITALS)]], rng),
                  "lifetime": _vary(raw["lifetime.json"], rng), "version": version, "wifi_status": wifi}
        for endpoint, body in bodies.items():
            records[name, endpoint] = PARSERS[endpoint](decode_lenient(json.dumps(body).encode(), endpoint))
    bench = BenchRegistry(f"twc ({units:,} charger{'s' if units > 1 else ''})", "twc", units, registry,
                          parts.collector, parts.targets, records)
    bench.refresh()
    return bench


# --- fleet: one energy site with N Wall Connector units --------------------------------------------

SITE_ID = "STE12345678-00001"


def fleet_payloads(units: int, rng: random.Random) -> tuple[bytes, bytes]:
    """live_status (site flows of the Powerwall fixture) and site_info with N generated units."""
    live = json.loads((FIXTURES / "tessie" / "live_status_powerwall.json").read_text())
    info = json.loads((FIXTURES / "tessie" / "site_info.json").read_text())
    shapes = [e for e in json.loads((FIXTURES / "tessie" / "live_status_wc_only.json").read_text())
              ["response"]["wall_connectors"] if "din" in e]
    entries, components = [], []
    for i in range(units):
        din = f"1457768-02-G--PGT{12345600000 + i:011d}"
        entry = {**shapes[i % len(shapes)], "din": din}
        if entry.get("vin"):
            entry["vin"] = f"5YJ3E1EA7KF{i:06d}"
        if isinstance(entry.get("wall_connector_power"), (int, float)) and entry["wall_connector_power"]:
            entry["wall_connector_power"] = round(entry["wall_connector_power"] * rng.uniform(0.8, 1.0), 3)
        entries.append(entry)
        components.append({"device_id": f"c0ffee00-0000-4000-8000-{i:012d}", "din": din, "is_active": True})
    live["response"]["wall_connectors"] = entries
    info["response"]["components"]["wall_connectors"] = components
    return json.dumps(live).encode(), json.dumps(info).encode()


def fleet_registry(units: int, session: aiohttp.ClientSession, seed: int = 2) -> BenchRegistry:
    config = load({"energy_site": {"site_id": SITE_ID}}, {}, TOKEN)
    registry, parts = _build(fleet.parts_factory, config, session)
    live, info = fleet_payloads(units, random.Random(seed))
    records = {("energy_site", "live_status"): parse_live_status(unwrap(decode_json(live, "live_status"), "live_status")),
               ("energy_site", "site_info"): parse_site_info(unwrap(decode_json(info, "site_info"), "site_info"))}
    bench = BenchRegistry(f"fleet ({units:,} unit{'s' if units > 1 else ''})", "fleet", units, registry,
                          parts.collector, parts.targets, records)
    bench.refresh()
    return bench


# --- vehicle: a handful of cars ---------------------------------------------------------------------

VEHICLE_STATES = {  # fixture -> VIN the poller asked for (as in tests/unit/test_vehicle_collector.py)
    "state_online_charging.json": "5YJ3E1EA7KF000001",
    "state_asleep_cached.json": "7SAYGDEE1PA000002",
    "state_missing_and_wrong_types.json": "5YJSA1E26MF000003",
    "state_offline_minimal.json": "5YJYGDEE5LF000004",
    "state_asleep_live.json": "5YJ3E1EA7KF000005",
    "state_supercharging.json": "5YJ3E1EA7KF000006",
}


def vehicle_registry(session: aiohttp.ClientSession) -> BenchRegistry:
    names = {vin: f"car{i}" for i, vin in enumerate(VEHICLE_STATES.values(), 1)}
    config = load({"vehicles": {"names": names}}, {}, TOKEN)
    registry, parts = _build(vehicle.parts_factory, config, session)
    records: dict[tuple[str, str], Any] = {(vehicle.DISCOVERY_TARGET, "vehicles"): len(names)}
    for fixture, vin in VEHICLE_STATES.items():
        body = decode_json((FIXTURES / "tessie" / fixture).read_bytes(), fixture)
        records[names[vin], "state"] = parse_vehicle_state(body, vin)
    bench = BenchRegistry(f"vehicle ({len(names)} vehicles)", "vehicle", len(names), registry, parts.collector,
                          parts.targets, records)
    bench.refresh()
    return bench


# --- price: 30 days of 5-minute prices --------------------------------------------------------------

def comed_day(ends: Iterable[float], rng: np.random.Generator) -> bytes:
    """One day of ComEd's 5-minute feed in its wire shape: newest first, strings, cents per kWh."""
    entries = []
    for end in sorted(ends, reverse=True):
        hour = time.gmtime(end).tm_hour
        cents = 3.0 + 2.5 * np.sin((hour - 11) / 24 * 2 * np.pi) + rng.normal(0, 1.2)
        entries.append({"millisUTC": str(int(end * 1000)), "price": f"{cents:.1f}"})
    return json.dumps(entries).encode()


def price_registry(session: aiohttp.ClientSession, days: int = 30, seed: int = 3) -> BenchRegistry:
    """The price exporter's registry, assembled from the same parts `price.parts_factory` uses.

    `parts_factory` keeps its `PriceBook` inside a closure (filled only by real fetches), so the book is
    filled here and its snapshots stand in for the pollers', read by the same `make_collect`, next to the
    same health and upstream metrics.
    """
    config = load({}, {}, {})
    settings = config.price
    registry = TrackingRegistry()
    metrics = UpstreamMetrics(price.PREFIX, registry, price.ENDPOINTS)
    provider = PROVIDERS[settings.provider](Upstream(session, metrics, timeout=settings.timeout), settings.base_url)
    book = price.PriceBook(config.smart_charging.lookback_days * 86400.0)
    rng = np.random.default_rng(seed)
    newest = (time.time() // INTERVAL_S) * INTERVAL_S
    per_day = int(86400 // INTERVAL_S)
    for day in range(days):
        ends = [newest - (day * per_day + k) * INTERVAL_S for k in range(per_day)]
        body = comed_day(ends, rng)
        book.add([Rate(p.end - INTERVAL_S, p.end, p.cents)
                  for p in parse_feed(decode_json(body, "5minutefeed_range"), "5minutefeed_range")])
    recent = tuple(r for r in (Rate(e - INTERVAL_S, e, float(c)) for e, c in zip(book.history.ends[-12:],
                                                                                   book.history.cents[-12:])))
    current = CurrentPrice(recent, float(np.mean([r.cents for r in recent])))

    async def never() -> Any:
        raise AssertionError("benchmark pollers are never run")

    target = Target(provider.name)
    target.add(Poller(provider.name, "current", never, settings.poll_interval, timeout=settings.timeout * 2))
    target.add(Poller(provider.name, "history", never, price.HISTORY_REFRESH, timeout=price.HISTORY_TIMEOUT))
    collector = SnapshotCollector(price.PREFIX, [target], settings.stale_after,
                                  price.make_collect(provider.name, book.lookback_s, tariff_for(config)))
    registry.register(collector)
    records = {(provider.name, "current"): book.snapshot(current), (provider.name, "history"): book.snapshot()}
    bench = BenchRegistry(f"price ({days}-day history, {len(book.history):,} prices)", "price", 1, registry,
                          collector, [target], records)
    bench.refresh()
    return bench
