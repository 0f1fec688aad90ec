"""The session store's charge-history clients (the site's from Fleet, each car's own from Tessie) against
the simulator's faults: every failure is counted by outcome, logged once per episode, never stops the
store serving, and it recovers."""
from __future__ import annotations

import pytest

from servicekit.upstream import DEFAULT_MAX_BODY
from suite.processes import wait_until
from testkit.exposition import parse
from testkit.http import get
from testkit.ports import free_port
from testkit.simulator import SIM_TOKEN

pytestmark = pytest.mark.integration
# (fault target, counter prefix, endpoint, the poller's log line)
CLIENTS = {"fleet": ("fleet/energy_sites/*/telemetry_history", "charging_session_store_fleet", "telemetry_history",
                     "charge history import failed"),
           "tessie": ("tessie/*/charges", "charging_session_store_tessie", "charges", "vehicle charges import failed")}
# Just over the clients' body limit: a bigger body takes the same path and only slows the simulator (every poll
# of both clients), until, beside a busy parallel test worker, an answer misses the timeout.
BIG_BODY_MB = DEFAULT_MAX_BODY / 2**20 + 1
FAULTS = [({"kind": "status", "status": 500}, "server_error"), ({"kind": "status", "status": 429, "retry_after": 1},
                                                                 "rate_limited"),
          ({"kind": "malformed"}, "bad_payload"), ({"kind": "hang", "hold": "5s", "then": "drop"}, "timeout"),
          ({"kind": "reset"}, "unreachable"), ({"kind": "big_body", "size_mb": BIG_BODY_MB}, "bad_payload")]


def test_charge_history_faults_are_counted_logged_once_and_recovered_from(tmp_path, start_simulator, start_component,
                                                                          start_prometheus) -> None:
    """Both clients at once, each fault on both endpoints: each is counted and logged on its own."""
    sim = start_simulator("demo")
    prometheus = start_prometheus({})
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(f"tessie:\n  timeout: 2\nsessions:\n  database: {tmp_path / 's.db'}\n"
                      f"  evaluation_interval: 1\nprometheus:\n  url: {prometheus.url}\n")
    store = start_component("session-store", "session_store", port, config=config, env={
        "TESSIE_ACCESS_TOKEN": SIM_TOKEN, "TESSIE_BASE_URL": sim.url, "FLEET_CHARGE_HISTORY_INTERVAL": "1",
        "VEHICLE_CHARGES_INTERVAL": "1"})
    url = f"http://127.0.0.1:{port}"

    def counts(outcome: str) -> dict[str, float]:
        found = parse(get(f"{url}/metrics")[2].decode())
        return {client: found.get(f'{prefix}_upstream_requests_total{{endpoint="{endpoint}",outcome="{outcome}"}}',
                                  0.0) for client, (_, prefix, endpoint, _) in CLIENTS.items()}

    wait_until(lambda: min(counts("success").values()) >= 1, 30, 0.2, "a first successful read of both")
    for spec, outcome in FAULTS:
        log_start = store.log_path.stat().st_size
        before, successes = counts(outcome), counts("success")
        for target, *_ in CLIENTS.values():
            sim.add_fault({"target": target, **spec})
        wait_until(lambda: all(n >= before[c] + 2 for c, n in counts(outcome).items()), 40, 0.2,
                   f"{spec} counted as {outcome} twice by both")
        assert get(f"{url}/-/healthy")[0] == 200 and get(f"{url}/api/sessions")[0] == 200
        sim.clear_faults()
        wait_until(lambda: all(n > successes[c] for c, n in counts("success").items()), 40, 0.2,
                   f"recovery after {spec}")
        with open(store.log_path, "rb") as log:
            log.seek(log_start)
            lines = log.read().decode(errors="replace").splitlines()
        for client, (*_, failed) in CLIENTS.items():
            warnings = [line for line in lines if failed in line]
            assert len(warnings) == 1 and f"({outcome})" in warnings[0], (client, spec, warnings)
    assert store.running
