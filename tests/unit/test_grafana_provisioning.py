"""`make up` users provision their own Grafana with one command: the suite's datasources at the
configured local addresses, the dashboards of this checkout, and the plugin they need named."""
from __future__ import annotations

from pathlib import Path

import yaml

from suite.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def test_provisioning_points_at_the_local_suite_and_names_the_steps(tmp_path: Path, capsys) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("prometheus: {listen: '127.0.0.1:19090'}\nsessions: {listen: '127.0.0.1:19885'}\n")
    assert main(["grafana-provisioning", "--config", str(config), "--output", str(tmp_path / "out")]) == 0
    sources = yaml.safe_load((tmp_path / "out" / "datasources" / "charging.yml").read_text())["datasources"]
    assert {s["uid"]: s["url"] for s in sources} == {"prometheus": "http://127.0.0.1:19090",
                                                     "session-store": "http://127.0.0.1:19885"}
    committed = yaml.safe_load((ROOT / "grafana/provisioning/datasources/datasources.yml").read_text())["datasources"]
    assert [{k: v for k, v in s.items() if k != "url"} for s in sources] == \
        [{k: v for k, v in s.items() if k != "url"} for s in committed], "the same datasources, other addresses"
    [provider] = yaml.safe_load((tmp_path / "out" / "dashboards" / "charging.yml").read_text())["providers"]
    path = Path(provider["options"]["path"])
    assert (path / "charging-overview.json").is_file() and path == ROOT / "grafana" / "dashboards"
    steps = capsys.readouterr().out
    assert "grafana-cli plugins install yesoreyeram-infinity-datasource" in steps
    assert f"GF_PATHS_PROVISIONING={(tmp_path / 'out').resolve()}" in steps


def test_on_victoriametrics_the_prometheus_datasource_is_victoriametrics(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("prometheus: {engine: victoriametrics}\nvictoriametrics: {listen: '127.0.0.1:18428'}\n")
    assert main(["grafana-provisioning", "--config", str(config), "--output", str(tmp_path / "out")]) == 0
    sources = yaml.safe_load((tmp_path / "out" / "datasources" / "charging.yml").read_text())["datasources"]
    assert {s["uid"]: s["url"] for s in sources}["prometheus"] == "http://127.0.0.1:18428"
