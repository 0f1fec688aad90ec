"""Grafana provisioning for `make up` users: the suite's own datasources and dashboards, addressed
where this configuration runs them (the files under grafana/provisioning address Compose's services).

    charging-suite grafana-provisioning --output DIR   -> DIR/datasources/charging.yml, DIR/dashboards/charging.yml
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import yaml

from servicekit.config import Config

ROOT = Path(__file__).resolve().parent.parent
PROVISIONING = ROOT / "grafana" / "provisioning"
PLUGIN = "yesoreyeram-infinity-datasource"   # the session store's JSON API


def datasources(config: Config, sites: Sequence[Config] = ()) -> dict:
    """The committed datasources, their URLs the configured listen addresses; with several sites, one
    session-store datasource per site ("Session store: <site>"; the dashboards' `store` variable picks one)."""
    document = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
    sources = []
    for source in document["datasources"]:
        if source["uid"] != "session-store":
            source["url"] = config.query_listen.url   # VictoriaMetrics answers the same query API
            sources.append(source)
            continue
        for site in sites if len(sites) > 1 else [config]:
            named = len(sites) > 1
            sources.append({**source, "url": site.sessions.listen.url,
                            "name": f"{source['name']}: {site.site}" if named else source["name"],
                            "uid": store_uid(site.site, site.site_index) if named else source["uid"]})
    document["datasources"] = sources
    return document


def store_uid(site: str, index: int) -> str:
    """The first site keeps the single home's uid, so existing dashboard links and panels keep working."""
    return "session-store" if index == 0 else f"session-store-{site}"


def dashboards() -> dict:
    """The committed dashboard provider, reading the generated JSON from this checkout."""
    document = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    for provider in document["providers"]:
        provider["options"]["path"] = str(ROOT / "grafana" / "dashboards")
    return document


def write(config: Config, output: Path, sites: Sequence[Config] = ()) -> list[str]:
    """Write both files; returns the steps that finish the job, to print."""
    for kind, document in (("datasources", datasources(config, sites)), ("dashboards", dashboards())):
        (output / kind).mkdir(parents=True, exist_ok=True)
        text = "# Written by `charging-suite grafana-provisioning`: the suite as `make up` runs it.\n"
        (output / kind / "charging.yml").write_text(text + yaml.safe_dump(document, sort_keys=False))
    return [f"1. install the plugin the session store's panels use: grafana-cli plugins install {PLUGIN}",
            f"2. point Grafana at this provisioning: GF_PATHS_PROVISIONING={output.resolve()} (or [paths] "
            "provisioning in grafana.ini; copy the files into an existing provisioning directory instead if it "
            "has others)",
            "3. restart Grafana: the dashboards are in the Charging folder, Charging Overview first; set it as "
            f"home with GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH={ROOT / 'grafana' / 'dashboards'}/charging-overview.json"]
