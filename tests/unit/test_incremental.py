"""The incremental renderer serves exactly what a full render of the registry would, byte for byte, over
every exporter's real families, and renders again only the targets that changed."""
from __future__ import annotations

import gzip
from typing import Any, Iterable

import pytest
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from exporters import fleet, price, twc, vehicle
from servicekit.collector import SnapshotCollector, Target
from servicekit.exposition import OPENMETRICS_EOF, render
from servicekit.incremental import IncrementalRenderer, TrackingRegistry, blocks
from servicekit.metrics import GAUGE, Metric, build_families
from servicekit.poller import Health, Poller, Snapshot
from tests.unit import test_fleet_collector, test_price_collector, test_twc_collector, test_vehicle_collector
from upstreams.tessie import VehicleNames

NOW = 1_800_000_000.0


async def never() -> Any:
    raise AssertionError("nothing is polled here")


def target(name: str, values: dict[str, Any], at: float = NOW, interval: float = 5.0) -> Target:
    made = Target(name)
    for endpoint, value in values.items():
        poller = made.add(Poller(name, endpoint, never, interval, timeout=1.0))
        poll(poller, value, at)
    return made


def poll(poller: Poller, value: Any, at: float) -> None:
    """What a successful poll leaves: a new snapshot and a new Health."""
    poller.latest = Snapshot(value, at)
    poller.health = Health(up=True, last_success=at, last_outcome="success")


class Setup:
    def __init__(self, targets: list[Target], families, stale_after: float = 60.0, version=lambda: None) -> None:
        self.now = [NOW + 1]
        self.registry = TrackingRegistry()
        self.requests = Counter("demo_upstream_requests", "Requests.", ["endpoint"], registry=self.registry)
        self.requests.labels("vitals").inc()
        self.collector = SnapshotCollector("demo", targets, stale_after, families, clock=lambda: self.now[0],
                                           version=version)
        self.registry.register(self.collector)
        self.renderer = IncrementalRenderer(self.registry)

    def check(self) -> str:
        """Incremental and full render agree in every format; returns the text."""
        ours, full = self.renderer(), render(self.registry)
        assert ours.text == full.text
        assert ours.openmetrics == full.openmetrics
        assert ours.openmetrics.endswith(OPENMETRICS_EOF) and ours.openmetrics.count(OPENMETRICS_EOF) == 1
        assert gzip.decompress(ours.text_gzip) == full.text
        assert gzip.decompress(ours.openmetrics_gzip) == full.openmetrics
        return ours.text.decode()

    def rendered(self) -> int:
        before = self.renderer.rendered_targets
        self.check()
        return self.renderer.rendered_targets - before


def twc_setup() -> Setup:
    data = test_twc_collector.sample_data()
    return Setup([target(name, values) for name, values in data.items()], twc.families)


def test_twc_matches_a_full_render_and_renders_only_what_changed() -> None:
    setup = twc_setup()
    assert setup.rendered() == 4
    assert setup.rendered() == 0, "nothing changed: nothing rendered"
    garage = setup.collector.targets[0].pollers["vitals"]
    poll(garage, garage.latest.value, NOW + 2)
    setup.requests.labels("vitals").inc()   # the registry's other collectors are rendered every time
    assert setup.rendered() == 1
    assert 'demo_upstream_requests_total{endpoint="vitals"} 2.0' in setup.check()


def test_golden_data_renders_as_the_golden_file() -> None:
    """The data families of the golden scenario, found unchanged inside the incremental render."""
    assert test_twc_collector.exposition(test_twc_collector.sample_data()) in "".join(
        line + "\n" for line in twc_setup().check().splitlines()
        if not line.startswith(("# HELP demo_", "# TYPE demo_", "demo_")))


def test_a_target_going_stale_is_withdrawn_as_in_a_full_render() -> None:
    setup = twc_setup()
    setup.check()
    barn = setup.collector.targets[1]
    poll(barn.pollers["lifetime"], barn.pollers["lifetime"].latest.value, NOW + 100)
    for endpoint in ("vitals", "lifetime"):
        setup.collector.targets[0].pollers[endpoint].latest = Snapshot(
            setup.collector.targets[0].pollers[endpoint].latest.value, NOW + 100)
    setup.now[0] = NOW + 101     # everything else is now older than 60 s
    text = setup.check()
    assert 'demo_up{target="shed"} 0.0' in text and 'twc_power_watts{charger="shed"}' not in text
    assert 'twc_charge_starts_total{charger="barn"} 42.0' in text and 'twc_power_watts{charger="barn"}' not in text


def test_a_failed_poll_turns_up_to_zero() -> None:
    setup = twc_setup()
    setup.check()
    health = setup.collector.targets[2].pollers["vitals"].health
    health.up = False            # the poller updates its Health in place on failure
    assert setup.rendered() == 1
    assert 'demo_up{target="shed"} 0.0' in setup.check()


def test_a_target_appearing_and_one_leaving() -> None:
    setup = twc_setup()
    setup.check()
    data = test_twc_collector.sample_data()
    setup.collector.targets.insert(1, target("annex", {"vitals": data["garage"]["vitals"]}))
    assert setup.rendered() == 1
    assert 'twc_power_watts{charger="annex"}' in setup.check()
    del setup.collector.targets[0]
    assert setup.rendered() == 0
    assert 'charger="garage"' not in setup.check()


def test_no_targets_at_all_gives_every_family_without_samples() -> None:
    setup = Setup([], twc.families)
    text = setup.check()
    assert "# TYPE twc_power_watts gauge\n# HELP" in text


def test_families_only_some_targets_yield_keep_the_full_render_order() -> None:
    rows = (Metric("demo_power_watts", GAUGE, "Power.", lambda v: v.get("power")),)

    def families(data) -> Iterable:
        yield from build_families(rows, ("charger",), [((n,), v["vitals"]) for n, v in data.items() if "vitals" in v])
        for name, values in data.items():
            if "vitals" in values and values["vitals"].get("extra"):
                family = GaugeMetricFamily("demo_extra", "Only some targets have it.", labels=["charger"])
                family.add_metric([name], 1.0)
                yield family
        yield GaugeMetricFamily("demo_last", "Always there.", labels=["charger"])

    setup = Setup([target("a", {"vitals": {"power": 1.0}}), target("b", {"vitals": {"power": 2.0, "extra": True}})],
                  families)
    text = setup.check()
    assert text.index("# HELP demo_extra") < text.index("# HELP demo_last Always")


def test_vehicle_names_learned_later_rename_every_car() -> None:
    data = test_vehicle_collector.sample_data()
    names = test_vehicle_collector.learned()
    setup = Setup([target(name, values) for name, values in data.items()],
                  vehicle.make_collect(names, test_vehicle_collector.HOME), version=lambda: names.version)
    setup.check()
    record = next(iter(data.values()))["state"]
    unnamed = next(v["state"] for v in data.values() if not names.knows(v["state"].vin))
    names.learn([type(record)(**{**record.__dict__, "vin": unnamed.vin, "display_name": "Renamed"})])
    assert setup.rendered() == len(data)
    assert f'vehicle="Renamed",vin="{unnamed.vin}"' in setup.check()


def test_vehicle_names_version_moves_only_when_a_name_changes() -> None:
    names = VehicleNames({})
    record = test_vehicle_collector.state("state_online_charging.json")
    names.learn([record])
    version = names.version
    names.learn([record])
    assert names.version == version


def test_fleet_single_target_and_its_site_label() -> None:
    snapshot = test_fleet_collector.snapshot(*test_fleet_collector.SCENARIOS["powerwall_site"])
    label = ["Home"]
    names = test_fleet_collector.NAMES
    setup = Setup([target("energy_site", snapshot["energy_site"], interval=30.0)],
                  fleet.make_collect(names, label), version=lambda: (names.vehicles.version, label[0]))
    setup.check()
    label[0] = "Cabin"
    assert 'site="Cabin"' in setup.check()


@pytest.mark.parametrize("scenario", list(test_price_collector.SCENARIOS))
def test_price_is_rendered_whole_yet_identical(scenario: str) -> None:
    data, book = test_price_collector.scenario(*test_price_collector.SCENARIOS[scenario])
    setup = Setup([target("comed", data["comed"], interval=300.0)], price.make_collect("comed", book.lookback_s,
                                                                                      test_price_collector.TARIFF))
    assert setup.rendered() == 1
    assert setup.rendered() == 0


def test_blocks_split_families_at_help_lines_only() -> None:
    text = (b'# HELP a_x A "# HELP" in help.\n# TYPE a_x gauge\na_x{l="# HELP b"} 1.0\n'
            b"# HELP b_y B.\n# TYPE b_y gauge\n")
    assert blocks(text) == [(b'# HELP a_x A "# HELP" in help.\n# TYPE a_x gauge\n', b'a_x{l="# HELP b"} 1.0\n'),
                            (b"# HELP b_y B.\n# TYPE b_y gauge\n", b"")]


def test_a_failing_incremental_render_falls_back_to_a_full_one_and_recovers(monkeypatch, caplog) -> None:
    setup = twc_setup()
    setup.check()
    working = setup.renderer._snapshot

    def failing(collector):
        raise ValueError("a renderer bug")
    monkeypatch.setattr(setup.renderer, "_snapshot", failing)
    setup.check()                       # still the full render's bytes
    setup.check()
    assert setup.renderer.failed and len([r for r in caplog.records if "render failed" in r.message]) == 1
    monkeypatch.setattr(setup.renderer, "_snapshot", working)
    setup.check()
    assert not setup.renderer.failed
