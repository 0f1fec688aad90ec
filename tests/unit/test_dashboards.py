"""The committed Grafana dashboards are the generator's output and follow the suite's rules: stable uids,
the datasource variable and the dashboard links everywhere, a unit and thresholds on every panel, every
Prometheus query through `${datasource}` and naming only metrics and recording rules that exist."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from grafana.generate import OUTPUT, main, out_of_date, rendered
from suite.reference import exporter_rows, meter_rows

ROOT = Path(__file__).resolve().parents[2]
UIDS = {
    "charging-overview": "Charging Overview", "wall-connectors": "Wall Connectors",
    "wall-connector-diagnostics": "Wall Connector diagnostics", "session-history": "Session History",
    "energy-costs": "Energy & Costs", "vehicle-status": "Vehicle Status",
    "electricity-prices": "Electricity Prices", "suite-health": "Suite health", "meter-bills": "Meter & Bills",
}
# Series Prometheus itself creates.
PROMETHEUS_SERIES = {"ALERTS", "ALERTS_FOR_STATE", "up", "scrape_duration_seconds", "scrape_samples_scraped",
                     "scrape_samples_post_metric_relabeling", "scrape_series_added"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
            "inf", "nan"}


def dashboards() -> Iterator[dict]:
    for path in sorted(OUTPUT.glob("*.json")):
        yield json.loads(path.read_text())


def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            yield panel
        yield from panel.get("panels", [])


def known_series() -> set[str]:
    """Every metric the suite exports (with histogram suffixes), its recording rules and Prometheus's own."""
    from session_store.metrics import REFERENCE as SESSIONS
    from session_store.smart_metrics import REFERENCE as SMART
    rows = list(SESSIONS) + list(SMART) + meter_rows()
    for exporter in ("twc", "fleet", "vehicle", "price"):
        rows += exporter_rows(exporter)
    names = set(PROMETHEUS_SERIES)
    for name, kind, *_ in rows:
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    for path in (ROOT / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


def series_in(expr: str) -> tuple[set[str], list[str]]:
    """Metric names an expression selects, and its `__name__=~` regexes."""
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "0", expr)
    regexes = re.findall(r'__name__=~"([^"]+)"', text)
    text = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|offset\s+-?\d+[smhdwy]', " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"(?<![\w:])\d+(\.\d+)?(e[+-]?\d+)?", " ", text)
    names = set()
    for token in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        if token.group() not in KEYWORDS and not text[token.end():].lstrip().startswith("("):
            names.add(token.group())
    return names, regexes


def test_committed_dashboards_are_the_generators_output() -> None:
    stale = out_of_date()
    assert not stale, f"grafana/dashboards is out of date ({', '.join(stale)}): run `python -m grafana.generate`"


def test_check_mode_names_out_of_date_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--output", str(tmp_path)]) == 0
    assert main(["--check", "--output", str(tmp_path)]) == 0
    (tmp_path / "suite-health.json").write_text("{}\n")
    (tmp_path / "retired.json").write_text("{}\n")
    assert main(["--check", "--output", str(tmp_path)]) == 1
    assert "retired.json, suite-health.json; run: python -m grafana.generate" in capsys.readouterr().err


def test_generation_is_deterministic() -> None:
    first, second = rendered(), rendered()
    assert first == second
    for text in first.values():
        assert text.endswith("}\n") and text == json.dumps(json.loads(text), sort_keys=True, indent=2,
                                                            ensure_ascii=False) + "\n"


def test_uids_are_stable_unique_and_name_the_files() -> None:
    found = {d["uid"]: d["title"] for d in dashboards()}
    assert found == UIDS
    assert sorted(p.stem for p in OUTPUT.glob("*.json")) == sorted(UIDS)


@pytest.mark.parametrize("dashboard", list(dashboards()), ids=lambda d: d["uid"])
def test_dashboard_has_the_datasource_variable_filters_and_links(dashboard: dict) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name, variable in variables.items():
        if variable["type"] == "query":
            assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*", name
            assert variable["datasource"]["uid"] == "${datasource}", name
            assert variable["query"].startswith("label_values("), name
    assert "charging" in dashboard["tags"]
    assert any(link["type"] == "dashboards" and link["tags"] == ["charging"] and link["includeVars"]
               and link["keepTime"] for link in dashboard["links"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"


@pytest.mark.parametrize("dashboard", list(dashboards()), ids=lambda d: d["uid"])
def test_every_panel_has_a_unit_thresholds_and_the_right_datasource(dashboard: dict) -> None:
    for panel in panels(dashboard):
        where = f"{dashboard['uid']} / {panel['title']}"
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), f"{where}: no unit"
        assert defaults.get("thresholds", {}).get("steps"), f"{where}: no thresholds"
        assert panel["targets"], f"{where}: no query"
        kinds = {t["datasource"]["type"] for t in panel["targets"]}
        assert kinds == {panel["datasource"]["type"]}, f"{where}: mixed datasources"
        if panel["datasource"]["type"] == "prometheus":
            assert panel["datasource"]["uid"] == "${datasource}", where
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"]), where
            assert all(t["instant"] != t["range"] for t in panel["targets"]), f"{where}: instant or range"
        else:
            assert panel["datasource"] == {"type": "yesoreyeram-infinity-datasource", "uid": "session-store"}, where
            assert all(t["url"].startswith("/api/") and t["parser"] == "backend" for t in panel["targets"]), where
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)) and all(refs), f"{where}: refIds"


@pytest.mark.parametrize("dashboard", list(dashboards()), ids=lambda d: d["uid"])
def test_panels_fit_the_grid_without_overlapping(dashboard: dict) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for cell in ((x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                     for y in range(grid["y"], grid["y"] + grid["h"])):
            assert cell not in taken, f"{panel['title']} overlaps {taken[cell]}"
            taken[cell] = panel["title"]


def test_price_panels_use_the_price_colours() -> None:
    colours = [("green", None), ("yellow", 4), ("orange", 6), ("red", 8)]
    # the 4/6/8 colours are for the supply price; the meter's effective rates are all-in (delivery included)
    not_supply = {"With delivery", "Delivery rate", "Effective rate (month to date)", "12-month effective rate",
                  "Effective rate history", "Effective rate distribution"}
    price_panels = [p for d in dashboards() for p in panels(d)
                    if p["fieldConfig"]["defaults"]["unit"] == "¢/kWh" and p["title"] not in not_supply]
    assert len(price_panels) >= 10
    for panel in price_panels:
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [(s["color"], s["value"]) for s in steps] == colours, panel["title"]


def test_queries_name_only_metrics_and_rules_that_exist() -> None:
    known = known_series()
    unknown: list[str] = []
    for dashboard in dashboards():
        exprs = [(p["title"], t["expr"]) for p in panels(dashboard) for t in p["targets"] if "expr" in t]
        exprs += [(f"${v['name']}", re.sub(r"label_values\((.+),\s*\w+\)", r"\1", v["query"]))
                  for v in dashboard["templating"]["list"] if v["type"] == "query"]
        for title, expr in exprs:
            names, regexes = series_in(expr)
            unknown += [f"{dashboard['uid']} / {title}: {name}" for name in sorted(names - known)]
            unknown += [f"{dashboard['uid']} / {title}: __name__=~{r!r} matches nothing"
                        for r in regexes if not any(re.fullmatch(r, name) for name in known)]
    assert not unknown, "unknown series:\n" + "\n".join(unknown)


def test_queries_use_only_defined_variables() -> None:
    builtins = {"__range", "__range_s", "__range_ms", "__interval", "__interval_ms", "__rate_interval", "__from",
                "__to", "__auto"}
    for dashboard in dashboards():
        defined = {v["name"] for v in dashboard["templating"]["list"]} | builtins
        for panel in panels(dashboard):
            for target in panel["targets"]:
                text = target.get("expr") or json.dumps(target["url_options"])
                used = {a or b for a, b in re.findall(r"\$\{(\w+)[^}]*\}|\$(\w+)", text)}
                assert used <= defined | {n for n in used if n.isdigit()}, f"{panel['title']}: {used - defined}"


def test_series_extraction() -> None:
    names, regexes = series_in('sum by (unit) (increase(charging_session_energy_joules_total{unit=~"$unit"}'
                               '[1d] offset -1d)) / 3.6e6 + on() group_left() max(electricity_price:lookback_prices)'
                               ' - time() + {__name__=~"twc_up|tesla_vehicle_up"}')
    assert names == {"charging_session_energy_joules_total", "electricity_price:lookback_prices"}
    assert regexes == ["twc_up|tesla_vehicle_up"]


def exprs_of(uid: str) -> dict[str, list[str]]:
    """Panel title -> its PromQL queries, of one dashboard."""
    dashboard = next(d for d in dashboards() if d["uid"] == uid)
    return {p["title"]: [t["expr"] for t in p["targets"] if "expr" in t] for p in panels(dashboard)}


def test_billed_hours_are_read_over_a_window() -> None:
    """One sample per complete hour, stamped with its end: an instant selector is empty most of the hour, and
    the 5-minute prices averaged are not what is billed."""
    for dashboard in dashboards():
        for title, exprs in exprs_of(dashboard["uid"]).items():
            for expr in exprs:
                assert not re.search(r"electricity_price_billed_cents_per_kwh(?!\s*(\{[^}]*\})?\s*\[)", expr), \
                    f"{dashboard['uid']} / {title}: {expr}"
                assert "avg_over_time(electricity_price_5m_cents_per_kwh" not in expr, f"{dashboard['uid']} / {title}"


def test_prices_are_shown_as_billed_beside_the_5_minute_price() -> None:
    prices = exprs_of("electricity-prices")
    assert any("electricity_price_hour_projected_cents_per_kwh" in e for e in prices["This hour (projected)"])
    assert prices["With delivery"] == ["max(electricity_price_hour_projected_cents_per_kwh)"
                                       " + max(electricity_price_delivery_cents_per_kwh)"]
    graph = " ".join(prices["This hour, the billed hours and their 30-day percentiles"])
    for name in ("electricity_price_hour_projected_cents_per_kwh", "electricity_price_billed_cents_per_kwh",
                 "electricity_price_5m_cents_per_kwh", "electricity_price:billed_lookback_percentile_cents_per_kwh"):
        assert name in graph, name
    assert prices["Published this hour"] == ["max(electricity_price_hour_published_prices)"]

    overview = exprs_of("charging-overview")
    assert overview["Charging cost now"] == ["charging:cost_dollars_per_hour"]
    assert overview["Price now"] == ["max(electricity_price_hour_projected_cents_per_kwh)",
                                     "max(electricity_price_cents_per_kwh)"]
    assert "charging_session_reference_cost_dollars_total" in overview["Savings today"][0]

    costs = exprs_of("energy-costs")
    assert "avg_over_time(electricity_price_billed_cents_per_kwh[$__range])" in costs["Price paid vs billed hours"][1]
    assert "electricity_price_monthly_capacity_dollars" in costs["Total"][0]
    assert "charging_session_reference_cost_dollars_total" in costs["Savings vs the fixed rate"][0]
    assert costs["Provisional sessions"] == ['sum(charging_sessions_provisional{unit=~"$unit",vehicle=~"$vehicle"})']

    smart = " ".join(exprs_of("vehicle-status")["Price against the thresholds"])
    for name in ("smart_charging_price_cents_per_kwh", "smart_charging_five_minute_price_cents_per_kwh",
                 "smart_charging_hour_projected_cents_per_kwh", "smart_charging_stop_threshold_cents_per_kwh",
                 "smart_charging_resume_threshold_cents_per_kwh"):
        assert name in smart, name


def test_session_tables_show_effective_price_savings_and_finality() -> None:
    selectors = {}
    for dashboard in dashboards():
        for panel in panels(dashboard):
            for target in panel["targets"]:
                if "columns" in target:
                    selectors[dashboard["uid"], panel["title"]] = {c["selector"] for c in target["columns"]}
    assert {"effective_price_cents", "savings", "cost_final"} <= selectors["session-history", "Sessions"]
    assert {"effective_price_cents", "savings", "capacity_charge", "reference_cost", "final"} <= \
        selectors["energy-costs", "Months"]
    assert {"effective_price_cents", "savings"} <= selectors["energy-costs", "Weeks"]


SESSION_COUNTERS = ("charging_sessions_completed_total", "charging_session_energy_joules_total",
                    "charging_session_cost_dollars_total", "charging_session_reference_cost_dollars_total",
                    "charging_sessions_discarded_total", "charging_session_reconciliations_total")


def test_session_counters_are_read_as_window_deltas_that_count_new_series() -> None:
    """Issue 13: `increase()` misses the first session of a series that appears in the window (it starts at
    that session's value) and extrapolates; `counted()` takes the window's last value minus the one before
    it, from 0 for a series new in the window."""
    read = 0
    for dashboard in dashboards():
        for title, exprs in exprs_of(dashboard["uid"]).items():
            for expr in exprs:
                for name in SESSION_COUNTERS:
                    if name not in expr:
                        continue
                    read += 1
                    where = f"{dashboard['uid']} / {title}"
                    assert not re.search(rf"(increase|rate|delta)\({name}", expr), f"{where}: {name}"
                    assert f"last_over_time({name}" in expr and f"min_over_time({name}" in expr, where
                    assert "charging_session_store_up" in expr, where
                    assert "charging_session_first_recorded_timestamp_seconds" in expr, where
    assert read >= 20


def test_the_counted_form() -> None:
    from grafana.boards import DAY, RANGE, counted
    assert counted('x_total{unit=~"$unit"}', RANGE) == (
        'sum(last_over_time(x_total{unit=~"$unit"}[1d]) - ('
        'last_over_time(x_total{unit=~"$unit"}[1d] offset $__range)'
        ' or min_over_time(x_total{unit=~"$unit"}[$__range]) unless on() ('
        'last_over_time(charging_session_store_up[1d] offset $__range)'
        ' or last_over_time(charging_session_first_recorded_timestamp_seconds[1d]) >= time() - $__range_s)'
        ' or 0 * last_over_time(x_total{unit=~"$unit"}[1d])))')
    day = counted("x_total", DAY, " by (unit) ")
    assert day.startswith("sum by (unit) (last_over_time(x_total[1d] offset -1d) - (last_over_time(x_total[1d]) or"
                          " min_over_time(x_total[1d] offset -1d) unless on() (")
    assert "last_over_time(charging_session_store_up[1d]) or" in day and ">= time())" in day


def test_the_api_field_of_the_supply_price_is_supply_price_cents() -> None:
    for path in OUTPUT.glob("*.json"):
        assert "average_price_cents" not in path.read_text(), path.name
    selectors = {c["selector"] for d in dashboards() for p in panels(d) for t in p["targets"]
                 for c in t.get("columns", [])}
    assert "supply_price_cents" in selectors


def test_the_departure_plan_is_bars_per_hour_ahead_with_the_prices_on_a_second_axis() -> None:
    """Grafana's time series panels need a time x axis, and Trend (numeric x) is an alpha panel: the plan
    per clock hour ahead is a bar chart of instant tables keyed by hours_ahead, merged into the one frame
    a bar chart draws, the key made a number and sorted (as text, "10" sorts before "2")."""
    dashboard = next(d for d in dashboards() if d["uid"] == "vehicle-status")
    panel = next(p for p in panels(dashboard) if p["title"] == "Departure plan over the price forecast")
    assert panel["type"] == "barchart" and panel["options"]["xField"] == "hours_ahead"
    exprs = [t["expr"] for t in panel["targets"]]
    assert all(t["instant"] and t["format"] == "table" for t in panel["targets"])
    assert all(re.match(r"(sum|max) by \(hours_ahead\) \(", e) for e in exprs), exprs
    assert 'smart_charging_plan_hour_energy_joules{vehicle=~"$vehicle"}' in exprs[0] and exprs[0].endswith("/ 3.6e6")
    assert "smart_charging_plan_hour_price_cents_per_kwh" in exprs[1]
    assert "electricity_price_forecast_cents_per_kwh" in exprs[2]
    steps = [(t["id"], t["options"]) for t in panel["transformations"]]
    assert [step for step, _ in steps] == ["merge", "convertFieldType", "sortBy", "organize"]
    assert steps[1][1]["conversions"] == [{"targetField": "hours_ahead", "destinationType": "number"}]
    assert steps[2][1]["sort"] == [{"field": "hours_ahead", "desc": False}]
    names = steps[3][1]["renameByName"]
    assert sorted(names) == ["Value #A", "Value #B", "Value #C"]
    assert panel["fieldConfig"]["defaults"]["unit"] == "kwatth"
    overrides = {o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
                 for o in panel["fieldConfig"]["overrides"]}
    assert overrides["hours_ahead"]["unit"] == "none"      # not "3 kWh" under a bar
    for price in (names["Value #B"], names["Value #C"]):
        assert overrides[price]["unit"] == "¢/kWh" and overrides[price]["custom.axisPlacement"] == "right", price

    plan = exprs_of("vehicle-status")
    for title, metric in (("Next departure", "smart_charging_plan_departure_timestamp_seconds"),
                          ("Expected cost", "smart_charging_plan_expected_cost_dollars"),
                          ("Expected finish", "smart_charging_plan_expected_finish_timestamp_seconds"),
                          ("Deadline", "smart_charging_plan_deadline_at_risk"),
                          ("Day-ahead hours", "electricity_price_forecast_day_ahead_prices"),
                          ("Plans", "smart_charging_plan_trusted")):
        assert metric in plan[title][0], title
    assert [e.split("{")[0] for e in plan["State of charge: now, reachable, target"]] == [
        "smart_charging_plan_state_of_charge_percent", "smart_charging_plan_reachable_percent",
        "smart_charging_plan_target_percent"]
