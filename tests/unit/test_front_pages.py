"""What a newcomer opens first: the session store's page links its API, the simulator's root answers a
page of its endpoints (not 401, no secrets), the simulator's port file names every charger's DIN (so the
demo's Fleet units carry the scenario's names), and the package installs without licence warnings."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from simulator import scenarios
from simulator.app import SimulatorServer
from simulator.scenario import load_scenario
from testkit.http import get
from testkit.ports import free_port
from testkit.stack import read_port_file

ROOT = Path(__file__).resolve().parents[2]


def test_the_session_store_page_links_its_api(tmp_path: Path, start_component) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"sessions": {"database": str(tmp_path / "s.db")},
                                      "prometheus": {"url": "http://127.0.0.1:9"}}))
    port = free_port()
    start_component("session-store", "session_store", port, config=config)
    status, _, body = get(f"http://127.0.0.1:{port}/")
    page = body.decode()
    assert status == 200
    links = re.findall(r'href="([^"]+)"', page)
    for path in ("api/sessions", "api/summary", "api/smart-charging", "api/openapi.json"):
        assert path in links, page
    for link in links:
        assert get(f"http://127.0.0.1:{port}/{link}")[0] == 200, link
    assert "<table" not in page, "no empty table of targets: the store polls nothing"


async def test_the_simulator_root_lists_its_endpoints_without_secrets() -> None:
    sim = SimulatorServer(load_scenario(scenarios.path("demo")), port=0, token="root-page-secret-token")
    await sim.start()
    try:
        import aiohttp
        async with aiohttp.ClientSession() as http:
            async with http.get(sim.url + "/") as response:
                assert response.status == 200
                assert response.content_type == "text/html"
                page = await response.text()
            async with http.get(sim.url + "/vehicles") as response:
                assert response.status == 401, "the Tessie endpoints still need the token"
    finally:
        await sim.stop()
    for endpoint in ("/sim/state", "/sim/truth", "/sim/clock", "/sim/faults", "/api?type=5minutefeed", "/vehicles",
                     "/api/1/products", sim.charger_urls["garage"]):
        assert endpoint in page, endpoint
    assert "root-page-secret-token" not in page


def test_the_port_file_names_every_chargers_din(tmp_path: Path) -> None:
    port_file = tmp_path / "ports.json"
    process = subprocess.Popen([sys.executable, "-m", "simulator", "--scenario", str(scenarios.path("demo")),
                                "--listen", "127.0.0.1:0", "--charger-port-base", "0", "--port-file", str(port_file)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ports = read_port_file(port_file)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    assert set(ports["chargers"]) == {"garage"}                       # the follower has no listener
    assert ports["dins"] == {"garage": "1457768-01-G--PGT12345678901", "driveway": "1457768-02-G--PGT12345678902"}


def test_the_licence_is_an_spdx_string() -> None:
    """A TOML table (`{ text = "MIT" }`) makes setuptools >= 77 print screens of deprecation warnings at
    every install; the build runs in an isolated environment with the newest setuptools, which takes the
    string form."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
