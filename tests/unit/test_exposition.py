"""/metrics serves bytes rendered once per poll; formats by negotiation; stale data is withdrawn."""
from __future__ import annotations

import gzip

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from servicekit.collector import SnapshotCollector, Target
from servicekit.exposition import Exposition, Part, PartsRenderer, wants_openmetrics
from servicekit.poller import Poller, Snapshot
from servicekit.server import metrics_app
from servicekit.metrics import GAUGE, Metric, build_families

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
                     "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
ROWS = (Metric("demo_power_watts", GAUGE, "Power.", lambda v: v["power"]),)


async def never() -> dict:
    raise AssertionError("scrapes must not poll")


def setup(now: list[float], name: str = "garage") -> tuple[Exposition, Poller, CollectorRegistry]:
    poller: Poller = Poller(name, "vitals", never, 5.0, timeout=1.0)
    target = Target(name)
    target.add(poller)
    collector = SnapshotCollector("demo", [target], 30.0,
                                  lambda data: build_families(ROWS, ("charger",), [((n,), v["vitals"]) for n, v in
                                                                                   data.items() if "vitals" in v]),
                                  clock=lambda: now[0])
    registry = CollectorRegistry()
    registry.register(collector)
    exposition = Exposition(registry, valid_until=collector.valid_until)
    return exposition, poller, registry


def fresh(poller: Poller, value: dict, at: float) -> None:
    poller.latest = Snapshot(value, at)
    poller.health.up, poller.health.last_success = True, at


async def test_scrape_negotiates_openmetrics_and_gzip_from_the_same_render() -> None:
    now = [1000.0]
    exposition, poller, _ = setup(now)
    fresh(poller, {"power": 7200.0}, 1000.0)
    exposition.render_now()
    async with TestClient(TestServer(metrics_app("demo", "Demo exporter.", exposition))) as client:
        plain = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
        assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await plain.text()
        assert 'demo_power_watts{charger="garage"} 7200.0' in text
        assert 'demo_up{target="garage"} 1.0' in text
        om = await client.get("/metrics", headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"},
                              auto_decompress=False)
        assert om.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
        assert om.headers["Content-Encoding"] == "gzip"
        body = gzip.decompress(await om.read()).decode()
        assert body.endswith("# EOF\n") and 'demo_power_watts{charger="garage"} 7200.0' in body
    assert exposition.renders == 0, "scrapes must not render"


async def test_values_older_than_stale_after_are_withdrawn_and_up_goes_to_zero() -> None:
    now = [1000.0]
    exposition, poller, _ = setup(now)
    fresh(poller, {"power": 7200.0}, 1000.0)
    assert exposition.valid_until(1000.0) == 1030.0
    now[0] = 1031.0
    text = exposition.render_now().text.decode()
    assert "demo_power_watts{" not in text
    assert 'demo_up{target="garage"} 0.0' in text
    assert 'demo_last_success_timestamp_seconds{target="garage"} 1000.0' in text


async def test_landing_page_links_metrics_and_escapes_names() -> None:
    exposition, poller, _ = setup([0.0], name="<script>alert(1)</script>")
    exposition.render_now()
    target = Target(poller.target)
    target.add(poller)
    async with TestClient(TestServer(metrics_app("demo", "Demo.", exposition, lambda: [target]))) as client:
        page = await (await client.get("/")).text()
        assert 'href="metrics"' in page
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert (await client.get("/-/healthy")).status == 200


def test_accept_header_parsing() -> None:
    assert wants_openmetrics(PROMETHEUS_ACCEPT)
    assert not wants_openmetrics("text/plain;version=0.0.4")
    assert not wants_openmetrics("")
    assert not wants_openmetrics("application/openmetrics-text;q=0,text/plain")


async def test_background_renderer_picks_up_a_completed_poll() -> None:
    import asyncio
    now = [1000.0]
    exposition, poller, _ = setup(now)
    exposition.min_interval = 0.0
    exposition.render_now()
    task = asyncio.create_task(exposition.run())
    try:
        fresh(poller, {"power": 1.0}, 1000.0)
        exposition.mark_dirty()
        for _ in range(200):
            if exposition.renders:
                break
            await asyncio.sleep(0.01)
        assert 'demo_power_watts{charger="garage"} 1.0' in exposition.current.text.decode()
    finally:
        task.cancel()


def test_parts_render_only_what_changed_and_equal_a_render_of_everything() -> None:
    """The session store's exposition: a part re-renders only when its key moves, and the concatenation
    is byte for byte what prometheus-client renders for all the families at once (both formats)."""
    version, calls = [1], {"stored": 0, "live": 0}
    live_registry = CollectorRegistry()
    requests = Counter("demo_upstream_requests", "Requests.", ["outcome"], registry=live_registry)

    def stored():
        calls["stored"] += 1
        return build_families((Metric("demo_sessions", "counter", "Sessions.", lambda v: v),), ("unit",),
                              [((f"u{i}",), i * version[0]) for i in range(50)])

    def live():
        calls["live"] += 1
        return list(live_registry.collect())

    renderer = PartsRenderer([Part(stored, key=lambda: version[0]), Part(live)])

    class Everything:
        def collect(self):
            return [*stored(), *live()]

    for step in range(3):
        requests.labels("success").inc()
        if step == 2:
            version[0] = 2
        rendered = renderer()
        before = dict(calls)
        assert rendered.text == generate_latest(Everything())
        assert rendered.openmetrics == generate_openmetrics(Everything())
        assert gzip.decompress(rendered.openmetrics_gzip) == rendered.openmetrics
        for name in calls:
            calls[name] = before[name]
    assert calls == {"stored": 2, "live": 3}, "the stored part rendered once per version, the live part each time"
    assert b'demo_sessions_total{unit="u3"} 6.0' in rendered.text and b'outcome="success"} 3.0' in rendered.text
