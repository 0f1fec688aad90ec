"""Starting the real processes (the simulator, our components, Prometheus, Alertmanager) on free
loopback ports, with their configuration, data and logs in one directory, and stopping them all.

One harness for the pytest fixtures (tests/conftest.py), the security tests' shared stack and the
benchmarks, so each starts the same binaries the same way (`python -m <module>` with this
interpreter, the installed Prometheus and Alertmanager, through `suite.processes`) with the same
clean environment (testkit.env). `close()` stops every process (SIGTERM, then SIGKILL), newest first.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from simulator import scenarios
from suite.processes import (
    ManagedProcess, alertmanager_process, prometheus_process, victoria_metrics_process, vmagent_process,
    vmalert_process, wait_until,
)
from suite.prometheus_config import one_home, render_prometheus_config, render_vmagent_config
from testkit.env import clean_env
from testkit.ports import free_port
from testkit.prometheus import RunningPrometheus, RunningVictoriaMetrics
from testkit.simulator import SIM_TOKEN, Simulator

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Patience:
    """How long each kind of process may take to become ready before its start counts as failed."""

    prometheus: float = 30.0
    alertmanager: float = 30.0
    component: float = 20.0
    simulator: float = 20.0          # until its port file is written


FAIL_FAST = Patience()               # tests: a slow start is a failure worth seeing soon
# benchmarks: long runs, large data directories, a machine busy with the previous benchmark
PATIENT = Patience(prometheus=60.0, alertmanager=60.0, component=60.0, simulator=30.0)


@dataclass
class Component:
    """One of our entry points, running: its process and base URL."""

    process: ManagedProcess
    url: str

    @property
    def address(self) -> str:
        """host:port, as a Prometheus target."""
        return self.url.split("://", 1)[1]


def read_port_file(path: Path, timeout: float = 20.0) -> dict[str, Any]:
    """The JSON a process writes once it listens (`charging-sim --port-file`)."""
    wait_until(lambda: path.exists() and path.stat().st_size > 0, timeout, 0.05, f"port file {path}")
    return json.loads(path.read_text())


def scenario_file(scenario: Path | str | Mapping[str, Any], directory: Path, name: str) -> Path:
    """A scenario as a file: a bundled one by name ("demo"), a path, or a mapping written as YAML."""
    if isinstance(scenario, Mapping):
        path = directory / f"{name}-scenario.yaml"
        path.write_text(yaml.safe_dump(dict(scenario), sort_keys=False, allow_unicode=True))
        return path
    if isinstance(scenario, str) and "/" not in scenario and not scenario.endswith(".yaml"):
        return scenarios.path(scenario)
    return Path(scenario)


class Stack:
    """The processes of one test or benchmark. With no `workdir`, a temporary directory of its own,
    removed by `close(ok=True)` and kept (and named through `log`) after a failure."""

    def __init__(self, workdir: Path | None = None, *, name: str = "stack", patience: Patience = FAIL_FAST,
                 log: Callable[[str], None] = print) -> None:
        self.owns_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{name}-")) if workdir is None else workdir
        self.patience = patience
        self.log = log
        self.processes: list[ManagedProcess] = []
        self._names: set[str] = set()

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        self.close(ok=kind is None)

    def _unique(self, name: str) -> str:
        """`name` the first time, then name-1, name-2, ...: files of two processes never collide."""
        unique, n = name, 0
        while unique in self._names:
            n += 1
            unique = f"{name}-{n}"
        self._names.add(unique)
        return unique

    def start(self, process: ManagedProcess) -> ManagedProcess:
        """Start a process and stop it with the rest."""
        self.processes.append(process.start())
        return process

    def simulator(self, scenario: Path | str | Mapping[str, Any] = "demo", *, speed: float | None = None,
                  token: str = SIM_TOKEN, name: str = "simulator") -> Simulator:
        """`charging-sim` on free ports (its Wall Connectors too), once it listens."""
        name = self._unique(name)
        port_file = self.workdir / f"{name}-ports.json"
        command = [sys.executable, "-m", "simulator", "--scenario", str(scenario_file(scenario, self.workdir, name)),
                   "--listen", f"{HOST}:0", "--charger-port-base", "0", "--port-file", str(port_file)]
        if speed is not None:
            command += ["--speed", f"{speed:g}"]
        process = self.start(ManagedProcess(name, command, self.workdir / f"{name}.log",
                                            clean_env(TESSIE_ACCESS_TOKEN=token)))
        ports = read_port_file(port_file, self.patience.simulator)
        return Simulator(ports["url"], ports["chargers"], process, token)

    def component(self, name: str, module: str, *, port: int | None = None,
                  config: Path | Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                  args: Sequence[str] = (), wait: bool = True, ready_timeout: float | None = None) -> Component:
        """`python -m module --listen 127.0.0.1:<port>` (a free port unless given) with `config` (a file,
        or a mapping written as YAML) and `env` over a clean environment; ready once /-/healthy answers
        (`wait=False`: started only, call `process.wait_ready` later)."""
        name = self._unique(name)
        port = port or free_port()
        command = [sys.executable, "-m", module]
        if config is not None:
            if isinstance(config, Mapping):
                path = self.workdir / f"{name}.yaml"
                path.write_text(yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True))
                config = path
            command += ["--config", str(config)]
        command += ["--listen", f"{HOST}:{port}", *args]
        url = f"http://{HOST}:{port}"
        process = self.start(ManagedProcess(name, command, self.workdir / f"{name}.log", clean_env(env),
                                            f"{url}/-/healthy"))
        if wait:
            process.wait_ready(ready_timeout or self.patience.component)
        return Component(process, url)

    def prometheus(self, targets: Mapping[str, Sequence[str]], *, scrape_interval: float = 1,
                   rule_files: Sequence[str] = (), alertmanagers: Sequence[str] = (), extra: Sequence[str] = (),
                   data_dir: Path | None = None, config_text: str | None = None, name: str = "prometheus",
                   port: int | None = None, wait: bool = True, remote_write: Sequence[str] = (),
                   sites: Mapping[str, str] | None = None) -> RunningPrometheus:
        """The installed Prometheus scraping `targets` (job -> addresses), labelling the targets in `sites`
        (address -> its `site` label; default, as `make up` with one home: a home's jobs are site "home"), and evaluating rules every `scrape_interval`, sending every sample to
        the `remote_write` URLs; its configuration is <workdir>/<name>.yml (rewrite it and SIGHUP to reload)."""
        name = self._unique(name)
        port = port or free_port()
        config = self.workdir / f"{name}.yml"
        config.write_text(config_text or render_prometheus_config(
            targets, scrape_interval=scrape_interval, evaluation_interval=scrape_interval, rule_files=rule_files,
            alertmanagers=alertmanagers, remote_write=remote_write, sites=one_home(targets) if sites is None else sites))
        data = data_dir or self.workdir / f"{name}-data"
        process = prometheus_process(config, data, HOST, port, log_path=self.workdir / f"{name}.log", extra=extra)
        process.name = name
        self.start(process)
        if wait:
            process.wait_ready(self.patience.prometheus)
        return RunningPrometheus(f"http://{HOST}:{port}", process, data)

    def victoria_metrics(self, targets: Mapping[str, Sequence[str]] | None = None, *, scrape_interval: float = 1,
                         name: str = "victoria-metrics") -> RunningVictoriaMetrics:
        """The installed VictoriaMetrics (with the flags `make up` gives it) and, given `targets` (job ->
        addresses), a vmagent scraping them into it every `scrape_interval`; ready. Without targets, the
        samples come from elsewhere (a Prometheus's remote write to `url`/api/v1/write, imports)."""
        name = self._unique(name)
        port = free_port()
        vm = victoria_metrics_process(self.workdir / f"{name}-data", HOST, port, log_path=self.workdir / f"{name}.log")
        vm.name = name
        self.start(vm).wait_ready(self.patience.prometheus)
        url = f"http://{HOST}:{port}"
        agent, agent_url = None, None
        if targets is not None:
            agent_port = free_port()
            config = self.workdir / f"{name}-vmagent.yml"
            config.write_text(render_vmagent_config(targets, scrape_interval=scrape_interval, sites=one_home(targets)))
            agent = vmagent_process(config, self.workdir / f"{name}-vmagent-data", HOST, agent_port, url,
                                    log_path=self.workdir / f"{name}-vmagent.log")
            agent.name = f"{name}-vmagent"
            self.start(agent).wait_ready(self.patience.prometheus)
            agent_url = f"http://{HOST}:{agent_port}"
        return RunningVictoriaMetrics(url, vm, agent, agent_url, self.workdir / f"{name}-data")

    def vmalert(self, datasource: str, *, rule_files: Sequence[str], alertmanagers: Sequence[str],
                interval: float = 1, name: str = "vmalert") -> str:
        """The installed vmalert evaluating `rule_files` on `datasource` (VictoriaMetrics) every `interval`,
        sending to `alertmanagers` (URLs); its URL once ready."""
        name = self._unique(name)
        port = free_port()
        process = vmalert_process(rule_files, datasource, alertmanagers, HOST, port, interval=interval,
                                  log_path=self.workdir / f"{name}.log")
        process.name = name
        self.start(process).wait_ready(self.patience.prometheus)
        return f"http://{HOST}:{port}"

    def alertmanager(self, config: Path, *, name: str = "alertmanager") -> str:
        """The installed Alertmanager with `config`; its URL once ready."""
        name = self._unique(name)
        port = free_port()
        process = alertmanager_process(config, self.workdir / f"{name}-data", HOST, port,
                                       log_path=self.workdir / f"{name}.log")
        process.name = name
        self.start(process).wait_ready(self.patience.alertmanager)
        return f"http://{HOST}:{port}"

    def pid(self, name: str) -> int:
        process = next(p for p in self.processes if p.name == name)
        assert process.process is not None
        return process.process.pid

    def stop(self, process: ManagedProcess, timeout: float = 10.0) -> None:
        """Stop one process before the others (SIGKILL after `timeout`)."""
        process.stop(timeout)
        if process in self.processes:
            self.processes.remove(process)

    def close(self, ok: bool = True) -> None:
        """Stop every process, newest first; a directory of its own is removed if ok, else kept."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self.owns_workdir:
            if ok:
                shutil.rmtree(self.workdir, ignore_errors=True)
            else:
                self.log(f"  logs kept in {self.workdir}")
