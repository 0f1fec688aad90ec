"""`charging-suite up` starts in dependency order, refuses to start a second suite naming the running one,
and says what holds a busy port instead of calling it a configuration error."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import suite.__main__ as suite_main
from servicekit.config import load
from suite.processes import wait_until
from testkit.ports import free_port


SECTIONS = ("wall_connectors", "energy_site", "vehicles", "price", "sessions", "meter", "prometheus", "alertmanager",
            "simulator")


def free_config(tmp_path: Path) -> dict:
    ports = [free_port() for _ in SECTIONS]      # never one twice: testkit.ports hands them out in turn
    return {"general": {"data_dir": str(tmp_path / "var")},
            **{section: {"listen": f"127.0.0.1:{port}"} for section, port in zip(SECTIONS, ports)}}


def test_start_order_follows_what_each_process_needs(tmp_path: Path, monkeypatch) -> None:
    """Simulator (the upstreams) and the demo's utility login on it, backfill (before Prometheus opens the
    TSDB), Prometheus, Alertmanager, the exporters, and the session store last (it queries Prometheus from its
    first second), with charging-meter after it (it shares its database)."""
    calls: list[str] = []
    stop = threading.Event()

    def components(self, chosen, site):
        calls.extend(c.name for c in chosen)
        if any(c.name == "session-store" for c in chosen):
            stop.set()
        return [(c, c.listen(site.config), site.name) for c in chosen]

    monkeypatch.setattr(suite_main.Suite, "start_simulator",
                        lambda self, site: calls.append("simulator") or {"url": "http://127.0.0.1:1", "chargers": {}})
    monkeypatch.setattr(suite_main.Suite, "demo_meter_login", lambda self: calls.append("meter-login"))
    monkeypatch.setattr(suite_main.Suite, "backfill_prices", lambda self, site: calls.append("backfill"))
    monkeypatch.setattr(suite_main.Suite, "start_prometheus", lambda self, started: calls.append("prometheus") or "http://p")
    monkeypatch.setattr(suite_main.Suite, "start_alertmanager", lambda self: calls.append("alertmanager") or "http://a")
    monkeypatch.setattr(suite_main.Suite, "start_components", components)
    config = load(free_config(tmp_path), {}, {})
    assert suite_main.up(config, None, stop, out=io.StringIO()) == 0
    assert calls == ["simulator", "meter-login", "backfill", "prometheus", "alertmanager", "twc-exporter",
                     "fleet-exporter", "vehicle-exporter", "price-exporter", "session-store", "charging-meter"]


def test_with_two_sites_every_site_starts_before_any_store(tmp_path: Path, monkeypatch) -> None:
    """Each site's simulator and backfill before Prometheus; every site's exporters before the session
    stores, which query what the exporters produce; the suite's one meter with the first site."""
    calls: list[str] = []
    stop = threading.Event()

    def components(self, chosen, site):
        calls.extend(site.tag(c.name) for c in chosen)
        if any(c.job == "session_store" for c in chosen) and not site.first:
            stop.set()
        return [(c, c.listen(site.config), site.name) for c in chosen]

    monkeypatch.setattr(suite_main.Suite, "start_simulator", lambda self, site: calls.append(
        site.tag("simulator")) or {"url": "http://127.0.0.1:1", "chargers": {}})
    monkeypatch.setattr(suite_main.Suite, "demo_meter_login", lambda self: calls.append("meter-login"))
    monkeypatch.setattr(suite_main.Suite, "backfill_prices", lambda self, site: calls.append(site.tag("backfill")))
    monkeypatch.setattr(suite_main.Suite, "start_prometheus", lambda self, scraped: calls.append("prometheus") or "http://p")
    monkeypatch.setattr(suite_main.Suite, "start_alertmanager", lambda self: calls.append("alertmanager") or "http://a")
    monkeypatch.setattr(suite_main.Suite, "start_components", components)
    settings = free_config(tmp_path)
    cabin = {section: {"listen": f"127.0.0.1:{free_port()}"} for section in
             ("wall_connectors", "energy_site", "vehicles", "price", "sessions", "simulator")}
    settings["sites"] = [{"name": "home"}, {"name": "cabin", **cabin}]
    config_file = tmp_path / "config.yaml"
    import yaml
    config_file.write_text(yaml.safe_dump(settings))
    config = load(settings, {}, {})
    assert suite_main.up(config, str(config_file), stop, out=io.StringIO()) == 0
    assert calls == ["simulator", "simulator-cabin", "meter-login", "backfill", "backfill-cabin", "prometheus",
                     "alertmanager", "twc-exporter", "fleet-exporter", "vehicle-exporter", "price-exporter",
                     "twc-exporter-cabin", "fleet-exporter-cabin", "vehicle-exporter-cabin", "price-exporter-cabin",
                     "session-store", "charging-meter", "session-store-cabin"]


def test_a_busy_port_names_its_holder_and_is_not_a_configuration_error(tmp_path: Path, capsys) -> None:
    settings = free_config(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings["prometheus"] = {"listen": f"127.0.0.1:{port}"}
        config_file = tmp_path / "config.yaml"
        import yaml
        config_file.write_text(yaml.safe_dump(settings))
        status = suite_main.main(["up", "--config", str(config_file)])
    err = capsys.readouterr().err
    assert status == 1, err
    assert "configuration error" not in err
    assert f"charging-suite: cannot start: prometheus.listen: 127.0.0.1:{port} is already in use by pid " \
           f"{os.getpid()} (" in err
    assert not (tmp_path / "var" / suite_main.PID_FILE).exists(), "a suite that did not start leaves no pid file"


def test_a_running_suite_is_named_by_its_pid_file(tmp_path: Path, capsys) -> None:
    pid_file = tmp_path / "var" / suite_main.PID_FILE
    pid_file.parent.mkdir(parents=True)
    # a live process whose command line says charging-suite, as a running suite's does
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "charging-suite", "up"])
    try:
        pid_file.write_text(f"{sleeper.pid}\n")
        assert suite_main.running_suite(pid_file) == sleeper.pid
        config = load(free_config(tmp_path), {}, {})
        assert suite_main.up(config, None, threading.Event(), out=io.StringIO()) == 1
        err = capsys.readouterr().err
        assert f"charging-suite: cannot start: a charging suite is already running (pid {sleeper.pid})" in err
        assert pid_file.read_text() == f"{sleeper.pid}\n", "the running suite's pid file is left alone"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert suite_main.running_suite(pid_file) is None, "a dead pid is stale"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        wait_until(lambda: Path(f"/proc/{other.pid}/cmdline").read_bytes(), 10, 0.01, "the command line")
        pid_file.write_text(f"{other.pid}\n")
        assert suite_main.running_suite(pid_file) is None, "a reused pid (not a suite) is stale"
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_every_stop_signal_is_handled(signum: str, monkeypatch) -> None:
    handled = {}
    monkeypatch.setattr(suite_main.signal, "signal", lambda number, handler: handled.setdefault(number, handler))
    monkeypatch.setattr(suite_main, "up", lambda *args, **kwargs: 0)
    assert suite_main.main(["up", "--config", os.devnull]) == 0
    assert getattr(suite_main.signal, signum) in handled


def test_a_component_left_over_from_an_earlier_suite_is_named(tmp_path: Path, capsys) -> None:
    """What an orphan of a suite that died before this version looks like: one of our components, its
    parent not a suite."""
    from simulator import scenarios
    from testkit.stack import read_port_file
    settings = free_config(tmp_path)
    port = int(settings["simulator"]["listen"].rsplit(":", 1)[1])
    orphan = subprocess.Popen([sys.executable, "-m", "simulator", "--scenario", str(scenarios.path("demo")),
                               "--listen", f"127.0.0.1:{port}", "--charger-port-base", "0",
                               "--port-file", str(tmp_path / "ports.json")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        read_port_file(tmp_path / "ports.json")
        assert suite_main.up(load(settings, {}, {}), None, threading.Event(), out=io.StringIO()) == 1
    finally:
        orphan.terminate()
        orphan.wait(15)
    err = capsys.readouterr().err
    assert (f"charging-suite: cannot start: simulator.listen: 127.0.0.1:{port} is held by pid {orphan.pid} "
            f"({sys.executable} -m simulator") in err
    assert f"left over from an earlier charging suite; stop it with kill {orphan.pid}" in err
