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


# Several homes: every series of a home's jobs carries its `site` target label (none with a single
# home). Every output keeps it: aggregations group by it, joins between a home's series match on it;
# only joins with the constants of thresholds.yml (no site) match on nothing.
AGGREGATION = re.compile(r"\b(sum|min|max|avg|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)\s*"
                         r"(?P<grouping>(?:by|without)\s*\([^)]*\))?\s*\(")
MATCHING = re.compile(r"\b(on|ignoring)\s*\((?P<labels>[^)]*)\)(?P<rest>\s*group_(?:left|right)\([^)]*\)\s*[\w:]+)?")


def site_problems(expr: str) -> list[str]:
    problems = []
    for match in AGGREGATION.finditer(expr):
        grouping = match["grouping"] or ""
        if not grouping.startswith("by") and not grouping.startswith("without"):
            problems.append(f"{match[0]!r} drops site: aggregate `by (site, ...)`")
        elif grouping.startswith("by") and "site" not in re.findall(r"\w+", grouping[2:]):
            problems.append(f"{match[0]!r} drops site: add it to `by`")
        elif grouping.startswith("without") and "site" in re.findall(r"\w+", grouping[7:]):
            problems.append(f"{match[0]!r} drops site")
    for match in MATCHING.finditer(expr):
        labels = re.findall(r"\w+", match["labels"])
        constant = (match[1] == "on" and not labels and match["rest"]
                    and match["rest"].split(")")[-1].strip().startswith("charging_threshold:"))
        if match[1] == "ignoring" and "site" in labels or match[1] == "on" and "site" not in labels and not constant:
            problems.append(f"{match[0]!r} joins across homes: match on site (only constants join on())")
    return problems


def test_site_lint_finds_what_drops_or_crosses_homes() -> None:
    assert site_problems("sum(x) or max by (unit) (y)") == [
        "'sum(' drops site: aggregate `by (site, ...)`", "'max by (unit) (' drops site: add it to `by`"]
    assert site_problems("x * on(unit) group_left(vehicle) y or on() z") == [
        "'on(unit) group_left(vehicle) y' joins across homes: match on site (only constants join on())",
        "'on()' joins across homes: match on site (only constants join on())"]
    assert site_problems("max by (site, unit) (min_over_time(x[5m])) > on() group_left() charging_threshold:t"
                         " and on(site, unit) max without (job) (y) * on (site) sum by(site)(z)") == []


def test_every_rule_keeps_the_site_label() -> None:
    problems = {rule.get("record") or rule["alert"]: site_problems(str(rule["expr"])) for rule in rules()}
    assert not {name: found for name, found in problems.items() if found}


def test_annotation_queries_read_the_alerts_own_home() -> None:
    """A query an annotation runs selects the alert's own site (`site=""` matches a single home's
    series without the label), and `$labels.site` is only ever tested with `with`: vmalert's
    templates (unlike Prometheus's) give a missing label as no value, which `printf "%q"` turns into
    `%!q(<nil>)`, a query error that drops the alert. `index $labels "site"` gives "" instead."""
    for rule in rules():
        if "alert" not in rule:
            continue
        for name, text in rule["annotations"].items():
            assert "$labels.site" not in text.replace("{{ with $labels.site }}", ""), \
                f"{rule['alert']} {name}: $labels.site outside `with` (use index $labels \"site\")"
            for query in re.findall(r"\{\{ with (.+?) \}\}", text):
                if not query.endswith("| query") and not query.startswith("query "):
                    continue
                if query.startswith("query "):
                    assert re.fullmatch(r'query "charging_threshold:\w+"', query), \
                        f"{rule['alert']} {name}: {query} is not a constant: select site=%q with printf"
                else:
                    assert re.search(r"[{,]site=%q}", query) and query.endswith(' (index $labels "site") | query'), \
                        f"{rule['alert']} {name}: {query} does not select the alert's site"


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
