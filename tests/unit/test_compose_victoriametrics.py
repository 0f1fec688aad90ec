"""compose.victoriametrics.yaml merged over compose.yaml, checked without Docker.

The two files are merged here as Compose merges them, for the keys they use (mappings merged, command
and healthcheck test replaced, volumes unique by container path, other lists appended, `!reset` and
`!override` honoured). Then: images pinned to the VictoriaMetrics release the tests run, ports on
loopback, mounted paths in the repository, vmagent reading the committed compose-scrape.yml, vmalert
reading rules/, the flags `make up` gives (and the Debian binaries accept, in a dry run), the session
store and the meter pointed at VictoriaMetrics, and no enabled service waiting for a disabled one.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from servicekit.config import load, read_yaml
from servicekit.settings_types import parse_duration
from suite.__main__ import compose_vmagent_config
from suite.processes import vmagent_process, vmalert_process, victoria_metrics_process
from tests.unit.test_compose import (
    EXPECTED, ROOT, argv_of, compose_config, interpolate, mounts, on_mount, parsed, published,
)

VM_SERVICES = {"victoriametrics", "vmagent", "vmalert"}
VM_IMAGES = {"victoriametrics": "victoriametrics/victoria-metrics", "vmagent": "victoriametrics/vmagent",
             "vmalert": "victoriametrics/vmalert"}


# --- Compose's merge -------------------------------------------------------------------------------

class _Reset:
    """`!reset`: the key is removed from the merged file."""


RESET = _Reset()


@dataclass(frozen=True)
class Override:
    """`!override`: the value replaces the earlier file's, unmerged."""
    value: Any


class ComposeLoader(yaml.SafeLoader):
    """PyYAML with Compose's two merge tags."""


def _construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


ComposeLoader.add_constructor("!reset", lambda loader, node: RESET)
ComposeLoader.add_constructor("!override", lambda loader, node: Override(_construct(loader, node)))


def _plain(node: Any) -> Any:
    """A value new to the merge, its tags resolved."""
    if isinstance(node, Override):
        return _plain(node.value)
    if isinstance(node, dict):
        return {key: _plain(value) for key, value in node.items() if value is not RESET}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    return node


def _unique_key(path: tuple[str, ...], entry: Any) -> Any:
    if path[-1] == "volumes":   # short syntax: the container path is what must be unique
        return str(entry).split(":")[1]
    return entry


def merge(base: Any, override: Any, path: tuple[str, ...] = ()) -> Any:
    """Compose's merge of `override` into `base` (https://docs.docker.com/reference/compose-file/merge/)."""
    if isinstance(override, Override):
        return _plain(override.value)
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if value is RESET:
                merged.pop(key, None)
            else:
                merged[key] = merge(base[key], value, (*path, key)) if key in base else _plain(value)
        return merged
    if isinstance(base, list) and isinstance(override, list):
        if path[-1] in {"command", "entrypoint"} or path[-2:] == ("healthcheck", "test"):
            return _plain(override)
        if len(path) == 3 and path[0] == "services" and path[-1] in {"volumes", "ports"}:
            entries = {_unique_key(path, entry): entry for entry in base}
            entries.update({_unique_key(path, entry): _plain(entry) for entry in override})
            return list(entries.values())
        return base + _plain(override)
    return _plain(override)


def test_the_merge_follows_composes_rules() -> None:
    base = yaml.load("""
services:
  a:
    command: [x, y]
    volumes: [./a:/a, v:/data]
    depends_on: {b: {condition: service_started}}
    environment: {A: "1"}
    profiles: [one]
    user: "1:1"
""", Loader=ComposeLoader)
    override = yaml.load("""
services:
  a:
    command: [z]
    volumes: [./b:/a, w:/w]
    depends_on: !override {c: {condition: service_healthy}}
    environment: {B: "2"}
    profiles: [two]
    user: !reset null
    ports: !override ["127.0.0.1:1:1"]
""", Loader=ComposeLoader)
    assert merge(base, override) == {"services": {"a": {
        "command": ["z"], "volumes": ["./b:/a", "v:/data", "w:/w"],
        "depends_on": {"c": {"condition": "service_healthy"}}, "environment": {"A": "1", "B": "2"},
        "profiles": ["one", "two"], "ports": ["127.0.0.1:1:1"]}}}


BASE_RAW = yaml.load((ROOT / "compose.yaml").read_text(), Loader=ComposeLoader)
OVERRIDE_RAW = yaml.load((ROOT / "compose.victoriametrics.yaml").read_text(), Loader=ComposeLoader)
COMPOSE: dict = interpolate(merge(BASE_RAW, OVERRIDE_RAW))
SERVICES: dict[str, dict] = COMPOSE["services"]
ENABLED = sorted(name for name, service in SERVICES.items() if not service.get("profiles"))
DISABLED = sorted(name for name, service in SERVICES.items() if service.get("profiles"))
ONE_SHOT = sorted({dependency for service in SERVICES.values() for dependency, spec in
                   (service.get("depends_on") or {}).items()
                   if spec.get("condition") == "service_completed_successfully"})


# --- helpers ---------------------------------------------------------------------------------------

def flags(argv: list[str]) -> dict[str, list[str]]:
    """Go-style `-name=value` (or bare `-name`) flags: name -> values in order."""
    result: dict[str, list[str]] = {}
    for word in argv:
        assert word.startswith("-"), f"{word!r} is not a flag"
        name, _, value = word.lstrip("-").partition("=")
        result.setdefault(name, []).append(value)
    return result


def flag(service: str, name: str) -> str:
    values = flags(SERVICES[service]["command"])[name]
    assert len(values) == 1, f"{service}: -{name} given {len(values)} times"
    return values[0]


def port_of(listen: str) -> int:
    return int(listen.rpartition(":")[2])


def vm_url() -> str:
    return f"http://victoriametrics:{port_of(flag('victoriametrics', 'httpListenAddr'))}"


def on_host(service: str, path: str, volumes: Path) -> str:
    """A container path as a dry run on this machine reads it: bind mounts in the repository, named
    volumes in a scratch directory."""
    kind, source, host = on_mount(SERVICES[service], path)
    if kind == "bind":
        assert host is not None
        return str(host)
    _, _, target = next(mount for mount in mounts(SERVICES[service]) if mount[1] == source)
    return str(volumes / source / PurePosixPath(path).relative_to(target))


def host_argv(service: str, volumes: Path) -> list[str]:
    """The service's flags with every container path replaced by its host path."""
    argv = []
    for word in SERVICES[service]["command"]:
        name, equals, value = word.partition("=")
        argv.append(f"{name}={on_host(service, value, volumes)}" if equals and value.startswith("/") else word)
    return argv


needs_victoria_metrics = pytest.mark.skipif(
    not all(shutil.which(binary) for binary in ("victoria-metrics", "vmagent", "vmalert")),
    reason="victoria-metrics not installed (apt-get install victoria-metrics)")


def dry_run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}{result.stderr}"


# --- the services ----------------------------------------------------------------------------------

def test_the_override_swaps_prometheus_for_victoriametrics() -> None:
    assert set(SERVICES) == EXPECTED | VM_SERVICES | {"price-import"}
    assert DISABLED == ["price-backfill", "prometheus"]
    assert all(SERVICES[name]["profiles"] == ["prometheus"] for name in DISABLED)


def test_no_enabled_service_depends_on_a_disabled_one() -> None:
    for name in ENABLED:
        for dependency, spec in (SERVICES[name].get("depends_on") or {}).items():
            assert dependency in ENABLED, f"{name} depends on {dependency}, which does not start"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{name} waits for {dependency}'s health, it has none"
    assert "prometheus" not in SERVICES["grafana"]["depends_on"]


def test_startup_order_is_make_ups() -> None:
    """VictoriaMetrics, then the price import into it, then the session store (as `make up` orders them)."""
    assert SERVICES["price-import"]["depends_on"]["victoriametrics"]["condition"] == "service_healthy"
    assert SERVICES["session-store"]["depends_on"]["price-import"]["condition"] == "service_completed_successfully"
    assert ONE_SHOT == ["price-backfill", "price-import"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_restart_policy(name: str) -> None:
    assert SERVICES[name].get("restart") == ("no" if name in ONE_SHOT else "unless-stopped")


def test_images_are_pinned_to_the_victoriametrics_the_tests_run() -> None:
    for name in ENABLED:
        service = SERVICES[name]
        if "build" in service:
            assert service["image"] == "twc-charging-suite:local"
            continue
        image, _, tag = service["image"].rpartition(":")
        assert image and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {service['image']} is not pinned"
    tags = {SERVICES[name]["image"].rpartition(":")[2] for name in VM_SERVICES}
    assert len(tags) == 1, f"VictoriaMetrics, vmagent and vmalert from one release: {tags}"
    for name, image in VM_IMAGES.items():
        assert SERVICES[name]["image"].rpartition(":")[0] == image
    debian = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "victoria-metrics"], capture_output=True,
                            text=True) if shutil.which("dpkg-query") else None
    if debian is None or debian.returncode != 0:
        pytest.skip("victoria-metrics is not installed from Debian here")
    upstream = debian.stdout.split(":")[-1].split("+")[0].split("-")[0]
    assert tags == {f"v{upstream}"}, f"the images must be the release the tests run ({upstream})"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_published_ports_are_bound_to_loopback(name: str) -> None:
    for host, _, _ in published(SERVICES[name]):
        assert host == "127.0.0.1", f"{name}: port published on {host or 'every interface'}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_bind_mounted_host_paths_exist(name: str) -> None:
    for kind, source, target in mounts(SERVICES[name]):
        if kind == "bind":
            host = (ROOT / source).resolve()
            assert host.exists(), f"{name}: {source} (mounted at {target}) is not in the repository"
            assert host.is_relative_to(ROOT), f"{name}: {source} lies outside the repository"


@pytest.mark.parametrize("name", sorted(VM_SERVICES))
def test_paths_in_flags_are_mounted(name: str) -> None:
    for word in SERVICES[name]["command"]:
        _, equals, value = word.partition("=")
        if equals and value.startswith("/"):
            kind, _, host = on_mount(SERVICES[name], value)
            if kind == "bind":
                assert host is not None and (host.parent if "*" in host.name else host).exists(), f"{name}: {value}"


def test_named_volumes_are_declared_and_used() -> None:
    used = {source for service in SERVICES.values() for kind, source, _ in mounts(service) if kind == "volume"}
    assert used == set(COMPOSE["volumes"])
    assert on_mount(SERVICES["victoriametrics"], flag("victoriametrics", "storageDataPath"))[:2] == \
        ("volume", "victoriametrics-data")
    assert on_mount(SERVICES["vmagent"], flag("vmagent", "remoteWrite.tmpDataPath"))[:2] == ("volume", "vmagent-data")


@pytest.mark.parametrize("name", sorted(VM_SERVICES))
def test_listen_port_is_published_health_checked_and_configured(name: str) -> None:
    port = port_of(flag(name, "httpListenAddr"))
    assert [(host, container) for host, _, container in published(SERVICES[name])] == [("127.0.0.1", port)]
    assert SERVICES[name]["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/health"
    timing = {key: value for key, value in SERVICES[name]["healthcheck"].items() if key != "test"}
    assert timing == BASE_RAW["x-healthcheck"]
    settings = compose_config().victoriametrics
    listen = {"victoriametrics": settings.listen, "vmagent": settings.vmagent_listen,
              "vmalert": settings.vmalert_listen}[name]
    assert (listen.host, listen.port) == ("0.0.0.0", port), \
        f"compose/config.yaml victoriametrics.* must say where {name} listens (compose-scrape.yml is built on it)"


# --- the suite's containers ------------------------------------------------------------------------

def test_price_import_imports_what_vmagent_scrapes(monkeypatch: pytest.MonkeyPatch) -> None:
    service = SERVICES["price-import"]
    args = parsed(argv_of(service), monkeypatch)
    assert args.config == "/etc/charging/config.yaml"
    assert on_mount(service, args.config)[2] == (ROOT / "compose" / "config.yaml").resolve()
    assert args.import_url == vm_url()
    scrape = yaml.safe_load((ROOT / "victoriametrics" / "compose-scrape.yml").read_text())
    price = next(job for job in scrape["scrape_configs"] if job["job_name"] == "price")
    assert [args.instance] == price["static_configs"][0]["targets"] and args.job == "price"
    assert args.data_dir is None and args.state is None, "an import needs no TSDB directory nor state file"
    assert "|| echo" in service["command"][2], "a failed import only warns, as the backfill does"


def test_price_import_is_built_like_the_other_suite_services() -> None:
    reference = SERVICES["price-exporter"]
    for key in ("build", "image", "env_file"):
        assert SERVICES["price-import"][key] == reference[key], key


@pytest.mark.parametrize("name", ["session-store", "charging-meter"])
def test_queries_and_imports_go_to_victoriametrics(name: str) -> None:
    environment = SERVICES[name]["environment"]
    assert environment["PROMETHEUS_URL"] == environment["METRICS_IMPORT_URL"] == vm_url()
    config = load(read_yaml(ROOT / "compose" / "config.yaml"), environment, {})
    assert (config.prometheus.url, config.prometheus.import_url) == (vm_url(), vm_url())
    assert all(source != "prometheus-data" for _, source, _ in mounts(SERVICES[name]))


def test_the_meter_keeps_its_data_and_configuration() -> None:
    meter = SERVICES["charging-meter"]
    assert on_mount(meter, "/etc/charging/config.yaml")[2] == (ROOT / "compose" / "config.yaml").resolve()
    assert on_mount(meter, compose_config().meter.credential_file)[:2] == ("volume", "session-store-data")


# --- VictoriaMetrics, vmagent, vmalert -------------------------------------------------------------

def make_up_flags(name: str, scratch: Path) -> dict[str, list[str]]:
    """The flags `make up` starts the same program with (suite/processes.py), with compose's addresses."""
    url, alertmanager = vm_url(), f"http://alertmanager:{compose_config().alertmanager.listen.port}"
    if name == "victoriametrics":
        process = victoria_metrics_process(scratch, "0.0.0.0", 8428)
    elif name == "vmagent":
        process = vmagent_process(scratch / "vmagent.yml", scratch, "0.0.0.0", 8429, url)
    else:
        process = vmalert_process(["rules/*.yml"], url, [alertmanager], "0.0.0.0", 8880,
                                  interval=compose_config().prometheus.scrape_interval)
    return flags(list(process.command[1:]))


# Paths, addresses and the retention differ by design; everything else is `make up`'s.
OWN = {"storageDataPath", "httpListenAddr", "retentionPeriod", "promscrape.config", "remoteWrite.tmpDataPath",
       "rule", "external.url"}


@needs_victoria_metrics
@pytest.mark.parametrize("name", sorted(VM_SERVICES))
def test_flags_are_the_ones_make_up_gives(name: str, tmp_path: Path) -> None:
    expected, actual = make_up_flags(name, tmp_path), flags(SERVICES[name]["command"])
    assert set(actual) == set(expected), f"{name}: flags differ from `make up`'s"
    for key in set(expected) - OWN:
        assert actual[key] == expected[key], f"{name}: -{key}"


def test_victoriametrics_deduplicates_and_keeps_the_configured_retention() -> None:
    assert flag("victoriametrics", "dedup.minScrapeInterval") == "1ms"
    assert parse_duration(flag("victoriametrics", "retentionPeriod")) >= compose_config().prometheus.retention


@needs_victoria_metrics
def test_victoria_metrics_accepts_its_flags(tmp_path: Path) -> None:
    """`-dryRun` parses every flag (an unknown flag or a bad value fails) and checks the scrape config."""
    empty = tmp_path / "scrape.yml"
    empty.write_text("scrape_configs: []\n")
    dry_run(["victoria-metrics", *host_argv("victoriametrics", tmp_path), "-dryRun",
             f"-promscrape.config={empty}"])
    assert not (tmp_path / "victoriametrics-data").exists(), "a dry run writes nothing"


def test_vmagent_reads_the_committed_compose_scrape_config() -> None:
    _, _, host = on_mount(SERVICES["vmagent"], flag("vmagent", "promscrape.config"))
    committed = ROOT / "victoriametrics" / "compose-scrape.yml"
    assert host == committed.resolve()
    assert committed.read_text() == compose_vmagent_config(compose_config()), \
        "regenerate: charging-suite prometheus-config --vmagent --compose --config compose/config.yaml " \
        "> victoriametrics/compose-scrape.yml"
    assert flag("vmagent", "remoteWrite.url") == f"{vm_url()}/api/v1/write"


def test_vmagent_scrapes_the_enabled_services() -> None:
    scrape = yaml.safe_load((ROOT / "victoriametrics" / "compose-scrape.yml").read_text())
    assert "rule_files" not in scrape, "vmalert evaluates the rules"
    for job in scrape["scrape_configs"]:
        for address in job["static_configs"][0]["targets"]:
            host, _, port = address.rpartition(":")
            assert host in ENABLED, f"job {job['job_name']}: {host} is not an enabled service"
            assert int(port) in {container for _, _, container in published(SERVICES[host])}


@needs_victoria_metrics
def test_vmagent_accepts_its_flags_and_the_scrape_config(tmp_path: Path) -> None:
    dry_run(["vmagent", *host_argv("vmagent", tmp_path), "-promscrape.config.dryRun"])


def test_vmalert_reads_every_rule_file_where_rules_are_mounted() -> None:
    patterns = flags(SERVICES["vmalert"]["command"])["rule"]
    found = set()
    for pattern in patterns:
        kind, source, host = on_mount(SERVICES["vmalert"], pattern)
        assert kind == "bind" and source == "./rules" and host is not None
        found |= {path.resolve() for path in host.parent.glob(host.name)}
    assert found == {path.resolve() for path in (ROOT / "rules").glob("*.yml")} and found


def test_vmalert_evaluates_against_victoriametrics_and_notifies_alertmanager() -> None:
    for key in ("datasource.url", "remoteWrite.url", "remoteRead.url"):
        assert flag("vmalert", key) == vm_url(), key
    assert flag("vmalert", "notifier.url") == f"http://alertmanager:{compose_config().alertmanager.listen.port}"
    assert parse_duration(flag("vmalert", "evaluationInterval")) == compose_config().prometheus.scrape_interval
    external = flag("vmalert", "external.url")
    assert external == f"http://127.0.0.1:{published(SERVICES['vmalert'])[0][1]}", "links must open from the host"


@needs_victoria_metrics
def test_vmalert_accepts_its_flags_and_the_rules(tmp_path: Path) -> None:
    dry_run(["vmalert", *host_argv("vmalert", tmp_path), "-dryRun"])


# --- Grafana ---------------------------------------------------------------------------------------

def test_grafana_queries_victoriametrics_through_the_same_datasources() -> None:
    grafana = SERVICES["grafana"]
    target = "/etc/grafana/provisioning/datasources/datasources.yml"
    kind, _, host = on_mount(grafana, target)
    assert kind == "bind" and host == (ROOT / "victoriametrics" / "grafana-datasources.yml").resolve()
    ours = yaml.safe_load(host.read_text())
    theirs = yaml.safe_load((ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text())
    for source in theirs["datasources"]:
        if source["uid"] == "prometheus":
            source["url"] = vm_url()
    assert ours == theirs, "victoriametrics/grafana-datasources.yml must be the committed datasources, " \
                           "only the Prometheus one's URL changed"
    # The rest of the provisioning (dashboards) still comes from grafana/provisioning.
    assert on_mount(grafana, "/etc/grafana/provisioning/dashboards/dashboards.yml")[2] == \
        (ROOT / "grafana" / "provisioning" / "dashboards" / "dashboards.yml").resolve()
