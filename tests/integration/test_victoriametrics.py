"""VictoriaMetrics as the suite's store (prometheus.engine: victoriametrics): the committed scrape
configurations and the rules as vmagent and vmalert read them, and history imported at its real time
(the price backfill's and the meter's OpenMetrics) read back exactly, once, by the queries the suite uses."""
from __future__ import annotations

import math
import subprocess
import time

import pytest
import yaml

from meter.publish import openmetrics as meter_openmetrics
from servicekit.config import load
from servicekit.history_import import ImportFailed, import_text, post
from suite.__main__ import compose_vmagent_config, reference_vmagent_config
from testkit import ROOT
from testkit.ports import free_port
from testkit.stack import Stack

pytestmark = pytest.mark.integration

COMPONENT_JOBS = ("twc", "fleet", "vehicle", "price", "session_store", "meter")


@pytest.mark.parametrize("name, render, config", [
    ("scrape.yml", reference_vmagent_config, {}),
    ("compose-scrape.yml", compose_vmagent_config, "compose/config.yaml"),
])
def test_committed_scrape_configs_are_the_renderings_and_vmagent_accepts_them(name, render, config) -> None:
    settings = load(yaml.safe_load((ROOT / config).read_text()) if config else {}, {}, {})
    committed = ROOT / "victoriametrics" / name
    flag = " --compose --config compose/config.yaml" if config else ""
    assert committed.read_text() == render(settings), \
        f"regenerate with: charging-suite prometheus-config --vmagent{flag} > victoriametrics/{name}"
    result = subprocess.run(["vmagent", f"-promscrape.config={committed}", "-promscrape.config.dryRun",
                             "-loggerLevel=ERROR"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    jobs = {job["job_name"] for job in yaml.safe_load(committed.read_text())["scrape_configs"]}
    assert jobs == {*COMPONENT_JOBS, "victoriametrics", "vmagent", "vmalert", "alertmanager"}


def test_vmalert_accepts_every_rule_file_and_refuses_a_broken_one(tmp_path) -> None:
    def check(pattern: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["vmalert", "-dryRun", f"-rule={pattern}", "-loggerLevel=ERROR"],
                              capture_output=True, text=True, timeout=30)
    ok = check(str(ROOT / "rules" / "*.yml"))
    assert ok.returncode == 0, ok.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n- name: x\n  rules:\n  - alert: A\n    expr: rate(\n")
    assert check(str(broken)).returncode != 0, "a dry run that accepts anything checks nothing"


def test_openmetrics_becomes_the_import_format_with_millisecond_timestamps() -> None:
    text, count = import_text('# HELP x y\n# TYPE x gauge\nx{a="b } c"} 1.5 1700000000\ny 2 1700000000.123\n# EOF\n')
    assert count == 2
    assert text == 'x{a="b } c"} 1.5 1700000000000\ny 2 1700000000123\n'
    with pytest.raises(ValueError, match="not a sample with a timestamp"):
        import_text("x 1\n")


def test_imported_history_is_read_back_exactly_once(tmp_path) -> None:
    """Prices repeat at the same timestamps (a backfill run again, then scraped), meter corrections sit a
    millisecond apart: every distinct sample counts once, and only once."""
    with Stack(tmp_path) as stack:
        vm = stack.victoria_metrics({})
        end = math.floor(time.time() / 300) * 300 - 3600
        prices = "".join(f'electricity_price_5m_cents_per_kwh{{provider="comed"}} {i % 7 + 1.5} {end - i * 300}\n'
                         for i in range(288))
        assert post(vm.url, prices) == 288
        assert post(vm.url, prices) == 288         # run again: the same samples
        read_end = (end - 7200) * 1000
        rows = [(1, 'utility_meter_read_energy_joules{utility="comed"}', read_end - 1, 1.8e6),
                (2, 'utility_meter_read_energy_joules{utility="comed"}', read_end - 2, -0.2e6),   # a correction
                (3, 'utility_meter_read_energy_joules{utility="comed"}', read_end - 1800_001, 0.9e6)]
        assert post(vm.url, meter_openmetrics(rows)) == 3
        at = end + 60
        vm.wait_for("count_over_time(utility_meter_read_energy_joules[1d]) == 3", 15)
        assert vm.value("count_over_time(electricity_price_5m_cents_per_kwh[1d])", at) == 288
        assert vm.value("sum_over_time(electricity_price_5m_cents_per_kwh[1d])", at) == pytest.approx(
            sum(i % 7 + 1.5 for i in range(288)))
        assert vm.value("sum_over_time(utility_meter_read_energy_joules[1d])", at) == pytest.approx(2.5e6)


def test_an_unreachable_import_api_raises_for_the_caller_to_keep_its_rows() -> None:
    with pytest.raises(ImportFailed, match=r"127\.0\.0\.1:\d+/api/v1/import/prometheus unreachable"):
        post(f"http://127.0.0.1:{free_port()}", "x 1 1700000000\n", timeout=2)
