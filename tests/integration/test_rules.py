"""Rules: promtool checks them, promtool tests every alert and recording rule, every alert is documented."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import yaml

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "rules").glob("*.yml"))
TEST_FILES = sorted((ROOT / "rules" / "tests").glob("*_test.yml"))


def rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def test_promtool_check_rules_is_clean() -> None:
    result = subprocess.run(["promtool", "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not re.search(r"(?i)warn|error", result.stdout + result.stderr), result.stdout + result.stderr


@pytest.fixture(scope="module")
def promtool_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """`promtool test rules` of every selected test file, all started at once: the files take from a
    fraction of a second to many seconds of one core each, and side by side they use every core."""
    selected = [item.callspec.params["test_file"] for item in request.session.items
                if item.module is request.module and "test_file" in getattr(getattr(item, "callspec", None), "params", {})]
    logs = tmp_path_factory.mktemp("promtool")
    runs = {}
    for test_file in selected:
        with open(logs / f"{test_file.name}.log", "w") as output:
            runs[test_file] = (subprocess.Popen(["promtool", "test", "rules", str(test_file)], stdout=output,
                                                stderr=subprocess.STDOUT, cwd=test_file.parent),
                               logs / f"{test_file.name}.log")
    yield runs
    for process, _ in runs.values():
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(test_file: Path, promtool_runs: dict) -> None:
    process, log = promtool_runs[test_file]
    returncode = process.wait(timeout=120)
    assert returncode == 0, log.read_text()


def test_every_alert_and_recording_rule_has_a_promtool_case() -> None:
    tested_alerts, tested_exprs = set(), []
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested_alerts |= {t["alertname"] for t in case.get("alert_rule_test", [])}
            tested_exprs += [t["expr"] for t in case.get("promql_expr_test", [])]
    for rule in rules():
        if "alert" in rule:
            assert rule["alert"] in tested_alerts, f"alert {rule['alert']} has no promtool test"
        else:
            assert any(rule["record"] in expr for expr in tested_exprs), f"{rule['record']} has no promtool test"


def test_every_alert_fires_in_some_case_and_is_silent_in_another() -> None:
    firing, silent = set(), set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert alerts <= firing, f"never shown firing: {alerts - firing}"
    assert alerts <= silent, f"never shown silent: {alerts - silent}"


def test_every_alert_has_severity_summary_description_and_a_runbook_in_docs_alerts() -> None:
    """runbook_url is docs/alerts.md#<alertname>, relative to the repository root (as notifications
    resolve it against alertmanager.runbook_base_url), and the page has that runbook's heading."""
    page = (ROOT / "docs" / "alerts.md").read_text()
    runbooks = page.split("\n## Runbooks\n", 1)[1]
    anchors = {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^### (.+)$", runbooks, re.M)}
    for rule in rules():
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        assert annotations["runbook_url"] == f"docs/alerts.md#{rule['alert'].lower()}", rule["alert"]
        assert rule["alert"].lower() in anchors, f"docs/alerts.md has no runbook '### {rule['alert']}' under '## Runbooks'"
    alerts = {rule["alert"].lower() for rule in rules() if "alert" in rule}
    assert not anchors - alerts, f"runbooks of no alert in docs/alerts.md: {sorted(anchors - alerts)}"


# A value an annotation prints: `printf "%.1f" $value`, `humanizeDuration $value`, or a query's first
# value `{{ with QUERY }}{{ . | first | value | printf "%.1f" }}` (or printed as it is).
PRINTED_VALUE = re.compile(r'(?P<format>printf "[^"]*"|humanize\w*) \$value'
                           r'|\{\{ with (?P<query>.+?) \}\}\{\{ \. \| first \| value(?: \| (?P<query_format>printf "[^"]*"))? \}\}')


def printed_values(annotation: str) -> dict[str, set[str]]:
    """What an annotation prints, and how: {value or query: {formats}}."""
    found: dict[str, set[str]] = {}
    for match in PRINTED_VALUE.finditer(annotation):
        if match["format"]:
            found.setdefault("$value", set()).add(match["format"])
        else:
            found.setdefault(match["query"], set()).add(match["query_format"] or "as it is")
    return found


def test_summary_and_description_print_each_value_alike() -> None:
    """A notification that says 1.0 kWh in its title and 0.97 kWh below it (or 60 °C and 60.5 °C)
    makes the reader wonder which is right: a value both print is printed the same way in both."""
    assert printed_values('{{ with printf "q{unit=%q}" $labels.unit | query }}{{ . | first | value | printf "%.2f" }}'
                          '{{ end }} at {{ printf "%.0f" $value }}') == {
        'printf "q{unit=%q}" $labels.unit | query': {'printf "%.2f"'}, "$value": {'printf "%.0f"'}}
    for rule in rules():
        if "alert" not in rule:
            continue
        summary = printed_values(rule["annotations"]["summary"])
        description = printed_values(rule["annotations"]["description"])
        for value in summary.keys() & description.keys():
            assert summary[value] == description[value], (
                f"{rule['alert']}: the summary prints {value} with {summary[value]}, the description with "
                f"{description[value]}")
