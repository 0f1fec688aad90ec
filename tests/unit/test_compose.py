"""compose.yaml, the Dockerfile and .dockerignore, checked without Docker.

Structure only: every container built from this repository runs a real entry point with arguments
its parser accepts, every path a command names is mounted (and exists when bind-mounted), ports are
published on loopback only, images are pinned, the generated Prometheus configuration is current,
its rules are where the container looks, and `.secrets` never reaches an image.
"""
from __future__ import annotations

import argparse
import importlib
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import pytest
import yaml

from servicekit.config import Config, load, read_yaml
from servicekit.settings_types import parse_duration
from suite.__main__ import COMPONENTS, compose_prometheus_config

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
EXPECTED = {"simulator", "twc-exporter", "fleet-exporter", "vehicle-exporter", "price-exporter", "price-backfill",
            "session-store", "charging-meter", "prometheus", "alertmanager", "grafana"}


def interpolate(node: Any, env: dict[str, str] | None = None) -> Any:
    """Compose's variable interpolation over a parsed file: ${NAME}, ${NAME:-default}, $$ -> $."""
    env = env or {}
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    if not isinstance(node, str):
        return node

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group("name")) or match.group("default") or ""

    return re.sub(r"\$\$|\$\{(?P<name>\w+)(?::-(?P<default>[^}]*))?\}", value, node)


COMPOSE: dict = interpolate(yaml.safe_load((ROOT / "compose.yaml").read_text()))
SERVICES: dict[str, dict] = COMPOSE["services"]
BUILT = sorted(name for name, service in SERVICES.items() if "build" in service)
ONE_SHOT = sorted({dependency for service in SERVICES.values() for dependency, spec in
                   (service.get("depends_on") or {}).items()
                   if spec.get("condition") == "service_completed_successfully"})


def compose_config() -> Config:
    return load(read_yaml(ROOT / "compose" / "config.yaml"), {}, {})


def argv_of(service: dict) -> list[str]:
    """The command, unwrapped from `sh -c '<entry point> ... || <fallback>'`; shell arithmetic counts as 0."""
    command = list(service.get("command") or [])
    if command[:2] != ["sh", "-c"]:
        return command
    words = shlex.split(command[2])
    words = words[:words.index("||")] if "||" in words else words
    words = words[1:] if words and words[0] == "exec" else words
    return ["0" if word.startswith("$((") else word for word in words]


def mounts(service: dict) -> Iterator[tuple[str, str, str]]:
    """(kind, source, target) of each short-syntax volume entry; kind is bind or volume."""
    for entry in service.get("volumes", []):
        source, target, *_ = entry.split(":")
        yield ("bind" if source.startswith((".", "/")) else "volume"), source, target


def on_mount(service: dict, path: str) -> tuple[str, str, Path | None]:
    """The mount a container path lies on: (kind, source, host path when bind-mounted)."""
    path_ = PurePosixPath(path)
    found = [(kind, source, PurePosixPath(target)) for kind, source, target in mounts(service)
             if path_ == PurePosixPath(target) or PurePosixPath(target) in path_.parents]
    assert found, f"{path} is on no mount"
    kind, source, target = max(found, key=lambda mount: len(mount[2].parts))
    host = (ROOT / source / path_.relative_to(target)).resolve() if kind == "bind" else None
    return kind, source, host


def paths_in(argv: list[str]) -> Iterator[str]:
    for word in argv:
        value = word.split("=", 1)[1] if word.startswith("--") and "=" in word else word
        if value.startswith("/"):
            yield value


def flag(argv: list[str], name: str) -> str:
    for index, word in enumerate(argv):
        if word == name:
            return argv[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    raise AssertionError(f"{name} not in {argv}")


def published(service: dict) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port."""
    result = []
    for entry in service.get("ports", []):
        host, host_port, container_port = str(entry).rsplit(":", 2)
        result.append((host, int(host_port), int(container_port)))
    return result


def test_every_component_has_its_service() -> None:
    assert set(SERVICES) == EXPECTED
    for component in COMPONENTS:
        assert component.name in BUILT, f"{component.name} must run from the suite's image"
        assert argv_of(SERVICES[component.name])[0] == component.name


@pytest.mark.parametrize("name", BUILT)
def test_command_starts_with_an_entry_point(name: str) -> None:
    argv = argv_of(SERVICES[name])
    assert argv and argv[0] in SCRIPTS, f"{name}: {argv[:1]} is not one of {sorted(SCRIPTS)}"


class Parsed(Exception):
    def __init__(self, namespace: argparse.Namespace) -> None:
        super().__init__()
        self.namespace = namespace


def parsed(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """What the entry point's own parser makes of the arguments (stopped right after parsing); SystemExit
    when it rejects them."""
    module, _, function = SCRIPTS[argv[0]].partition(":")
    main = getattr(importlib.import_module(module), function)
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> None:
        raise Parsed(parse(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    try:
        main(argv[1:])
    except Parsed as result:
        return result.namespace
    raise AssertionError(f"{argv[0]} never parsed its arguments")


@pytest.mark.parametrize("name", BUILT)
def test_command_arguments_are_accepted_by_the_entry_point(name: str, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The entry point's own parser reads the arguments; the test stops it right after parsing."""
    argv = argv_of(SERVICES[name])
    try:
        namespace = parsed(argv, monkeypatch)
    except SystemExit:
        pytest.fail(f"{name}: {argv[0]} rejects its arguments: {capsys.readouterr().err.strip()}")
    if hasattr(namespace, "config"):
        assert namespace.config == "/etc/charging/config.yaml"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_paths_in_commands_are_mounted(name: str) -> None:
    service = SERVICES[name]
    for path in paths_in(argv_of(service)):
        kind, source, host = on_mount(service, path)
        if kind == "bind":
            assert host is not None and host.exists(), f"{name}: {path} is {host}, which does not exist"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_bind_mounted_host_paths_exist(name: str) -> None:
    for kind, source, target in mounts(SERVICES[name]):
        if kind != "bind":
            continue
        host = ROOT / source
        if source.startswith("./grafana/") and not (ROOT / "grafana" / "provisioning").exists():
            pytest.skip("grafana/provisioning is not there yet (being built)")
        assert host.exists(), f"{name}: {source} (mounted at {target}) is not in the repository"
        assert host.resolve().is_relative_to(ROOT), f"{name}: {source} lies outside the repository"


def test_named_volumes_are_declared_and_used() -> None:
    used = {source for service in SERVICES.values() for kind, source, _ in mounts(service) if kind == "volume"}
    assert used == set(COMPOSE.get("volumes") or {})
    assert {"prometheus-data", "alertmanager-data", "grafana-data", "session-store-data"} <= used


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_published_ports_are_bound_to_loopback(name: str) -> None:
    for host, _, _ in published(SERVICES[name]):
        assert host == "127.0.0.1", f"{name}: port published on {host or 'every interface'}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_restart_policy(name: str) -> None:
    expected = "no" if name in ONE_SHOT else "unless-stopped"
    assert SERVICES[name].get("restart") == expected


def test_images_are_pinned() -> None:
    for name, service in SERVICES.items():
        if "build" in service:
            continue
        image, _, tag = service["image"].rpartition(":")
        assert image and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {service['image']} is not pinned"
    assert SERVICES["prometheus"]["image"].startswith("prom/prometheus:v2.")
    assert SERVICES["alertmanager"]["image"].startswith("prom/alertmanager:v0.27.")
    assert SERVICES["grafana"]["image"].startswith("grafana/grafana:11.")
    assert "yesoreyeram-infinity-datasource" in SERVICES["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith("/var/lib/grafana/dashboards/")
    assert (ROOT / "grafana" / "dashboards" / Path(home).name).is_file(), f"{home}: no such dashboard in the repo"


def test_secrets_file_is_optional_and_only_given_to_the_suite() -> None:
    for name, service in SERVICES.items():
        files = {entry["path"]: entry for entry in service.get("env_file", [])}
        if "build" not in service:
            assert ".secrets" not in files, f"{name} gets no secrets"
            continue
        assert list(files)[-1] == ".secrets", f"{name}: .secrets must come last, so it wins"
        assert files[".secrets"]["required"] is False
        assert all((ROOT / path).is_file() for path in files if path != ".secrets")


def test_compose_config_loads_with_the_project_loader() -> None:
    config = compose_config()
    listens = {component.name: component.listen(config) for component in COMPONENTS}
    listens |= {"prometheus": config.prometheus.listen, "alertmanager": config.alertmanager.listen}
    for name, listen in listens.items():
        assert listen.host == "0.0.0.0", f"{name} must listen on every interface of its container"
        service = SERVICES[name]
        assert listen.port in {container for _, _, container in published(service)}
        if name in BUILT:
            assert flag(argv_of(service), "--listen") == str(listen)
            assert f"127.0.0.1:{listen.port}/" in service["healthcheck"]["test"][-1]
    simulator = argv_of(SERVICES["simulator"])
    sim_port = flag(simulator, "--listen").rpartition(":")[2]
    assert config.tessie.base_url == config.price.base_url == f"http://simulator:{sim_port}"
    assert [c.url for c in config.wall_connectors.chargers] == \
        [f"http://simulator:{flag(simulator, '--charger-port-base')}"]
    assert config.prometheus.url == f"http://prometheus:{config.prometheus.listen.port}"
    kind, source, _ = on_mount(SERVICES["session-store"], config.sessions.database)
    assert (kind, source) == ("volume", "session-store-data")


def test_compose_config_with_the_demo_token_loads() -> None:
    env = dict(line.split("=", 1) for line in (ROOT / "compose" / "simulator.env").read_text().splitlines()
               if line and not line.startswith("#"))
    config = load(read_yaml(ROOT / "compose" / "config.yaml"), env, {})
    assert config.require_tessie_token("test").reveal() == "simulator-token"


def test_prometheus_config_is_the_rendering_of_the_compose_config() -> None:
    committed = (ROOT / "prometheus" / "compose.yml").read_text()
    assert committed == compose_prometheus_config(compose_config()), \
        "regenerate: charging-suite prometheus-config --compose --config compose/config.yaml > prometheus/compose.yml"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_prometheus_config() -> None:
    result = subprocess.run(["promtool", "check", "config", "prometheus/compose.yml"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_the_compose_services() -> None:
    prometheus = yaml.safe_load((ROOT / "prometheus" / "compose.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]}
    for job, addresses in targets.items():
        for address in addresses:
            host, _, port = address.rpartition(":")
            assert host in SERVICES, f"job {job}: {host} is not a compose service"
            assert int(port) in {container for _, _, container in published(SERVICES[host])}
    alertmanagers = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == targets["alertmanager"]


def test_rule_files_exist_where_prometheus_reads_them() -> None:
    service = SERVICES["prometheus"]
    config_file = flag(service["command"], "--config.file")
    _, _, host_config = on_mount(service, config_file)
    assert host_config == (ROOT / "prometheus" / "compose.yml").resolve()
    rule_files = yaml.safe_load(host_config.read_text())["rule_files"]
    found = set()
    for pattern in rule_files:
        inside = PurePosixPath(config_file).parent / pattern
        parts: list[str] = []  # resolve "..": Prometheus reads rule files relative to its config file
        for part in inside.parts:
            if part == "..":
                parts.pop()
            else:
                parts.append(part)
        normalised = PurePosixPath(*parts)
        kind, _, host_dir = on_mount(service, str(normalised.parent))
        assert kind == "bind"
        found |= {path.resolve() for path in host_dir.glob(normalised.name)}
    assert found == {path.resolve() for path in (ROOT / "rules").glob("*.yml")} and found


def test_backfill_writes_what_prometheus_scrapes_into_its_data_volume() -> None:
    backfill, prometheus = argv_of(SERVICES["price-backfill"]), SERVICES["prometheus"]
    scraped = yaml.safe_load((ROOT / "prometheus" / "compose.yml").read_text())
    price = next(job for job in scraped["scrape_configs"] if job["job_name"] == "price")
    assert [flag(backfill, "--instance")] == price["static_configs"][0]["targets"]
    assert "--job" not in backfill  # default "price", the job name above
    assert on_mount(SERVICES["price-backfill"], flag(backfill, "--data-dir"))[:2] == \
        on_mount(prometheus, flag(prometheus["command"], "--storage.tsdb.path"))[:2] == ("volume", "prometheus-data")
    assert SERVICES["price-backfill"]["user"] == "65534:65534"  # prom/prometheus runs as nobody
    assert prometheus["depends_on"]["price-backfill"]["condition"] == "service_completed_successfully"


def test_retention_is_the_configured_one() -> None:
    retention = flag(SERVICES["prometheus"]["command"], "--storage.tsdb.retention.time")
    assert parse_duration(retention) == compose_config().prometheus.retention


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile line, continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in (ROOT / "Dockerfile").read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip() if " " in line.strip() else "")
            for line in text.splitlines() if line.strip()]


def test_dockerfile_runs_an_entry_point_as_a_non_root_user() -> None:
    instructions = dockerfile()
    final = instructions[max(i for i, (name, _) in enumerate(instructions) if name == "FROM"):]
    args = dict(arg.split("=", 1) for name, arg in instructions if name == "ARG" and "=" in arg)
    base = final[0][1].split()[0].replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", ""))
    assert base.startswith("python:3.11-slim")
    users = [arg for name, arg in final if name == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert ("VOLUME", "/data") in final
    for name in ("CMD", "ENTRYPOINT"):
        for _, arg in (entry for entry in final if entry[0] == name):
            command = yaml.safe_load(arg)  # exec form: a JSON list
            assert isinstance(command, list) and command[0] in SCRIPTS, f"{name} {arg}"
    assert any(name == "CMD" for name, _ in final)
    promtool_image = args["PROMETHEUS_IMAGE"]
    assert promtool_image == SERVICES["prometheus"]["image"], "promtool must match the Prometheus that reads its blocks"


def test_secrets_never_reach_the_image() -> None:
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert ".secrets" in ignored and "**/.secrets" in ignored
    assert ignored.index(".secrets") > max(i for i, line in enumerate(ignored) if line.startswith("!")), \
        ".secrets must be excluded after every re-inclusion"
    for name, arg in dockerfile():
        if name in {"COPY", "ADD"}:
            assert ".secrets" not in arg and ".env" not in arg.split(), f"{name} {arg}"


def test_the_image_gets_every_package_the_project_installs() -> None:
    """A package missing from the Dockerfile's COPY lines or from .dockerignore's re-inclusions builds an
    image whose entry points fail on their first import."""
    import tomllib
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    copied = {arg.split()[0] for name, arg in dockerfile() if name == "COPY" and not arg.startswith("--")}
    reincluded = {line.strip()[1:] for line in (ROOT / ".dockerignore").read_text().splitlines()
                  if line.strip().startswith("!")}
    assert packages <= copied, f"not copied into the image: {packages - copied}"
    assert packages <= reincluded, f"excluded from the build context: {packages - reincluded}"
