"""Every PromQL expression the suite sends: each dashboard panel's (as committed, Grafana variables in it)
and each the session store asks, recorded from its own code against a Prometheus that answers nothing."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

from testkit import ROOT

DASHBOARDS = ROOT / "grafana" / "dashboards"


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    """(dashboard uid / panel title / refId, expr) of every PromQL target of every committed dashboard."""
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for inner in [panel, *panel.get("panels", [])]:
                for target in inner.get("targets", []):
                    if "expr" in target:
                        yield f"{dashboard['uid']} / {inner['title']} / {target['refId']}", target["expr"]


async def session_store_exprs(tmp_path: Path) -> list[str]:
    """What the session store queries: its session sources (both, in auto mode), their raw samples and the
    prices', the live view, smart charging's market (both signals) and vehicles, the departure planner's
    forecast and readings, and the reports' billed prices."""
    from reports.prices import METRIC
    from servicekit.config import load
    from session_store.live import LIVE_QUERY
    from session_store.planning import Planning
    from session_store.prometheus import Prometheus
    from session_store.service import FLEET, LOCAL, SessionService
    from session_store.smart_loop import SmartChargingDriver
    from session_store.storage import Storage
    from billing.settings import tariff_for

    asked: list[str] = []

    class Recording(Prometheus):
        def __init__(self) -> None:   # no upstream: nothing is sent
            self.url, self.host = "http://recording.invalid", "recording.invalid"

        async def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
            asked.append(expr)
            return []

    log, prometheus = logging.getLogger("promql-queries"), Recording()
    chargers = {"wall_connectors": {"chargers": [{"name": "garage", "address": "127.0.0.1:9"}]}}
    config = load(chargers, {}, {"TESSIE_ACCESS_TOKEN": "recording-token"})
    storage = Storage(tmp_path / "recording.db")
    service = SessionService(config, storage, prometheus, log, clock=lambda: 1_000_000.0)
    await service.choose_source()
    for source in (FLEET, LOCAL):
        await service._window(source, 999_000.0, 999_300.0)
    asked.append(LIVE_QUERY)
    for signal in ("billed", "five_minute"):
        smart = SmartChargingDriver(load({**chargers, "smart_charging": {"signal": signal}}, {}, {}), storage,
                                    prometheus, None, log)
        await smart.market()
    await smart.vehicles()
    planning = Planning(config, storage, prometheus, tariff_for(config), log)
    await planning.forecast()
    await planning.published()
    await planning.readings()
    await planning.wall_energy_since("1457768-01-G--PGT00000000021", 990_000.0, 1_000_000.0)
    asked.append(f"avg({METRIC})")
    return list(dict.fromkeys(asked))
