"""charging-suite: run the whole local suite (what `make up` calls).

Simulator (when no credentials are configured), exporters, Prometheus and Alertmanager, all on
loopback; prints where everything is; Ctrl-C or SIGTERM stops everything in reverse order.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from exporters.core.config import Config, ConfigError, Listen, load_files
from suite.processes import (
    ManagedProcess, StartupError, alertmanager_process, component_process, port_in_use, prometheus_process,
)
from suite.alertmanager_config import render_alertmanager_config, write_alertmanager_config
from suite.prometheus_config import render_prometheus_config

ROOT = Path(__file__).resolve().parent.parent
DEMO_SCENARIO = ROOT / "simulator" / "scenarios" / "demo.yaml"


@dataclass(frozen=True)
class Component:
    """One of our long-running processes: its entry module, Prometheus job and configured address."""

    name: str
    module: str
    job: str
    listen: Callable[[Config], Listen]
    listen_key: str
    enabled: Callable[[Config], bool]
    needs_token: bool = False
    page: str = "/metrics"       # what `make up` points the user to


COMPONENTS: tuple[Component, ...] = (
    Component("twc-exporter", "exporters.twc", "twc", lambda c: c.wall_connectors.listen,
              "wall_connectors.listen", lambda c: c.wall_connectors.enabled),
    Component("fleet-exporter", "exporters.fleet", "fleet", lambda c: c.energy_site.listen,
              "energy_site.listen", lambda c: c.energy_site.enabled, needs_token=True),
    Component("vehicle-exporter", "exporters.vehicle", "vehicle", lambda c: c.vehicles.listen,
              "vehicles.listen", lambda c: c.vehicles.enabled, needs_token=True),
    Component("price-exporter", "exporters.price", "price", lambda c: c.price.listen, "price.listen",
              lambda c: True),
    Component("session-store", "session_store", "session_store", lambda c: c.sessions.listen, "sessions.listen",
              lambda c: True, page="/api/sessions"),
)


def wanted(config: Config, simulate: bool) -> list[Component]:
    """Components to run: enabled ones, except Tessie users when live mode has no token (said once)."""
    chosen = []
    for component in COMPONENTS:
        if not component.enabled(config):
            continue
        if component.needs_token and not simulate and config.secrets.tessie_access_token is None:
            print(f"charging-suite: not starting {component.name}: no TESSIE_ACCESS_TOKEN in .secrets or the "
                  "environment", file=sys.stderr)
            continue
        chosen.append(component)
    return chosen


def prometheus_config(config: Config, components: Sequence[tuple[Component, Listen]], rules: str) -> str:
    """The suite's prometheus.yml: one job per component, Prometheus and Alertmanager themselves."""
    targets = {component.job: [str(listen)] for component, listen in components}
    targets["prometheus"] = [str(config.prometheus.listen)]
    targets["alertmanager"] = [str(config.alertmanager.listen)]
    interval = config.prometheus.scrape_interval
    return render_prometheus_config(targets, scrape_interval=interval, evaluation_interval=interval,
                                    rule_files=[rules], alertmanagers=[str(config.alertmanager.listen)])


def reference_prometheus_config(config: Config) -> str:
    """What prometheus/prometheus.yml holds: every component at its configured address."""
    return prometheus_config(config, [(c, c.listen(config)) for c in COMPONENTS], "../rules/*.yml")


def compose_prometheus_config(config: Config) -> str:
    """What prometheus/compose.yml holds: the same jobs, each addressed by its Docker Compose service name
    (the component's name) at its configured port; rules where compose.yaml mounts them, beside the config."""
    targets = {c.job: [f"{c.name}:{c.listen(config).port}"] for c in COMPONENTS}
    targets["prometheus"] = [f"prometheus:{config.prometheus.listen.port}"]
    targets["alertmanager"] = [f"alertmanager:{config.alertmanager.listen.port}"]
    interval = config.prometheus.scrape_interval
    return render_prometheus_config(targets, scrape_interval=interval, evaluation_interval=interval,
                                    rule_files=["../rules/*.yml"],
                                    alertmanagers=[f"alertmanager:{config.alertmanager.listen.port}"])


def simulated(config: Config) -> bool:
    """No Tessie token and no Wall Connector configured: everything runs against the simulator."""
    return config.secrets.tessie_access_token is None and not config.wall_connectors.chargers


def _check_free(listen: Listen, key: str) -> None:
    if port_in_use(listen.host, listen.port):
        hint = " (the Debian prometheus service? sudo systemctl disable --now prometheus)" if listen.port == 9090 else ""
        raise ConfigError(f"{key}: {listen} is already in use{hint}, got a busy port; stop what listens "
                          f"there or set {key} to a free host:port")


class Suite:
    """Starts processes in dependency order and stops them in reverse; owns nothing else."""

    def __init__(self, config: Config, config_path: str | None, data_dir: Path,
                 secrets_path: str | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.secrets_path = secrets_path
        self.data_dir = data_dir
        self.logs = data_dir / "logs"
        self.run_dir = data_dir / "run"
        self.processes: list[ManagedProcess] = []
        # The session store queries the Prometheus this suite runs, wherever it listens.
        self.env: dict[str, str] = {"PROMETHEUS_URL": config.prometheus.listen.url}

    def _start(self, process: ManagedProcess, timeout: float = 30) -> ManagedProcess:
        self.processes.append(process.start())
        if process.ready_url:
            process.wait_ready(timeout)
        return process

    def _args(self) -> list[str]:
        args = ["--config", self.config_path] if self.config_path else []
        return args + (["--secrets", self.secrets_path] if self.secrets_path else [])

    def start_simulator(self) -> dict:
        sim = self.config.simulator
        scenario = sim.scenario or str(DEMO_SCENARIO)
        port_file = self.run_dir / "simulator.json"
        port_file.unlink(missing_ok=True)
        token = secrets.token_hex(16)
        self.env["TESSIE_ACCESS_TOKEN"] = token
        process = component_process(
            "charging-sim", "simulator",
            ["--scenario", scenario, "--listen", str(sim.listen), "--charger-port-base", str(sim.charger_port_base),
             "--speed", f"{sim.speed:g}", "--port-file", str(port_file)],
            log_path=self.logs / "charging-sim.log", env=self.env, ready_url=f"{sim.listen.url}/sim/clock")
        self._start(process)
        ports = json.loads(port_file.read_text())
        self.env.update({
            "TWC_CHARGERS": ",".join(f"{name}:{url.split('://', 1)[1]}" for name, url in ports["chargers"].items()),
            "TESSIE_BASE_URL": ports["url"], "COMED_BASE_URL": ports["url"],
        })
        return ports

    def start_components(self, components: list[Component]) -> list[tuple[Component, Listen]]:
        started = []
        for component in components:
            listen = component.listen(self.config)
            process = component_process(component.name, component.module, [*self._args(), "--listen", str(listen)],
                                        log_path=self.logs / f"{component.name}.log", env=self.env,
                                        ready_url=f"{listen.url}/-/healthy")
            self._start(process)
            started.append((component, listen))
        return started

    def start_alertmanager(self) -> str:
        listen = self.config.alertmanager.listen
        config_file = write_alertmanager_config(self.config, self.run_dir / "alertmanager.yml")
        self._start(alertmanager_process(config_file, self.data_dir / "alertmanager", listen.host, listen.port,
                                         log_path=self.logs / "alertmanager.log"))
        return listen.url

    def backfill_prices(self) -> None:
        """Write the price history into the TSDB before Prometheus starts; a failure only warns."""
        process = component_process(
            "price-backfill", "exporters.price_backfill",
            [*self._args(), "--data-dir", str(self.data_dir / "prometheus"), "--instance", str(self.config.price.listen),
             "--state", str(self.run_dir / "price-backfill.json"),
             # The newest price is left to the live exporter: a block holding it would make Prometheus
             # drop the scraped sample as too old (and warn on every scrape until the next price).
             "--until", f"{time.time() - 240:.0f}"],
            log_path=self.logs / "price-backfill.log", env=self.env).start()
        if process.process.wait(300) != 0:
            print(f"charging-suite: price backfill failed (see {self.logs}/price-backfill.log); percentiles will "
                  "build up from live prices", file=sys.stderr)

    def start_prometheus(self, components: list[tuple[Component, Listen]]) -> str:
        settings = self.config.prometheus
        config_file = self.run_dir / "prometheus.yml"
        config_file.write_text(prometheus_config(self.config, components, str(ROOT / "rules" / "*.yml")))
        retention = f"{int(settings.retention)}s"
        self._start(prometheus_process(config_file, self.data_dir / "prometheus", settings.listen.host,
                                       settings.listen.port, retention=retention,
                                       log_path=self.logs / "prometheus.log"), timeout=60)
        return settings.listen.url

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def first_dead(self) -> ManagedProcess | None:
        return next((p for p in self.processes if not p.running), None)


def up(config: Config, config_path: str | None, stop: threading.Event, out=sys.stdout,
       secrets_path: str | None = None) -> int:
    data_dir = Path(config.general.data_dir)
    suite = Suite(config, config_path, data_dir, secrets_path)
    suite.logs.mkdir(parents=True, exist_ok=True)
    suite.run_dir.mkdir(parents=True, exist_ok=True)
    simulate = simulated(config)
    checks = [(config.prometheus.listen, "prometheus.listen"), (config.alertmanager.listen, "alertmanager.listen")]
    components = wanted(config, simulate)
    checks += [(c.listen(config), c.listen_key) for c in components]
    if simulate:
        checks.append((config.simulator.listen, "simulator.listen"))
    for listen, key in checks:
        _check_free(listen, key)
    simulator_line = []
    try:
        if simulate:
            ports = suite.start_simulator()
            simulator_line = [("charging-sim", ports["url"] + "/sim/state", "simulated Wall Connectors, Tessie, ComEd")]
        started = suite.start_components(components)
        alertmanager = suite.start_alertmanager()
        if any(c.job == "price" for c, _ in started):
            suite.backfill_prices()
        prometheus = suite.start_prometheus(started)
    except (StartupError, TimeoutError, OSError) as error:
        print(f"charging-suite: start-up failed: {error}", file=sys.stderr)
        suite.stop()
        return 1
    lines = [("Prometheus", prometheus, "queries, targets, alerts"), ("Alertmanager", alertmanager, "notifications"),
             *[(c.name, f"{listen.url}{c.page}", f"job={c.job}") for c, listen in started], *simulator_line]
    mode = "simulated upstreams (no credentials configured)" if simulate else "live upstreams"
    print(f"charging suite is up with {mode}:", file=out)
    for name, url, what in lines:
        print(f"  {name:<16} {url:<40} {what}", file=out)
    print(f"  logs and data in {data_dir}/; press Ctrl-C to stop.", file=out, flush=True)
    status = 0
    while not stop.wait(1.0):
        dead = suite.first_dead()
        if dead:
            print(f"charging-suite: {dead.name} exited with status {dead.process.returncode}; stopping "
                  f"everything (see {suite.logs}/{dead.name}.log)", file=sys.stderr)
            status = 1
            break
    print("charging-suite: stopping", file=out, flush=True)
    suite.stop()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="charging-suite", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="run the whole suite until Ctrl-C or SIGTERM")
    up_parser.add_argument("--config", default=os.environ.get("CHARGING_CONFIG"),
                           help="YAML configuration (default $CHARGING_CONFIG, else config.yaml when present)")
    up_parser.add_argument("--secrets", default=None, help="KEY=VALUE secrets file (default ./.secrets when present)")
    am_parser = commands.add_parser("alertmanager-config",
                                    help="print Alertmanager's configuration rendered from the settings")
    am_parser.add_argument("--config", default=os.environ.get("CHARGING_CONFIG"), help="YAML configuration")
    am_parser.add_argument("--secrets", default=None, help="KEY=VALUE secrets file (default ./.secrets when present)")
    am_parser.add_argument("--output", help="write to this file (mode 0600) instead of standard output")
    prom_parser = commands.add_parser("prometheus-config",
                                      help="print the reference prometheus.yml for the configured addresses")
    prom_parser.add_argument("--config", default=os.environ.get("CHARGING_CONFIG"), help="YAML configuration")
    prom_parser.add_argument("--secrets", default=None, help="KEY=VALUE secrets file")
    prom_parser.add_argument("--compose", action="store_true",
                             help="address the components by their Docker Compose service names "
                                  "(what prometheus/compose.yml holds)")
    args = parser.parse_args(argv)
    config_path = args.config or ("config.yaml" if Path("config.yaml").is_file() else None)
    try:
        config = load_files(config_path, args.secrets, os.environ)
        if args.command == "prometheus-config":
            render = compose_prometheus_config if args.compose else reference_prometheus_config
            print(render(config), end="")
            return 0
        if args.command == "alertmanager-config":
            if args.output:
                write_alertmanager_config(config, Path(args.output))
            else:
                print(render_alertmanager_config(config), end="")
            return 0
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        return up(config, config_path, stop, secrets_path=args.secrets)
    except ConfigError as error:
        print(f"charging-suite: configuration error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
