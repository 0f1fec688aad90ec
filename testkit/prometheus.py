"""Asking a real Prometheus: instant and range queries over its HTTP API, waiting for data."""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.processes import ManagedProcess, wait_until
from testkit.http import get_json


@dataclass
class PrometheusAPI:
    url: str

    def _data(self, path: str, params: dict[str, Any]) -> Any:
        body = get_json(f"{self.url}{path}?{urllib.parse.urlencode(params)}")
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result (now, or at `at`)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._data("/api/v1/query", params)["result"]

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The first series' value of an instant query, None when it returns nothing."""
        result = self.query(expr, at)
        return float(result[0]["value"][1]) if result else None

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return self._data("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})["result"]

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll an instant query until it returns at least one series."""
        found: list[dict[str, Any]] = []

        def check() -> bool:
            found[:] = self.query(expr)
            return bool(found)
        wait_until(check, timeout, 0.2, f"PromQL {expr!r} to return data")
        return found

    def targets(self) -> list[dict[str, Any]]:
        return get_json(f"{self.url}/api/v1/targets")["data"]["activeTargets"]


@dataclass
class RunningPrometheus(PrometheusAPI):
    """A Prometheus process started by a `Stack`, with its data directory."""

    process: ManagedProcess
    data_dir: Path


@dataclass
class RunningVictoriaMetrics(PrometheusAPI):
    """VictoriaMetrics and the vmagent scraping into it (if any), started by a `Stack`; `url` answers the
    same query API as Prometheus, `agent_url` lists vmagent's targets."""

    process: ManagedProcess
    agent: ManagedProcess | None
    agent_url: str | None
    data_dir: Path

    def targets(self) -> list[dict[str, Any]]:
        return get_json(f"{self.agent_url}/api/v1/targets")["data"]["activeTargets"]

    def import_openmetrics(self, text: str) -> int:
        """History at its real time through the import API (what price-backfill and charging-meter use)."""
        from servicekit.history_import import post
        return post(self.url, text)
