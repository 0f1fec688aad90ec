"""Several homes in one suite: `sites:` lays each site's sections over the shared ones, gives it its own
addresses and session database, labels its targets `site`, and makes its session store see only its own
series."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import suite.__main__ as suite_main
from servicekit.config import ConfigError, load
from suite.grafana_provisioning import datasources

CABIN_VIN = "5YJSA1E26MF000003"
TWO = {"price": {"poll_interval": 120},
       "sites": [{"name": "home", "wall_connectors": {"chargers": [{"name": "garage", "address": "192.168.1.50"}]}},
                 {"name": "cabin", "wall_connectors": {"chargers": [{"name": "carport", "address": "10.0.0.7"}]},
                  "vehicles": {"vins": [CABIN_VIN], "home_latitude": 45.95, "home_longitude": -89.69},
                  "price": {"base_url": "http://prices.example"}, "tariff": {"delivery_cents_per_kwh": 4.2},
                  "sessions": {"listen": "127.0.0.1:19885"}}]}


def test_one_home_is_a_site_called_home_and_its_store_filters_nothing() -> None:
    config = load({}, {}, {})
    assert (config.site, config.sites, config.site_index, config.site_matcher) == ("home", ("home",), 0, None)
    assert load({"general": {"site": "farm"}}, {}, {}).site == "farm"
    assert load({}, {"SITE_NAME": "farm"}, {}).sites == ("farm",)


def test_a_site_is_its_sections_over_the_shared_ones() -> None:
    home, cabin = load(TWO, {}, {}), load(TWO, {}, {}, "cabin")
    assert (home.site, cabin.site, cabin.sites) == ("home", "cabin", ("home", "cabin"))
    assert [c.name for c in home.wall_connectors.chargers] == ["garage"]
    assert [c.name for c in cabin.wall_connectors.chargers] == ["carport"]
    assert cabin.price.base_url == "http://prices.example" and home.price.base_url.startswith("https://hourlypricing")
    assert home.price.poll_interval == cabin.price.poll_interval == 120, "shared settings reach every site"
    assert (home.tariff.delivery_cents_per_kwh, cabin.tariff.delivery_cents_per_kwh) == (7.5, 4.2)
    assert cabin.vehicles.vins == (CABIN_VIN,) and home.vehicles.vins == ()
    assert load(TWO, {"CHARGING_SITE": "cabin"}, {}).site == "cabin"


def test_each_site_has_its_own_addresses_and_database() -> None:
    home, cabin = load(TWO, {}, {}), load(TWO, {}, {}, "cabin")
    assert str(home.wall_connectors.listen) == "127.0.0.1:9881" and str(cabin.wall_connectors.listen) == "127.0.0.1:9981"
    assert str(cabin.price.listen) == "127.0.0.1:9984" and str(cabin.simulator.listen) == "127.0.0.1:9980"
    assert cabin.simulator.charger_port_base == 9990
    assert str(cabin.sessions.listen) == "127.0.0.1:19885", "a site's own address wins"
    assert home.sessions.database == str(Path("var") / "session_store.sqlite3"), "the first keeps the single home's"
    assert cabin.sessions.database == str(Path("var") / "sites" / "cabin" / "session_store.sqlite3")
    assert str(home.alertmanager.listen) == str(cabin.alertmanager.listen), "the suite's parts are shared"


def test_a_store_sees_its_own_site_and_the_first_the_history_from_before_sites() -> None:
    assert load(TWO, {}, {}).site_matcher == 'site=~"home|"'
    assert load(TWO, {}, {}, "cabin").site_matcher == 'site="cabin"'


@pytest.mark.parametrize("mapping, env, site, message", [
    ({"sites": [{"name": "a"}, {"name": "a"}]}, {}, None, "sites[1].name: is a duplicate site name"),
    ({"sites": [{"name": "my home"}]}, {}, None, "sites[0].name: must be a name of letters"),
    ({"sites": [{"wall_connectors": {}}]}, {}, None, "sites[0].name: is missing"),
    ({"sites": [{"name": "a", "prometheus": {}}]}, {}, None,
     "sites[0].prometheus: is shared by every site, got it under site 'a'; move it to the top-level 'prometheus:'"),
    ({"sites": [{"name": "a", "chargers": []}]}, {}, None, "sites[0].chargers: unknown key"),
    ({"sites": {"name": "a"}}, {}, None, "sites: must be a list of sites"),
    ({"sites": [{"name": "a", "price": "x"}]}, {}, None, "sites[0].price: must be a mapping of settings"),
    ({"sites": [{"name": "a", "price": {"provder": "comed"}}]}, {}, None, "price.provder: unknown key"),
    (TWO, {}, "lake", "CHARGING_SITE: no such site, got 'lake'; use one of home, cabin"),
    ({}, {"CHARGING_SITE": "cabin"}, None, "CHARGING_SITE: no such site, got 'cabin'; use one of home"),
    (TWO, {"TWC_CHARGERS": "garage:192.168.1.50"}, None,
     "TWC_CHARGERS: set in the environment, but the configuration has 2 sites"),
    ({**TWO, "general": {"site": "x"}}, {}, None, "general.site: not used with sites:"),
    ({"vehicles": {"vins": ["nope"]}}, {}, None, "vehicles.vins: holds something that is not a 17-character VIN"),
    ({**TWO, "sessions": {"database": "/srv/s.db"}}, {}, "cabin",
     "sessions.database: one file cannot hold several sites' sessions, got '/srv/s.db' for site 'cabin' too"),
])
def test_bad_sites_stop_start_up_naming_the_key(mapping, env, site, message) -> None:
    with pytest.raises(ConfigError) as error:
        load(mapping, env, {}, site)
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_a_child_told_its_site_may_take_the_environment() -> None:
    env = {"TWC_CHARGERS": "carport:10.0.0.8", "CHARGING_SITE": "cabin"}
    assert [c.url for c in load(TWO, env, {}).wall_connectors.chargers] == ["http://10.0.0.8"]
    assert load({}, {"VEHICLE_VINS": f"{CABIN_VIN}, {CABIN_VIN}"}, {}).vehicles.vins == (CABIN_VIN,)


def test_a_site_may_have_its_own_tessie_account() -> None:
    secrets = {"TESSIE_ACCESS_TOKEN": "shared-token", "TESSIE_ACCESS_TOKEN_CABIN": "cabin-token"}
    mapping = {**TWO, "sites": [TWO["sites"][0], {**TWO["sites"][1], "tessie": {"base_url": "https://other.example"}}]}
    home, cabin = load(mapping, {}, secrets), load(mapping, {}, secrets, "cabin")
    assert home.secrets.tessie_access_token.reveal() == "shared-token"
    assert cabin.secrets.tessie_access_token.reveal() == "cabin-token"
    assert cabin.tessie.base_url == "https://other.example" and home.tessie.base_url == "https://api.tessie.com"
    only_cabin = load(mapping, {}, {"TESSIE_ACCESS_TOKEN_CABIN": "cabin-token"})
    assert only_cabin.secrets.tessie_access_token is None, "the first site has no token of its own"
    with pytest.raises(ConfigError, match="^secrets file: TESSIE_ACCESS_TOKEN_LAKE names no site, got "
                                          "'TESSIE_ACCESS_TOKEN_LAKE'; a site's own token is "
                                          "TESSIE_ACCESS_TOKEN_CABIN, TESSIE_ACCESS_TOKEN_HOME$"):
        load(mapping, {}, {"TESSIE_ACCESS_TOKEN_LAKE": "x"})
    with pytest.raises(ConfigError, match="only read with several sites"):
        load({}, {}, {"TESSIE_ACCESS_TOKEN_HOME": "x"})
    assert "cabin-token" not in repr(cabin)


def test_prometheus_labels_every_target_with_its_site_and_the_suite_s_own_with_none() -> None:
    sites = [load(TWO, {}, {}), load(TWO, {}, {}, "cabin")]
    rendered = yaml.safe_load(suite_main.reference_prometheus_config(sites[0], sites))
    jobs = {job["job_name"]: job["static_configs"] for job in rendered["scrape_configs"]}
    assert jobs["twc"] == [{"targets": ["127.0.0.1:9881"], "labels": {"site": "home"}},
                           {"targets": ["127.0.0.1:9981"], "labels": {"site": "cabin"}}]
    assert jobs["session_store"][1] == {"targets": ["127.0.0.1:19885"], "labels": {"site": "cabin"}}
    assert jobs["meter"] == [{"targets": ["127.0.0.1:9886"], "labels": {"site": "home"}}], "the suite's meter: the first"
    assert jobs["prometheus"] == [{"targets": ["127.0.0.1:9090"]}]
    assert jobs["alertmanager"] == [{"targets": ["127.0.0.1:9093"]}]
    one = yaml.safe_load(suite_main.reference_prometheus_config(load({}, {}, {})))
    assert one["scrape_configs"][0]["static_configs"] == [{"targets": ["127.0.0.1:9881"], "labels": {"site": "home"}}]


def test_the_suite_gives_each_site_its_own_environment_and_directory(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    mapping = {**TWO, "general": {"data_dir": str(tmp_path / "var")}}
    config_file.write_text(yaml.safe_dump(mapping))
    config = load(mapping, {}, {})
    suite = suite_main.Suite(config, str(config_file), tmp_path / "var" / "live", mode=suite_main.LIVE)
    home, cabin = suite.sites
    assert (home.env["CHARGING_SITE"], cabin.env["CHARGING_SITE"]) == ("home", "cabin")
    assert (home.tag("twc-exporter"), cabin.tag("twc-exporter")) == ("twc-exporter", "twc-exporter-cabin")
    assert suite.database(home) == tmp_path / "var" / "live" / "session_store.sqlite3"
    assert suite.database(cabin) == tmp_path / "var" / "live" / "sites" / "cabin" / "session_store.sqlite3"
    assert [c.job for c in suite_main.wanted(cabin.config, False, quiet=True)] == ["twc", "price", "session_store"], \
        "no token: no Tessie exporters; the meter is the suite's, with the first site"
    demo = suite_main.Suite(config, str(config_file), tmp_path / "var" / "demo", mode=suite_main.DEMO)
    assert demo.sites[1].env["SESSION_STORE_DB"] == str(tmp_path / "var" / "demo" / "sites" / "cabin" /
                                                         "session_store.sqlite3")
    assert suite_main.simulated(config, [home.config, cabin.config]) is False


def test_grafana_gets_a_session_store_datasource_per_site() -> None:
    sites = [load(TWO, {}, {}), load(TWO, {}, {}, "cabin")]
    stores = [s for s in datasources(sites[0], sites)["datasources"] if s["type"] == "yesoreyeram-infinity-datasource"]
    assert [(s["name"], s["uid"], s["url"]) for s in stores] == [
        ("Session store: home", "session-store", "http://127.0.0.1:9885"),
        ("Session store: cabin", "session-store-cabin", "http://127.0.0.1:19885")]
    one = [s for s in datasources(load({}, {}, {}))["datasources"] if s["type"] == "yesoreyeram-infinity-datasource"]
    assert [(s["name"], s["uid"]) for s in one] == [("Session store", "session-store")]
