"""charging-meter's pulls against the simulator's portal through the real `opower` library, one failure at a
time: a refused login, an expired or revoked refresh token, a 5xx, malformed JSON, and a late correction.
Each says clearly what failed (and what to run), loses nothing and duplicates nothing: the stored reads,
their costs and the publication ledger stay exactly as they were, and a correction replaces its reads."""
from __future__ import annotations

import logging
import stat
import subprocess
import sys

import pytest
import yaml

from billing.settings import tariff_for
from meter import credentials
from meter.client import LoginExpired, interactive_login
from meter.sync import MeterSync, NotSetUp
from servicekit.config import load
from servicekit.errors import BadPayload, ServerError, UpstreamError
from session_store.storage import Storage
from simulator.app import SimulatorServer
from simulator.clock import ManualClock
from simulator.faults import parse_fault
from simulator.scenario import load_scenario
from testkit import ROOT
from upstreams.opower_route import session_for

pytestmark = pytest.mark.integration

CHICAGO_START = "2026-11-10T15:00:00-06:00"   # reads published to Nov 9 03:00
CORRECTED_DAY = "2026-11-08"


def scenario() -> dict:
    return {"start": CHICAGO_START, "seed": 4, "prices": {"seed": 9, "history_days": 5},
            "chargers": [{"name": "garage", "serial": "PGT00000000061", "part_number": "1457768-02-G"}],
            "meter": {"history": "4d", "delay": "36h", "refresh_token_lifetime": "14d",
                      "corrections": [{"day": CORRECTED_DAY, "factor": 0.9, "after": "48h"}]}}


class Harness:
    def __init__(self, tmp_path, server: SimulatorServer, clock: ManualClock) -> None:
        self.server, self.clock, self.tmp = server, clock, tmp_path
        self.config = load({"general": {"timezone": "America/Chicago"},
                            "sessions": {"database": str(tmp_path / "store.sqlite3")},
                            "meter": {"credential_file": str(tmp_path / "login.json"), "base_url": server.url,
                                      "prometheus_data_dir": str(tmp_path / "no-tsdb"), "history_days": 5}}, {}, {})
        self.storage = Storage(self.config.sessions.database, tariff_for(self.config).zone)
        self.log = logging.getLogger("test-meter")
        self.sync = MeterSync(self.config, self.storage, tariff_for(self.config), self.log, clock=clock.now)

    async def set_up(self) -> None:
        meter = self.server.scenario.meter
        async with session_for(self.server.url) as http:
            async def ask(_: str) -> str:
                return meter.mfa_code

            async def choose(options: dict[str, str]) -> str:
                return next(iter(options))
            data = await interactive_login(http, "comed", meter.username, meter.password, ask, choose)
        credentials.save(self.config.meter.credential_file,
                         credentials.Credential("comed", meter.username, data, self.clock.now()))

    def fault(self, spec: dict) -> None:
        self.server.faults.add(parse_fault(spec, "fault", []), self.clock.now())

    def snapshot(self) -> tuple:
        """Everything a failed pull must leave alone."""
        reads = [(r.start, r.end, r.kwh, r.cost, r.revision) for r in self.storage.meter_reads()]
        ledger = list(self.storage.db.execute("SELECT * FROM meter_ledger ORDER BY series, start"))
        return reads, [tuple(row) for row in ledger], self.storage.meter_bills()


@pytest.fixture
async def meter(tmp_path):
    spec = load_scenario(scenario())
    clock = ManualClock(spec.start)
    server = SimulatorServer(spec, clock=clock)
    await server.start()
    harness = Harness(tmp_path, server, clock)
    yield harness
    harness.storage.close()
    await server.stop()


async def test_no_login_stored_says_what_to_run(meter) -> None:
    with pytest.raises(NotSetUp, match="charging-meter --setup"):
        await meter.sync.fetch()
    assert meter.sync.login == "not_set_up" and meter.sync.view.login == "not_set_up"


async def test_a_pull_stores_every_published_read_once_and_saves_the_rotated_token(meter) -> None:
    await meter.set_up()
    first = credentials.load(meter.config.meter.credential_file).login_data["token"]
    view = await meter.sync.pull_now()
    reads = meter.storage.meter_reads()
    # 4 days of history to 36 h before now, every half hour, each once
    assert len(reads) == len({r.start for r in reads}) and len(reads) >= 48 * 2
    assert all(r.end - r.start == 1800 for r in reads)
    assert max(r.end for r in reads) <= meter.clock.now() - 36 * 3600
    assert view.login == "ok" and view.reads == len(reads)
    rotated = credentials.load(meter.config.meter.credential_file)
    assert rotated.login_data["token"] != first                       # the rotated token is kept
    assert stat.S_IMODE((meter.tmp / "login.json").stat().st_mode) == 0o600
    before = meter.snapshot()
    await meter.sync.pull_now()                                       # the same reads again: nothing changes
    assert meter.snapshot() == before


async def test_a_correction_replaces_its_reads_and_publishes_only_the_difference(meter) -> None:
    await meter.set_up()
    await meter.sync.pull_now()
    day = [r for r in meter.storage.meter_reads() if r.day == CORRECTED_DAY]
    assert len(day) == 48 and all(r.revision == 0 for r in day)
    estimated = sum(r.kwh for r in day)
    meter.clock.advance(24 * 3600)                                    # past the correction's `after`
    await meter.sync.pull_now()
    day = [r for r in meter.storage.meter_reads() if r.day == CORRECTED_DAY]
    assert len(day) == 48 and all(r.revision == 1 for r in day)       # replaced, not added
    corrected = sum(r.kwh for r in day)
    assert corrected == pytest.approx(estimated / 0.9, rel=1e-9)
    published = dict(meter.storage.published_totals('utility_meter_read_energy_joules{utility="comed"}'))
    assert sum(published[r.start] for r in day) / 3.6e6 == pytest.approx(corrected, rel=1e-9)
    increments = [row for row in meter.storage.db.execute(
        "SELECT t_ms, value FROM meter_outbox WHERE series LIKE 'utility_meter_read_energy_joules%'")]
    assert len({t for t, _ in increments}) == len(increments)        # never two samples at one instant
    assert sum(v for _, v in increments) / 3.6e6 == pytest.approx(
        sum(r.kwh for r in meter.storage.meter_reads()), rel=1e-9)
    assert meter.sync.view.corrections == 48


@pytest.mark.parametrize("endpoint, kind, error", [
    ("customers", "status", ServerError), ("graphql", "malformed", BadPayload), ("customers", "malformed", BadPayload),
    ("token", "status", UpstreamError)])
async def test_a_failing_portal_changes_nothing(meter, endpoint: str, kind: str, error: type) -> None:
    await meter.set_up()
    await meter.sync.pull_now()
    before = meter.snapshot()
    meter.clock.advance(24 * 3600)                                    # new reads and the correction are waiting
    meter.fault({"target": f"opower/{endpoint}", "kind": kind, **({"status": 503} if kind == "status" else {})})
    with pytest.raises(error) as raised:
        await meter.sync.pull_now()
    assert "token" not in str(raised.value).lower() or endpoint == "token"
    assert meter.snapshot() == before
    meter.server.faults.clear()
    await meter.sync.pull_now()                                       # recovers, and catches up
    assert len(meter.storage.meter_reads()) > len(before[0])


async def test_the_cost_endpoint_failing_alone_keeps_every_cost(meter) -> None:
    """The library reads usage only when the cost endpoint fails; the stored costs stay."""
    await meter.set_up()
    await meter.sync.pull_now()
    before = meter.snapshot()
    meter.fault({"target": "opower/cost", "kind": "status", "status": 500})
    await meter.sync.pull_now()
    assert meter.snapshot() == before


async def test_an_expired_or_revoked_login_says_what_to_run_and_keeps_the_data(meter, caplog) -> None:
    await meter.set_up()
    await meter.sync.pull_now()
    before = meter.snapshot()
    meter.clock.advance(15 * 86400)                                   # the refresh token's 14 days, unused
    with pytest.raises(LoginExpired, match="run: charging-meter --setup"):
        await meter.sync.pull_now()
    assert meter.sync.login == "expired" and meter.sync.view.login == "expired"
    assert meter.snapshot() == before
    await meter.set_up()                                              # the user runs the set-up again
    await meter.sync.pull_now()
    assert meter.sync.login == "ok"
    async with session_for(meter.server.url) as http:
        async with http.post(f"{meter.server.url}/sim/meter/revoke") as response:
            assert response.status == 200
    with pytest.raises(LoginExpired):
        await meter.sync.pull_now()
    assert meter.sync.view.login == "expired"


def test_the_setup_command_refuses_a_wrong_password_and_stores_nothing(tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"meter": {"credential_file": str(tmp_path / "login.json"),
                                                "base_url": "http://127.0.0.1:9"}}))
    result = subprocess.run([sys.executable, "-m", "meter", "--setup", "--config", str(config)],
                            input="me@example.com\nwrong\n", capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1
    assert "login failed" in result.stderr and "nothing was stored" in result.stderr
    assert "wrong" not in result.stderr + result.stdout.replace("Password (not stored): ", "")
    assert not (tmp_path / "login.json").exists()
    status = subprocess.run([sys.executable, "-m", "meter", "--status", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert status.returncode == 1 and "charging-meter --setup" in status.stdout
