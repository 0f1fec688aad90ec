"""charging-suite: run the whole local suite (what `make up` calls).

Simulator (when no credentials are configured), exporters, Prometheus and Alertmanager, all on
loopback; prints where everything is; Ctrl-C, SIGTERM or SIGHUP (the terminal closed) stops everything
in reverse order, and every child dies with the suite should it die otherwise.

The demo (the simulator, when no Wall Connector or token is configured) and live mode (real equipment)
never share state: each keeps its Prometheus data, session store, Alertmanager state, run files and logs
in its own directory, <general.data_dir>/demo or <general.data_dir>/live, which records its mode.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from servicekit.config import Config, ConfigError, Listen, default_config_path, load_files
from suite.processes import (
    ManagedProcess, StartupError, alertmanager_process, component_process, listener, port_in_use, prometheus_process,
    victoria_metrics_process, vmagent_process, vmalert_process,
)
from suite import grafana_provisioning
from suite.alertmanager_config import render_alertmanager_config, write_alertmanager_config
from suite.prometheus_config import render_prometheus_config, render_vmagent_config

ROOT = Path(__file__).resolve().parent.parent
DEMO_SCENARIO = ROOT / "simulator" / "scenarios" / "demo.yaml"
SECOND_HOME_SCENARIO = ROOT / "simulator" / "scenarios" / "second-home.yaml"   # the demo's other sites


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
              lambda c: True, page="/"),
    # after the session store, whose SQLite file (and its migrations) it shares
    Component("charging-meter", "meter", "meter", lambda c: c.meter.listen, "meter.listen", lambda c: c.meter.enabled),
)
STORES = ("session_store", "meter")     # started last, in this order: they read what the exporters produce
DEMO_METER_LOGIN = "demo@example.com\ndemo-password\n123456\n"   # the simulator's defaults (scenario `meter:`)


def wanted(config: Config, simulate: bool, quiet: bool = False) -> list[Component]:
    """Components to run for one site: enabled ones, except Tessie users when live mode has no token (said
    once), and the suite-wide meter with the first site only."""
    chosen = []
    for component in COMPONENTS:
        if not component.enabled(config) or (component.job == "meter" and config.site_index):
            continue
        if component.needs_token and not simulate and config.secrets.tessie_access_token is None:
            if not quiet:
                print(f"charging-suite: not starting {component.name}: no TESSIE_ACCESS_TOKEN in .secrets or the "
                      "environment", file=sys.stderr)
            continue
        chosen.append(component)
    return chosen


Scrape = tuple[Component, Listen, str]   # a component Prometheus scrapes: where it listens, for which site


def every_component(sites: Sequence[Config]) -> list[Scrape]:
    """Every component of every site at its configured address (the suite-wide meter with the first)."""
    return [(c, c.listen(site), site.site) for site in sites for c in COMPONENTS
            if not (c.job == "meter" and site.site_index)]


def _targets(scraped: Sequence[Scrape]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Job -> addresses, and address -> site."""
    targets: dict[str, list[str]] = {}
    for component, listen, _ in scraped:
        targets.setdefault(component.job, []).append(str(listen))
    return targets, {str(listen): site for _, listen, site in scraped}


def prometheus_config(config: Config, scraped: Sequence[Scrape], rules: str) -> str:
    """The suite's prometheus.yml: one job per component (a target per site), Prometheus and Alertmanager."""
    targets, sites = _targets(scraped)
    targets["prometheus"] = [str(config.prometheus.listen)]
    targets["alertmanager"] = [str(config.alertmanager.listen)]
    interval = config.prometheus.scrape_interval
    return render_prometheus_config(targets, scrape_interval=interval, evaluation_interval=interval,
                                    rule_files=[rules], alertmanagers=[str(config.alertmanager.listen)], sites=sites)


def vmagent_targets(config: Config, compose: bool = False) -> dict[str, list[str]]:
    """The jobs vmagent scrapes besides the components: VictoriaMetrics, vmagent and vmalert in place of
    Prometheus, and Alertmanager; at their configured addresses, or by Compose service name (each named
    as its job) at their configured ports."""
    vm = config.victoriametrics
    listens = {"victoriametrics": vm.listen, "vmagent": vm.vmagent_listen, "vmalert": vm.vmalert_listen,
               "alertmanager": config.alertmanager.listen}
    return {job: [f"{job}:{listen.port}" if compose else str(listen)] for job, listen in listens.items()}


def vmagent_config(config: Config, scraped: Sequence[Scrape]) -> str:
    """vmagent's scrape configuration: the same jobs as Prometheus's."""
    targets, sites = _targets(scraped)
    return render_vmagent_config({**targets, **vmagent_targets(config)},
                                 scrape_interval=config.prometheus.scrape_interval, sites=sites)


def reference_vmagent_config(config: Config, sites: Sequence[Config] = ()) -> str:
    """What victoriametrics/scrape.yml holds: every component at its configured address."""
    return vmagent_config(config, every_component(sites or [config]))


def reference_prometheus_config(config: Config, sites: Sequence[Config] = ()) -> str:
    """What prometheus/prometheus.yml holds: every component at its configured address."""
    return prometheus_config(config, every_component(sites or [config]), "../rules/*.yml")


def compose_targets(config: Config) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Every component's job, addressed by its Docker Compose service name at its configured port (one site)."""
    targets = {c.job: [f"{c.name}:{c.listen(config).port}"] for c in COMPONENTS}
    return targets, {address: config.site for addresses in targets.values() for address in addresses}


def compose_vmagent_config(config: Config) -> str:
    """What victoriametrics/compose-scrape.yml holds (compose.victoriametrics.yaml)."""
    targets, sites = compose_targets(config)
    return render_vmagent_config({**targets, **vmagent_targets(config, compose=True)},
                                 scrape_interval=config.prometheus.scrape_interval, sites=sites)


def compose_prometheus_config(config: Config) -> str:
    """What prometheus/compose.yml holds: the same jobs, each addressed by its Docker Compose service name
    (the component's name) at its configured port; rules where compose.yaml mounts them, beside the config."""
    targets, sites = compose_targets(config)
    targets["prometheus"] = [f"prometheus:{config.prometheus.listen.port}"]
    targets["alertmanager"] = [f"alertmanager:{config.alertmanager.listen.port}"]
    interval = config.prometheus.scrape_interval
    return render_prometheus_config(targets, scrape_interval=interval, evaluation_interval=interval,
                                    rule_files=["../rules/*.yml"],
                                    alertmanagers=[f"alertmanager:{config.alertmanager.listen.port}"], sites=sites)


def all_sites(config: Config, config_path: str | None, secrets_path: str | None) -> list[Config]:
    """The configuration of every site, in the order of sites: (`config` is one of them)."""
    return [config if site == config.site else load_files(config_path, secrets_path, os.environ, site)
            for site in config.sites]


def simulated(config: Config, sites: Sequence[Config] = ()) -> bool:
    """No Tessie token and no Wall Connector configured (at any site): everything runs against the simulator."""
    return not any(site.secrets.tessie_access_token or site.wall_connectors.chargers for site in (sites or [config]))


DEMO, LIVE = "demo", "live"
MODE_FILE = "MODE"                 # in each mode's directory: which mode wrote it
PID_FILE = "charging-suite.pid"    # in general.data_dir: the running suite, whichever its mode
LEGACY = ("prometheus", "alertmanager", "session_store.sqlite3", "run")   # the layout before the mode directories
OUR_COMMANDS = (" -m exporters.", " -m session_store", " -m simulator", "/twc-exporter ", "/fleet-exporter ",
                "/vehicle-exporter ", "/price-exporter ", "/session-store ", "/charging-sim ")


class CannotStart(RuntimeError):
    """Something outside the configuration prevents starting (a running suite, a busy port, a data
    directory of the other mode): one line saying what and what to do, exit status 1."""


def mode_of(config: Config) -> str:
    return DEMO if simulated(config) else LIVE


def check_mode_dir(directory: Path, mode: str) -> None:
    """Refuse a directory (or one inside it) that another mode's suite wrote."""
    for candidate in (directory, *directory.parents):
        marker = candidate / MODE_FILE
        try:
            recorded = marker.read_text().strip()
        except OSError:
            continue
        if recorded != mode:
            raise CannotStart(f"{directory} belongs to the {recorded} suite ({marker} says {recorded!r}) but this "
                              f"is the {mode} suite; the two never share state: point general.data_dir (or "
                              f"sessions.database) elsewhere")


def running_suite(pid_file: Path) -> int | None:
    """The pid recorded in `pid_file` when that process still runs and is a charging suite."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid == os.getpid() or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    if _state(pid) == "Z":
        return None                      # exited, not yet reaped
    command = _command_line(pid)
    return pid if not command or _is_suite(command) else None   # else the pid was reused


def _is_suite(command: str) -> bool:
    return "charging-suite" in command or " -m suite" in f" {command}"


def _command_line(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _check_free(listen: Listen, key: str, data_dir: Path) -> None:
    """A busy port stops start-up with what holds it: a running suite, a leftover of one, or another program."""
    if not port_in_use(listen.host, listen.port):
        return
    holder = listener(listen.host, listen.port)
    fix = f"or set {key} to a free host:port"
    if holder is None:
        hint = (" (the Debian prometheus service? sudo systemctl disable --now prometheus)"
                if listen.port == 9090 else "")
        raise CannotStart(f"{key}: {listen} is already in use{hint}; stop what listens there {fix}")
    pid, command = holder
    parent = _parent(pid)
    parent_command = _command_line(parent) if parent and parent > 1 else None
    if parent_command and _is_suite(parent_command):
        raise CannotStart(f"a charging suite is already running (pid {parent}; it holds {listen}, {key}); use it, "
                          f"or stop it with Ctrl-C in its terminal or kill {parent}")
    ours = any(m in f" {command} " for m in OUR_COMMANDS) or any(
        f"{separator}{path}/" in command for separator in "= " for path in {str(data_dir), str(data_dir.resolve())})
    if ours:
        raise CannotStart(f"{key}: {listen} is held by pid {pid} ({_short(command)}), left over from an earlier "
                          f"charging suite; stop it with kill {pid}, then run make up again")
    hint = " (the Debian prometheus service? sudo systemctl disable --now prometheus)" \
        if listen.port == 9090 and "prometheus" in command else ""
    raise CannotStart(f"{key}: {listen} is already in use by pid {pid} ({_short(command)}){hint}; stop it {fix}")


def _short(command: str, limit: int = 100) -> str:
    command = " ".join(command.split())
    return command if len(command) <= limit else command[:limit - 3] + "..."


def say(text: str, out=None) -> None:
    """Print, but never fail: after SIGHUP the terminal is gone and writing to it raises EIO, which must
    not keep the suite from stopping its children."""
    try:
        print(text, file=out or sys.stdout, flush=True)
    except (OSError, ValueError):
        pass


@dataclass
class SiteRun:
    """One site's share of the suite: its configuration and its children's environment. The first site keeps
    the names and files of a single-home suite, so adding sites changes nothing for it."""

    config: Config
    env: dict[str, str]

    @property
    def name(self) -> str:
        return self.config.site

    @property
    def first(self) -> bool:
        return self.config.site_index == 0

    def tag(self, name: str) -> str:
        """A process's name and log file: the single home's for the first site, else with the site's name."""
        return name if self.first else f"{name}-{self.name}"


class Suite:
    """Starts processes in dependency order and stops them in reverse; owns nothing else."""

    def __init__(self, config: Config, config_path: str | None, data_dir: Path,
                 secrets_path: str | None = None, mode: str = LIVE) -> None:
        self.config = config
        self.config_path = config_path
        self.secrets_path = secrets_path
        self.mode = mode
        self.data_dir = data_dir          # this mode's directory: <general.data_dir>/<mode>
        self.logs = data_dir / "logs"
        self.run_dir = data_dir / "run"
        self.processes: list[ManagedProcess] = []
        # The session store queries the Prometheus this suite runs, wherever it listens; every default
        # path of every child (the SQLite file, the backfill's TSDB) lies in this mode's directory.
        self.env: dict[str, str] = {"PROMETHEUS_URL": config.query_listen.url, "CHARGING_DATA_DIR": str(data_dir)}
        if config.on_victoria_metrics:   # history imports go to the VictoriaMetrics it runs too
            self.env["METRICS_IMPORT_URL"] = config.query_listen.url
        if mode != DEMO:   # the login `charging-meter --setup` stores, run from a shell (general.data_dir, not var/live)
            self.env["METER_CREDENTIAL_FILE"] = str(Path(config.meter.credential_file).resolve())
        self.sites = [self._site(name) for name in config.sites]

    def _site(self, name: str) -> SiteRun:
        env = {**self.env, "CHARGING_SITE": name}
        config = self.config if name == self.config.site else self._load(env)
        if self.mode == DEMO:   # the demo never writes a configured database: that one is for real equipment
            directory = self.data_dir if config.site_index == 0 else self.data_dir / "sites" / name
            env["SESSION_STORE_DB"] = str(directory / "session_store.sqlite3")
        return SiteRun(config, env)

    def _load(self, env: dict[str, str]) -> Config:
        """The configuration a child with this environment sees."""
        return load_files(self.config_path, self.secrets_path, {**os.environ, **env})

    def database(self, site: SiteRun | None = None) -> Path:
        """A site's (default: the first's) session-store SQLite file as its child will see it."""
        return Path(self._load((site or self.sites[0]).env).sessions.database)

    def _start(self, process: ManagedProcess, timeout: float = 30) -> ManagedProcess:
        self.processes.append(process.start())
        if process.ready_url:
            process.wait_ready(timeout)
        return process

    def _args(self) -> list[str]:
        args = ["--config", self.config_path] if self.config_path else []
        return args + (["--secrets", self.secrets_path] if self.secrets_path else [])

    def start_simulator(self, site: SiteRun) -> dict:
        """A simulator per site, each with its own scenario (the first site the bundled demo, the others
        a second home with its own cars, chargers and price zone), listening at the site's addresses."""
        sim = site.config.simulator
        scenario = sim.scenario or str(DEMO_SCENARIO if site.first else SECOND_HOME_SCENARIO)
        port_file = self.run_dir / f"{site.tag('simulator')}.json"
        port_file.unlink(missing_ok=True)
        token = secrets.token_hex(16)
        site.env["TESSIE_ACCESS_TOKEN"] = token
        process = component_process(
            site.tag("charging-sim"), "simulator",
            ["--scenario", scenario, "--listen", str(sim.listen), "--charger-port-base", str(sim.charger_port_base),
             "--speed", f"{sim.speed:g}", "--port-file", str(port_file)],
            log_path=self.logs / f"{site.tag('charging-sim')}.log", env=site.env, ready_url=f"{sim.listen.url}/sim/clock")
        self._start(process)
        ports = json.loads(port_file.read_text())
        site.env.update({
            "TWC_CHARGERS": ",".join(f"{name}:{url.split('://', 1)[1]}" for name, url in ports["chargers"].items()),
            "TESSIE_BASE_URL": ports["url"], "COMED_BASE_URL": ports["url"], "METER_BASE_URL": ports["url"],
        })
        if ports.get("home") and site.config.vehicles.home_latitude is None:   # the cars' distance from home
            site.env["HOME_LATITUDE"], site.env["HOME_LONGITUDE"] = (str(x) for x in ports["home"])
        if ports.get("dins"):   # Fleet units called by the scenario's charger names, as twc_* `charger` labels
            site.env["WALL_CONNECTOR_NAMES"] = ",".join(f"{din}:{name}" for name, din in ports["dins"].items())
        return ports

    def start_components(self, components: Sequence[Component], site: SiteRun) -> list[Scrape]:
        started = []
        for component in components:
            listen = component.listen(site.config)
            process = component_process(site.tag(component.name), component.module,
                                        [*self._args(), "--listen", str(listen)],
                                        log_path=self.logs / f"{site.tag(component.name)}.log", env=site.env,
                                        ready_url=f"{listen.url}/-/healthy")
            self._start(process)
            started.append((component, listen, site.name))
        return started

    def demo_meter_login(self) -> None:
        """The demo's utility login: the simulator's portal with its demo user and MFA code, through the same
        `charging-meter --setup` a user runs (skipped when a login is stored already). The meter is the
        suite's (the first site's home)."""
        site = self.sites[0]
        config = self._load(site.env)
        if not config.meter.enabled or Path(config.meter.credential_file).exists():
            return
        process = component_process("charging-meter", "meter", [*self._args(), "--setup"],
                                    log_path=self.logs / "charging-meter-setup.log", env=site.env)
        try:
            result = subprocess.run(process.command, input=DEMO_METER_LOGIN, capture_output=True, text=True,
                                    env=dict(process.env or {}), timeout=60)
        except subprocess.TimeoutExpired:
            result = None
        if result is None or result.returncode != 0:
            say(f"charging-suite: the demo's utility login failed; meter data stays empty "
                f"({(result.stderr.strip().splitlines() or ['timeout'])[-1] if result else 'timeout'})", sys.stderr)

    def start_alertmanager(self) -> str:
        listen = self.config.alertmanager.listen
        config_file = write_alertmanager_config(self.config, self.run_dir / "alertmanager.yml")
        self._start(alertmanager_process(config_file, self.data_dir / "alertmanager", listen.host, listen.port,
                                         log_path=self.logs / "alertmanager.log"))
        return listen.url

    def backfill_prices(self, site: SiteRun) -> None:
        """Write a site's price history into this mode's TSDB before Prometheus starts (or import it into
        VictoriaMetrics), labelled with the site; a failure only warns."""
        name = site.tag("price-backfill")
        process = component_process(
            name, "exporters.price_backfill",
            [*self._args(), "--data-dir", str(self.data_dir / "prometheus"),
             "--instance", str(site.config.price.listen), "--state", str(self.run_dir / f"{name}.json"),
             "--mode", self.mode,
             # The newest price is left to the live exporter: a block holding it would make Prometheus
             # drop the scraped sample as too old (and warn on every scrape until the next price).
             "--until", f"{time.time() - 240:.0f}"],
            log_path=self.logs / f"{name}.log", env=site.env).start()
        self.processes.append(process)   # stopped with the rest should the suite be stopped meanwhile
        try:
            status = process.process.wait(300)
        except subprocess.TimeoutExpired:
            process.stop()
            status = None
        self.processes.remove(process)
        if status != 0:
            say(f"charging-suite: price backfill failed (see {self.logs}/{name}.log); percentiles will "
                "build up from live prices", sys.stderr)

    def start_prometheus(self, scraped: Sequence[Scrape]) -> str:
        settings = self.config.prometheus
        config_file = self.run_dir / "prometheus.yml"
        config_file.write_text(prometheus_config(self.config, scraped, str(ROOT / "rules" / "*.yml")))
        retention = f"{int(settings.retention)}s"
        self._start(prometheus_process(config_file, self.data_dir / "prometheus", settings.listen.host,
                                       settings.listen.port, retention=retention,
                                       log_path=self.logs / "prometheus.log"), timeout=60)
        return settings.listen.url

    def start_victoria_metrics(self, scraped: Sequence[Scrape]) -> str:
        """VictoriaMetrics, then vmagent scraping every job into it (rules come with vmalert, once
        Alertmanager runs)."""
        vm = self.config.victoriametrics
        retention = f"{max(24, int(self.config.prometheus.retention // 3600))}h"
        self._start(victoria_metrics_process(self.data_dir / "victoriametrics", vm.listen.host, vm.listen.port,
                                             retention=retention, log_path=self.logs / "victoria-metrics.log"),
                    timeout=60)
        config_file = self.run_dir / "vmagent.yml"
        config_file.write_text(vmagent_config(self.config, scraped))
        self._start(vmagent_process(config_file, self.data_dir / "vmagent", vm.vmagent_listen.host,
                                    vm.vmagent_listen.port, vm.listen.url, log_path=self.logs / "vmagent.log"))
        return vm.listen.url

    def start_vmalert(self) -> str:
        vm = self.config.victoriametrics
        self._start(vmalert_process([str(ROOT / "rules" / "*.yml")], vm.listen.url,
                                    [self.config.alertmanager.listen.url], vm.vmalert_listen.host,
                                    vm.vmalert_listen.port, interval=self.config.prometheus.scrape_interval,
                                    log_path=self.logs / "vmalert.log"))
        return vm.vmalert_listen.url

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def first_dead(self) -> ManagedProcess | None:
        return next((p for p in self.processes if not p.running), None)


def legacy_note(base: Path, database: Path) -> str | None:
    """Data an earlier version kept directly in general.data_dir, shared by the demo and live runs (the
    database in use, when sessions.database names that file, is not mentioned)."""
    found = [name for name in LEGACY if (base / name).exists() and base / name != database]
    if not any(n in found for n in ("prometheus", "session_store.sqlite3")):
        return None
    paths = " ".join(str(base / name) + ("*" if name.endswith(".sqlite3") else "") for name in found)
    if (base / "run" / "simulator.json").exists():
        return (f"charging-suite: note: {paths} hold the demo's simulated data from an earlier version (which "
                f"shared them with real equipment); no longer used, delete them: rm -r {paths}")
    return (f"charging-suite: note: {paths} are from an earlier version and no longer used; if they hold your "
            f"real equipment's data, stop the suite and move them: mkdir -p {base / LIVE} && mv {paths} "
            f"{base / LIVE}/")


def up(config: Config, config_path: str | None, stop: threading.Event, out=sys.stdout,
       secrets_path: str | None = None) -> int:
    base = Path(config.general.data_dir)
    simulate = simulated(config, all_sites(config, config_path, secrets_path))
    mode = DEMO if simulate else LIVE
    mode_dir = base / mode
    suite = Suite(config, config_path, mode_dir, secrets_path, mode)
    pid_file = base / PID_FILE
    try:
        running = running_suite(pid_file)
        if running:
            raise CannotStart(f"a charging suite is already running (pid {running}); use it, or stop it with "
                              f"Ctrl-C in its terminal or kill {running}")
        check_mode_dir(mode_dir, mode)
        database = suite.database()
        for site in suite.sites:
            check_mode_dir(suite.database(site).parent, mode)
        if config.on_victoria_metrics:
            vm = config.victoriametrics
            checks = [(vm.listen, "victoriametrics.listen"), (vm.vmagent_listen, "victoriametrics.vmagent_listen"),
                      (vm.vmalert_listen, "victoriametrics.vmalert_listen")]
        else:
            checks = [(config.prometheus.listen, "prometheus.listen")]
        checks.append((config.alertmanager.listen, "alertmanager.listen"))
        components = {site.name: wanted(site.config, simulate, quiet=not site.first) for site in suite.sites}
        for site in suite.sites:
            where = "" if site.first else f" (site {site.name})"
            checks += [(c.listen(site.config), c.listen_key + where) for c in components[site.name]]
            if simulate:
                checks.append((site.config.simulator.listen, "simulator.listen" + where))
        for listen, key in checks:
            _check_free(listen, key, base)
    except CannotStart as error:
        say(f"charging-suite: cannot start: {error}", sys.stderr)
        return 1
    note = legacy_note(base, database)
    if note:
        say(note, sys.stderr)
    if mode == LIVE and database == base / "session_store.sqlite3" and (base / "run" / "simulator.json").exists():
        say(f"charging-suite: warning: sessions.database is {database}, the file earlier versions shared with the "
            f"demo; remove the sessions.database line from {config_path or 'the configuration'} to keep the "
            f"sessions in {mode_dir}/", sys.stderr)
    suite.logs.mkdir(parents=True, exist_ok=True)
    suite.run_dir.mkdir(parents=True, exist_ok=True)
    (mode_dir / MODE_FILE).write_text(mode + "\n")
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        return _run(suite, config, config_path, components, simulate, stop, out)
    finally:
        suite.stop()
        if running_suite(pid_file) is None and _own_pid_file(pid_file):
            pid_file.unlink(missing_ok=True)


def _own_pid_file(pid_file: Path) -> bool:
    try:
        return int(pid_file.read_text().split()[0]) == os.getpid()
    except (OSError, ValueError, IndexError):
        return False


def _run(suite: Suite, config: Config, config_path: str | None, components: dict[str, list[Component]],
         simulate: bool, stop: threading.Event, out) -> int:
    """Start in dependency order: the simulators (the upstreams), the price backfills (before Prometheus
    opens the TSDB), Prometheus, Alertmanager (Prometheus sends it alerts), every site's exporters (scraped
    from their first poll), and last the session stores (they query Prometheus from their first second)."""
    simulator_lines = []
    scraped = [(c, c.listen(site.config), site.name) for site in suite.sites for c in components[site.name]]
    steps: list[Callable[[], object]] = []

    def each_site(start: Callable[[SiteRun], object], when: Callable[[SiteRun], bool] = lambda site: True) -> None:
        steps.extend(lambda site=site: start(site) for site in suite.sites if when(site))

    def has(job: str) -> Callable[[SiteRun], bool]:
        return lambda site: any(c.job == job for c in components[site.name])

    try:
        if simulate:
            each_site(lambda site: simulator_lines.append(
                (site.tag("charging-sim"), suite.start_simulator(site)["url"] + "/",
                 "simulated Wall Connectors, Tessie, ComEd" + ("" if site.first else f" of site {site.name}"))))
            if has("meter")(suite.sites[0]):
                steps.append(suite.demo_meter_login)
        prometheus, alertmanager, started, rules = [], [], [], []
        if config.on_victoria_metrics:   # the backfill imports into the running VictoriaMetrics
            steps.append(lambda: prometheus.append(suite.start_victoria_metrics(scraped)))
            each_site(suite.backfill_prices, has("price"))
            steps += [lambda: alertmanager.append(suite.start_alertmanager()),
                      lambda: rules.append(suite.start_vmalert())]
        else:                          # the backfill writes blocks Prometheus opens at start-up
            each_site(suite.backfill_prices, has("price"))
            steps += [lambda: prometheus.append(suite.start_prometheus(scraped)),
                      lambda: alertmanager.append(suite.start_alertmanager())]
        each_site(lambda site: started.extend(
            suite.start_components([c for c in components[site.name] if c.job not in STORES], site)))
        each_site(lambda site: started.extend(
            suite.start_components([c for c in components[site.name] if c.job in STORES], site)))
        for step in steps:
            if stop.is_set():
                say("charging-suite: stopping", out)
                return 0
            step()
    except (StartupError, TimeoutError, OSError) as error:
        say(f"charging-suite: start-up failed: {error}", sys.stderr)
        return 1
    if config.on_victoria_metrics:
        vm = config.victoriametrics
        engine = [("VictoriaMetrics", f"{prometheus[0]}/vmui/", "queries (the Prometheus API at /)"),
                  ("vmagent", f"{vm.vmagent_listen.url}/targets", "scrape targets"),
                  ("vmalert", f"{rules[0]}/", "rules and alerts")]
    else:
        engine = [("Prometheus", prometheus[0], "queries, targets, alerts")]
    tags = {site.name: site.tag for site in suite.sites}
    lines = [*engine, ("Alertmanager", alertmanager[0], "notifications"),
             *[(tags[site](c.name), f"{listen.url}{c.page}", f"job={c.job}" + (f" site={site}" if len(tags) > 1 else ""))
               for c, listen, site in started], *simulator_lines]
    if simulate:
        what = ("the demo: simulated upstreams (no Wall Connector or Tessie token configured; to use your "
                "equipment see config.example.yaml)")
    else:
        what = "live upstreams"
    say(f"charging suite is up with {what}:", out)
    for name, url, about in lines:
        say(f"  {name:<24} {url:<40} {about}", out)
    source = f"configuration {config_path}" if config_path else "no configuration file"
    say(f"  {source}; logs and data in {suite.data_dir}/; press Ctrl-C to stop.", out)
    status = 0
    while not stop.wait(1.0):
        dead = suite.first_dead()
        if dead:
            say(f"charging-suite: {dead.name} exited with status {dead.process.returncode}; stopping "
                f"everything (see {suite.logs}/{dead.name}.log)", sys.stderr)
            status = 1
            break
    say("charging-suite: stopping", out)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="charging-suite", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    default_config = default_config_path()
    up_parser = commands.add_parser("up", help="run the whole suite until Ctrl-C, SIGTERM or SIGHUP")
    up_parser.add_argument("--config", default=default_config,
                           help="YAML configuration (default $CHARGING_CONFIG, else config.yaml when present)")
    up_parser.add_argument("--secrets", default=None, help="KEY=VALUE secrets file (default ./.secrets when present)")
    am_parser = commands.add_parser("alertmanager-config",
                                    help="print Alertmanager's configuration rendered from the settings")
    am_parser.add_argument("--config", default=default_config, help="YAML configuration")
    am_parser.add_argument("--secrets", default=None, help="KEY=VALUE secrets file (default ./.secrets when present)")
    am_parser.add_argument("--output", help="write to this file (mode 0600) instead of standard output")
    prom_parser = commands.add_parser("prometheus-config",
                                      help="print the reference prometheus.yml for the configured addresses")
    prom_parser.add_argument("--config", default=default_config, help="YAML configuration")
    prom_parser.add_argument("--secrets", default=None, help="KEY=VALUE secrets file")
    prom_parser.add_argument("--compose", action="store_true",
                             help="address the components by their Docker Compose service names "
                                  "(what prometheus/compose.yml holds)")
    prom_parser.add_argument("--vmagent", action="store_true",
                             help="vmagent's scrape configuration instead, for prometheus.engine: victoriametrics "
                                  "(what victoriametrics/scrape.yml holds; with --compose, compose-scrape.yml)")
    grafana_parser = commands.add_parser("grafana-provisioning",
                                         help="write Grafana datasources and dashboards for the suite `make up` runs")
    grafana_parser.add_argument("--config", default=default_config, help="YAML configuration")
    grafana_parser.add_argument("--secrets", default=None, help="KEY=VALUE secrets file")
    grafana_parser.add_argument("--output", default="grafana-provisioning",
                                help="directory to write (default ./grafana-provisioning)")
    args = parser.parse_args(argv)
    config_path = args.config
    try:
        config = load_files(config_path, args.secrets, os.environ)
        if args.command == "prometheus-config":
            render = {(False, False): reference_prometheus_config, (True, False): compose_prometheus_config,
                      (False, True): reference_vmagent_config, (True, True): compose_vmagent_config}[
                args.compose, args.vmagent]
            print(render(config, all_sites(config, config_path, args.secrets)) if not args.compose
                  else render(config), end="")
            return 0
        if args.command == "grafana-provisioning":
            steps = grafana_provisioning.write(config, Path(args.output), all_sites(config, config_path, args.secrets))
            print(f"Grafana provisioning written to {args.output}/ (datasources at the configured addresses, "
                  "the dashboards of this checkout). Then:", *steps, sep="\n  ")
            return 0
        if args.command == "alertmanager-config":
            if args.output:
                write_alertmanager_config(config, Path(args.output))
            else:
                print(render_alertmanager_config(config), end="")
            return 0
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):   # SIGHUP: the terminal was closed
            signal.signal(signum, lambda *_: stop.set())
        return up(config, config_path, stop, secrets_path=args.secrets)
    except ConfigError as error:
        say(f"charging-suite: configuration error: {error}", sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
