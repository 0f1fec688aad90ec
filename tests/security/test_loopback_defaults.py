"""Nothing listens beyond the machine unless asked: every default listen address is 127.0.0.1, and a
component started without any listen setting binds loopback only (checked in /proc/net/tcp*, and
by connecting to the machine's other address when it has one)."""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from servicekit.config import SECTIONS, load
from servicekit.runtime import argument_parser, parse_listen_or_exit
from servicekit.settings_types import Address
from simulator.__main__ import parse_args as simulator_args
from simulator.app import SimulatorServer
from suite.__main__ import COMPONENTS
from suite.processes import port_in_use, wait_until
from testkit.env import CONFIG_ENV, clean_env
from testkit.http import get

pytestmark = pytest.mark.integration
LISTEN_SETTINGS = [(section, f.name) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
                   if isinstance(f.metadata["kind"], Address)]


def test_every_listen_setting_defaults_to_loopback() -> None:
    config = load({}, {}, {})
    assert {s for s, _ in LISTEN_SETTINGS} >= {"wall_connectors", "energy_site", "vehicles", "price", "sessions",
                                                "prometheus", "alertmanager", "simulator"}
    for section, name in LISTEN_SETTINGS:
        listen = getattr(getattr(config, section), name)
        assert listen.host == "127.0.0.1", f"{section}.{name} defaults to {listen}"


def test_every_entry_point_without_listen_uses_its_loopback_default() -> None:
    config = load({}, {}, {})
    assert argument_parser("x", "y").parse_args([]).listen is None, "--listen has no default of its own"
    for component in COMPONENTS:
        listen = parse_listen_or_exit(component.name, None, component.listen(config))
        assert listen.host == "127.0.0.1", f"{component.name} would listen on {listen}"
    assert simulator_args(["--scenario", "demo.yaml"]).listen == ("127.0.0.1", 9880)
    assert simulator_args(["--scenario", "demo.yaml", "--listen", ":9880"]).listen[0] == "127.0.0.1", \
        "an empty host must not mean every interface"
    assert SimulatorServer.__init__.__defaults__[0] == "127.0.0.1"


def test_every_entry_point_started_without_listen_serves_on_loopback(monkeypatch, tmp_path: Path) -> None:
    """Each entry point's own `main`, with serving replaced by a recorder: what would it bind?"""
    import servicekit.runtime as runtime
    import session_store.__main__ as store_main
    import simulator.__main__ as simulator_main
    from exporters import fleet, price, twc, vehicle

    for key in CONFIG_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TESSIE_ACCESS_TOKEN", "loopback-test-token")   # fleet and vehicle need one to start
    monkeypatch.chdir(tmp_path)                                        # no ./.secrets, no config.yaml
    bound: dict[str, tuple[str, int]] = {}

    async def record_serve(name, description, listen, build, log, stop=None, ready=None) -> None:
        bound[name] = (listen.host, listen.port)

    async def record_store(config, host, port, log, stop=None) -> None:
        bound["session-store"] = (host, port)

    async def record_simulator(args) -> int:
        bound["charging-sim"] = args.listen
        return 0
    monkeypatch.setattr(runtime, "serve", record_serve)
    monkeypatch.setattr(store_main, "run", record_store)
    monkeypatch.setattr(simulator_main, "run", record_simulator)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level    # the entry points install their own log handler
    try:
        for main in (twc.main, fleet.main, vehicle.main, price.main, store_main.main):
            assert main([]) == 0
        assert simulator_main.main(["--scenario", "demo.yaml"]) == 0
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert set(bound) == {"twc-exporter", "fleet-exporter", "vehicle-exporter", "price-exporter", "session-store",
                          "charging-sim"}
    assert {name: host for name, (host, _) in bound.items() if host != "127.0.0.1"} == {}, bound


@pytest.mark.parametrize("text", [":9881", "[]:9881", " :9881"])
def test_an_empty_host_is_refused_rather_than_binding_every_interface(text: str) -> None:
    with pytest.raises(SystemExit):
        parse_listen_or_exit("x", text, load({}, {}, {}).price.listen)


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(local address, port) of every TCP socket in LISTEN state that process `pid` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:
                address, port = local.split(":")
                found.append((address, int(port, 16)))
    return found


def other_address() -> str | None:
    """The address this machine uses towards the outside, if it is not loopback (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_a_component_started_with_default_config_binds_only_loopback(tmp_path: Path) -> None:
    config = load({}, {}, {})
    candidates = [("exporters.price", config.price.listen), ("exporters.twc", config.wall_connectors.listen),
                  ("session_store", config.sessions.listen)]
    free = [(module, listen) for module, listen in candidates if not port_in_use("127.0.0.1", listen.port)]
    if not free:
        pytest.skip("every candidate's default port is busy on this machine")
    module, listen = free[0]
    log = (tmp_path / "component.log").open("wb")
    # no --config, no --listen, no settings in the environment; cwd holds no .secrets or config.yaml
    process = subprocess.Popen([sys.executable, "-m", module], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                               env=clean_env(COMED_BASE_URL="http://127.0.0.1:9", PROMETHEUS_URL="http://127.0.0.1:9"),
                               start_new_session=True)
    try:
        wait_until(lambda: get(f"http://127.0.0.1:{listen.port}/-/healthy", 1)[0] == 200, 20, 0.1,
                   f"{module} on its default port {listen.port}")
        sockets = listening_sockets(process.pid)
        assert sockets, "no listening socket found for the process"
        assert sockets == [("0100007F", listen.port)], f"{module} listens on {sockets} (hex, little-endian)"
        address = other_address()
        if address is None:
            return   # no non-loopback address here: /proc/net above is the whole check
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            client.settimeout(2)
            assert client.connect_ex((address, listen.port)) != 0, f"{module} answers on {address}:{listen.port}"
    finally:
        process.terminate()
        process.wait(10)
        log.close()
