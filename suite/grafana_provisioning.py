"""Grafana provisioning for `make up` users: the suite's own datasources and dashboards, addressed
where this configuration runs them (the files under grafana/provisioning address Compose's services).

    charging-suite grafana-provisioning --output DIR   -> DIR/datasources/charging.yml, DIR/dashboards/charging.yml
"""
from __future__ import annotations

from pathlib import Path

import yaml

from servicekit.config import Config

ROOT = Path(__file__).resolve().parent.parent
PROVISIONING = ROOT / "grafana" / "provisioning"
PLUGIN = "yesoreyeram-infinity-datasource"   # the session store's JSON API


def datasources(config: Config) -> dict:
    """The committed datasources, their URLs the configured listen addresses."""
    document = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
    # VictoriaMetrics answers the same query API: the same datasource
    urls = {"prometheus": config.query_listen.url, "session-store": config.sessions.listen.url}
    for source in document["datasources"]:
        source["url"] = urls[source["uid"]]
    return document


def dashboards() -> dict:
    """The committed dashboard provider, reading the generated JSON from this checkout."""
    document = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    for provider in document["providers"]:
        provider["options"]["path"] = str(ROOT / "grafana" / "dashboards")
    return document


def write(config: Config, output: Path) -> list[str]:
    """Write both files; returns the steps that finish the job, to print."""
    for kind, document in (("datasources", datasources(config)), ("dashboards", dashboards())):
        (output / kind).mkdir(parents=True, exist_ok=True)
        text = "# Written by `charging-suite grafana-provisioning`: the suite as `make up` runs it.\n"
        (output / kind / "charging.yml").write_text(text + yaml.safe_dump(document, sort_keys=False))
    return [f"1. install the plugin the session store's panels use: grafana-cli plugins install {PLUGIN}",
            f"2. point Grafana at this provisioning: GF_PATHS_PROVISIONING={output.resolve()} (or [paths] "
            "provisioning in grafana.ini; copy the files into an existing provisioning directory instead if it "
            "has others)",
            "3. restart Grafana: the dashboards are in the Charging folder, Charging Overview first; set it as "
            f"home with GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH={ROOT / 'grafana' / 'dashboards'}/charging-overview.json"]
