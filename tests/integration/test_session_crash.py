"""SIGKILL the session store at random points while it catches up on many sessions, many times:
every session is recorded exactly once, the database passes integrity_check."""
from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from session_store.sessions import Completed, Params, UnitState, step
from suite.processes import wait_until
from testkit.backfill import write_blocks
from testkit.exposition import value
from testkit.http import get, get_json
from testkit.ports import free_port

pytestmark = pytest.mark.integration
UNITS = {"1457768-02-G--PGT0000000001": "garage", "1457768-02-G--PGT0000000002": "driveway"}
STEP_S = 15


def synthetic_power(seed: int, start: float, hours: int) -> np.ndarray:
    """Sessions of 20-90 minutes at 7-11.5 kW with brief dips, separated by idle hours."""
    rng = np.random.default_rng(seed)
    watts = np.zeros(hours * 3600 // STEP_S)
    i = rng.integers(20, 80)
    while i < watts.size - 400:
        length = rng.integers(80, 360)
        watts[i:i + length] = rng.uniform(7000, 11500)
        dip = i + rng.integers(20, 60)
        watts[dip:dip + rng.integers(1, 8)] = 0.0          # a dip shorter than the grace period
        i += length + rng.integers(60, 300)
    return watts


def openmetrics(start: float, hours: int) -> tuple[str, dict[str, list[Completed]]]:
    lines = ["# TYPE tesla_wall_connector_power_watts gauge"]
    expected = {}
    t = start + np.arange(hours * 3600 // STEP_S) * STEP_S
    for seed, (din, unit) in enumerate(UNITS.items()):
        watts = np.round(synthetic_power(seed, start, hours), 1)  # as written to the TSDB
        lines += [f'tesla_wall_connector_power_watts{{din="{din}",instance="f:9882",job="fleet",unit="{unit}"}} '
                  f'{w:.1f} {ts:.0f}' for ts, w in zip(t, watts)]
        _, events = step(UnitState(), t, watts, Params(grace_s=600, min_energy_wh=100, min_duration_s=60))
        expected[unit] = [e for e in events if isinstance(e, Completed)]
    return "\n".join(lines) + "\n# EOF\n", expected


def history(tmp_path: Path, hours: int, start_prometheus) -> tuple:
    """Prometheus holding `hours` of synthetic sessions ending two hours ago, and a session-store
    config to catch up on them minute by minute: (start, expected, prometheus, database, config)."""
    start = (time.time() // 3600 - hours - 2) * 3600
    text, expected = openmetrics(start, hours)
    prometheus = start_prometheus({}, data_dir=write_blocks(tmp_path / "tsdb", text))
    database = tmp_path / "sessions.db"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"sessions": {"source": "fleet", "catch_up": f"{hours + 3}h",
                                                   "catch_up_chunk": "1m", "evaluation_interval": 1,
                                                   "database": str(database)},
                                      "prometheus": {"url": prometheus.url}}))
    return start, expected, prometheus, database, config


def test_random_sigkills_lose_and_duplicate_no_session(tmp_path: Path, start_prometheus) -> None:
    hours = 24
    start, expected, prometheus, database, config = history(tmp_path, hours, start_prometheus)
    rng = random.Random(7)
    kills = 0

    def run(until_done: bool) -> None:
        nonlocal kills
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "session_store", "--config", str(config),
                                    "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                   stderr=(tmp_path / "store.log").open("ab"))
        try:
            if until_done:
                wait_until(lambda: watermark(database) > start + hours * 3600, 120, 0.2, "the catch-up to finish")
            else:
                time.sleep(rng.uniform(0.3, 1.5))  # a random moment of the catch-up: the point of the test
                process.send_signal(signal.SIGKILL)
                kills += 1
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            process.wait(30)

    for _ in range(12):
        run(until_done=False)
        if watermark(database) > start + hours * 3600:
            break
    run(until_done=True)

    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT unit, start, end, energy_wh FROM sessions ORDER BY unit, start").fetchall()
    want = sorted((unit, s.start, s.end, s.energy_wh) for unit, sessions in expected.items() for s in sessions)
    print(f"\n{kills} SIGKILLs during catch-up; {len(rows)} sessions stored, {len(want)} expected")
    assert kills >= 3
    assert len(want) >= 10
    assert [(u, s, e) for u, s, e, _ in rows] == [(u, s, e) for u, s, e, _ in want], "lost or duplicated sessions"
    assert [r[3] for r in rows] == pytest.approx([w[3] for w in want], rel=1e-9)


def watermark(database: Path) -> float:
    try:
        with sqlite3.connect(database) as db:
            row = db.execute("SELECT t FROM watermark").fetchone()
            return row[0] if row else 0.0
    except sqlite3.Error:
        return 0.0


def test_prometheus_outage_mid_catch_up_neither_invents_nor_loses_sessions(tmp_path: Path, start_prometheus,
                                                                           start_component) -> None:
    """Prometheus stops while the store catches up: the store keeps serving, says it is blind
    (`charging_session_store_up 0`), stores nothing meanwhile, and finishes exactly once it is back."""
    hours = 12
    start, expected, prometheus, database, config = history(tmp_path, hours, start_prometheus)
    port = free_port()
    start_component("session-store", "session_store", port, config=config)
    store = f"http://127.0.0.1:{port}"
    wait_until(lambda: watermark(database) > start + hours * 3600 / 3, 120, 0.1, "a third of the catch-up")

    prometheus.process.stop()
    blind_at = watermark(database)
    wait_until(lambda: "charging_session_store_up 0.0" in get(f"{store}/metrics")[2].decode(), 20, 0.2,
               "the store to report Prometheus unreachable")
    before = get_json(f"{store}/api/sessions?limit=1000")["total"]
    failed = failed_queries(store)
    wait_until(lambda: failed_queries(store) >= failed + 3, 30, 0.2, "three evaluations against the outage")
    assert watermark(database) == blind_at and get_json(f"{store}/api/sessions?limit=1000")["total"] == before

    prometheus.process.start().wait_ready(30)
    wait_until(lambda: watermark(database) > start + hours * 3600, 120, 0.2, "the catch-up to finish")
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT unit, start, end FROM sessions ORDER BY unit, start").fetchall()
    want = sorted((unit, s.start, s.end) for unit, sessions in expected.items() for s in sessions)
    print(f"\noutage at {(blind_at - start) / 3600:.1f} h of {hours} h; {len(rows)} sessions stored, "
          f"{len(want)} expected")
    assert len(want) >= 5 and rows == want, "sessions lost, invented or duplicated across the outage"
    wait_until(lambda: "charging_session_store_up 1.0" in get(f"{store}/metrics")[2].decode(), 20, 0.2,
               "the store to report Prometheus reachable again")


def failed_queries(store: str) -> float:
    """PromQL requests the store has seen fail as unreachable (one or more per evaluation while blind)."""
    series = 'charging_session_store_upstream_requests_total{endpoint="query",outcome="unreachable"}'
    return value(get(f"{store}/metrics")[2].decode(), series) or 0.0
