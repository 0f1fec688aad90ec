"""The session store never derives sessions from an exporter its configuration does not run: series left
in Prometheus by another setup (the demo's Fleet units, say) are ignored, and the log says why it chose."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from servicekit.config import load
from session_store.service import FLEET, LOCAL, SessionService
from session_store.storage import Storage

CHARGERS = {"wall_connectors": {"chargers": [{"name": "garage", "address": "127.0.0.1:9"}]}}
TOKEN = {"TESSIE_ACCESS_TOKEN": "source-test-token"}


class BothSeries:
    """A Prometheus holding both power series, as one does after the demo ran."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def query(self, expr: str, at: float | None = None) -> list[dict]:
        self.asked.append(expr)
        return [{"metric": {}, "value": [0, "1"]}]


def service(tmp_path: Path, mapping: dict, secrets: dict, prometheus: BothSeries,
            log: logging.Logger) -> SessionService:
    config = load(mapping, {}, secrets)
    return SessionService(config, Storage(tmp_path / "s.db"), prometheus, log, clock=lambda: 1_000_000.0)


@pytest.mark.parametrize("mapping, secrets, expected, reason", [
    (CHARGERS, {}, LOCAL, "Wall Connectors are configured; Fleet: no TESSIE_ACCESS_TOKEN"),
    ({}, TOKEN, FLEET, "the fleet exporter is enabled and a Tessie token is present"),
    ({**CHARGERS, "energy_site": {"enabled": False}}, TOKEN, LOCAL,
     "Wall Connectors are configured; Fleet: energy_site.enabled is false"),
    (CHARGERS, TOKEN, FLEET, "the fleet exporter is enabled and a Tessie token is present"),
], ids=["local-only", "fleet-only", "fleet-disabled", "both"])
async def test_auto_uses_only_a_source_whose_exporter_is_configured(tmp_path: Path, caplog, mapping, secrets,
                                                                    expected, reason) -> None:
    log = logging.getLogger("source-test")
    with caplog.at_level(logging.INFO, logger="source-test"):
        chosen = await service(tmp_path, mapping, secrets, BothSeries(), log).choose_source()
    assert chosen is expected
    assert f"deriving sessions from {expected.power} ({expected.name}): {reason}" in caplog.text


async def test_nothing_configured_means_no_source_even_with_series_in_prometheus(tmp_path: Path, caplog) -> None:
    prometheus = BothSeries()
    log = logging.getLogger("source-test-none")
    with caplog.at_level(logging.INFO, logger="source-test-none"):
        store = service(tmp_path, {}, {}, prometheus, log)
        assert await store.choose_source() is None
        assert await store.choose_source() is None
    assert prometheus.asked == [], "no source is configured: Prometheus is not even asked"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("no session source:"), warnings
    assert "TESSIE_ACCESS_TOKEN" in warnings[0] and "wall_connectors.chargers" in warnings[0]


async def test_an_explicit_source_is_kept(tmp_path: Path) -> None:
    store = service(tmp_path, {"sessions": {"source": "fleet"}}, {}, BothSeries(), logging.getLogger("x"))
    assert await store.choose_source() is FLEET
