"""prometheus.yml for a set of scrape jobs; the job names are a contract with rules and dashboards."""
from __future__ import annotations

from typing import Mapping, Sequence

import yaml

JOBS = {
    "twc": "twc-exporter: Wall Connector local API",
    "fleet": "fleet-exporter: Fleet energy site via Tessie",
    "vehicle": "vehicle-exporter: vehicles via Tessie",
    "price": "price-exporter: electricity price",
    "session_store": "session-store: sessions and smart charging",
}


def render_prometheus_config(targets: Mapping[str, Sequence[str]], *, scrape_interval: float = 15,
                             evaluation_interval: float = 15, rule_files: Sequence[str] = (),
                             alertmanagers: Sequence[str] = ()) -> str:
    """YAML text for Prometheus; `targets` maps job name -> host:port addresses."""
    config: dict = {
        "global": {"scrape_interval": f"{scrape_interval:g}s", "evaluation_interval": f"{evaluation_interval:g}s"},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(addresses)}]}
            for job, addresses in targets.items()
        ],
    }
    if rule_files:
        config["rule_files"] = list(rule_files)
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    return yaml.safe_dump(config, sort_keys=False)
