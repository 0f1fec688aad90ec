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
            # All is .*: every series in PromQL, the unlabelled ones too; the session store reads it as no filter
            assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*", name
            assert variable["datasource"]["uid"] == "${datasource}", name
            assert variable["query"].startswith("label_values("), name
    assert "charging" in dashboard["tags"]
    assert any(link["type"] == "dashboards" and link["tags"] == ["charging"] and link["includeVars"]
               and link["keepTime"] for link in dashboard["links"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"


@pytest.mark.parametrize("dashboard", list(dashboards()), ids=lambda d: d["uid"])
def test_dashboard_has_the_site_variable_and_the_session_store_one_where_it_reads_the_store(dashboard: dict) -> None:
    """Multi-site: `site` (All = .*, which an unlabelled series matches too) after `datasource`; the filters list
    the chosen sites' values; `store`, the site's session store, where a panel reads it."""
    variables = dashboard["templating"]["list"]
    names = [v["name"] for v in variables]
    site = variables[1]
    assert names[:2] == ["datasource", "site"] and site["label"] == "Site" and site["type"] == "query"
    assert site["query"] == 'label_values(up{job=~"twc|fleet|vehicle|price|session_store|meter"}, site)'
    assert site["multi"] and site["includeAll"] and site["allValue"] == ".*"
    for variable in variables[2:]:
        if variable["type"] == "query":
            assert re.fullmatch(r'label_values\(\w+\{(.+,)?site=~"\$site"\}, \w+\)', variable["query"]), variable["name"]
    store = any(p.get("datasource", {}).get("type") == "yesoreyeram-infinity-datasource" for p in panels(dashboard))
    assert ("store" in names) == store
    if store:
        variable = variables[2]
        assert (variable["name"], variable["type"], variable["label"]) == ("store", "datasource", "Session store")
        assert variable["query"] == "yesoreyeram-infinity-datasource" and variable["regex"] == "/^Session store/"
        assert variable["current"]["value"] == "session-store", "a single-site install's datasource by default"


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
            assert panel["datasource"] == {"type": "yesoreyeram-infinity-datasource", "uid": "${store}"}, where
            assert all(t["datasource"] == panel["datasource"] for t in panel["targets"]), where
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
    """In queries, legends, Infinity parameters, transformation options and datasources (Grafana interpolates
    them)."""
    builtins = {"__range", "__range_s", "__range_ms", "__interval", "__interval_ms", "__rate_interval", "__from",
                "__to", "__auto"}
    for dashboard in dashboards():
        defined = {v["name"] for v in dashboard["templating"]["list"]} | builtins
        for panel in panels(dashboard):
            texts = [json.dumps(panel.get("transformations", [])), json.dumps(panel.get("datasource"))]
            for target in panel["targets"]:
                texts += [target.get("expr") or json.dumps(target["url_options"]), target.get("legendFormat", ""),
                          json.dumps(target["datasource"])]
            for text in texts:
                used = {a or b for a, b in re.findall(r"\$\{(\w+)[^}]*\}|\$(\w+)", text)}
                assert used <= defined | {n for n in used if n.isdigit()}, f"{panel['title']}: {used - defined}"


def test_series_extraction() -> None:
    names, regexes = series_in('sum by (unit) (increase(charging_session_energy_joules_total{unit=~"$unit"}'
                               '[1d] offset -1d)) / 3.6e6 + on() group_left() max(electricity_price:lookback_prices)'
                               ' - time() + {__name__=~"twc_up|tesla_vehicle_up"}')
    assert names == {"charging_session_energy_joules_total", "electricity_price:lookback_prices"}
    assert regexes == ["twc_up|tesla_vehicle_up"]


SITE_ADDED = re.compile(r'\{site=~"\$site"\}|,site=~"\$site"')


def exprs_of(uid: str) -> dict[str, list[str]]:
    """Panel title -> its PromQL queries, of one dashboard, as the board wrote them: without the site matcher
    q() adds to every selector (tests/unit/test_promql.py checks it is on every one)."""
    dashboard = next(d for d in dashboards() if d["uid"] == uid)
    return {p["title"]: [SITE_ADDED.sub("", t["expr"]) for t in p["targets"] if "expr" in t] for p in panels(dashboard)}


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
    assert prices["With delivery"] == ["max by (site) (electricity_price_hour_projected_cents_per_kwh)"
                                       " + on(site) max by (site) (electricity_price_delivery_cents_per_kwh)"]
    graph = " ".join(prices["This hour, the billed hours and their 30-day percentiles · $site"])
    for name in ("electricity_price_hour_projected_cents_per_kwh", "electricity_price_billed_cents_per_kwh",
                 "electricity_price_5m_cents_per_kwh", "electricity_price:billed_lookback_percentile_cents_per_kwh"):
        assert name in graph, name
    assert prices["Published this hour"] == ["max by (site) (electricity_price_hour_published_prices)"]

    overview = exprs_of("charging-overview")
    assert overview["Charging cost now"] == ["sum(charging:cost_dollars_per_hour)"]     # the sites' costs added up
    assert overview["Price now"] == ["max by (site) (electricity_price_hour_projected_cents_per_kwh)",
                                     "max by (site) (electricity_price_cents_per_kwh)"]   # each site's zone
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
        ' or min_over_time(x_total{unit=~"$unit"}[$__range]) unless on(site) ('
        'last_over_time(charging_session_store_up[1d] offset $__range)'
        ' or last_over_time(charging_session_first_recorded_timestamp_seconds[1d]) >= time() - $__range_s)'
        ' or 0 * last_over_time(x_total{unit=~"$unit"}[1d])))')
    day = counted("x_total", DAY, " by (unit) ")
    assert day.startswith("sum by (unit) (last_over_time(x_total[1d] offset -1d) - (last_over_time(x_total[1d]) or"
                          " min_over_time(x_total[1d] offset -1d) unless on(site) (")
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
    assert all(re.match(r"(sum|max) by \(site, hours_ahead\) \(", e) for e in exprs), exprs   # each site's plan
    assert 'smart_charging_plan_hour_energy_joules{vehicle=~"$vehicle",site=~"$site"}' in exprs[0]
    assert exprs[0].endswith("/ 3.6e6")
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


# ------------------------------------------------------------------------- issue 17, part 5

def board(uid: str) -> dict:
    return next(d for d in dashboards() if d["uid"] == uid)


def panel(uid: str, title: str) -> dict:
    return next(p for p in panels(board(uid)) if p["title"] == title)


def variable(dashboard: dict, name: str) -> dict:
    return next(v for v in dashboard["templating"]["list"] if v["name"] == name)


def test_the_panels_of_the_original_plan_exist() -> None:
    wanted = {
        "energy-costs": ["Charging time", "Energy per hour", "Cumulative energy", "Best charging hours",
                         "Price by hour of day", "Energy and cost per unit", "Energy: this year against last",
                         "Charging cost: this year against last"],
        "wall-connectors": ["All Wall Connectors", "Units charging", "Vehicles connected", "Today's sessions",
                            "Energy this week and last", "Cost this week and last", "Sessions this week and last"],
        "vehicle-status": ["Charges", "Energy added: home and away", "Cost: home and away"],
        "charging-overview": ["Recent sessions", "Who is charging where"],
    }
    for uid, titles in wanted.items():
        found = {p["title"] for p in panels(board(uid))}
        assert set(titles) <= found, f"{uid}: missing {set(titles) - found}"


def celsius_targets() -> Iterator[tuple[str, dict, dict]]:
    for dashboard in dashboards():
        for p in panels(dashboard):
            for target in p["targets"]:
                if "_celsius" in target.get("expr", ""):
                    yield dashboard["uid"], p, target


def test_temperatures_follow_the_temperature_unit_variable() -> None:
    """°C or °F: the queries convert with the variable's scale ((x + 40) x 9/5 - 40 = x x 9/5 + 32), the series
    are named with the unit's text, and as Grafana interpolates neither a panel's unit nor its thresholds,
    series named °F get the fahrenheit unit and the thresholds converted."""
    found = list(celsius_targets())
    assert {uid for uid, _, _ in found} == {"wall-connector-diagnostics", "vehicle-status"}
    for uid in ("wall-connector-diagnostics", "vehicle-status"):
        choice = variable(board(uid), "temperature_unit")
        assert choice["type"] == "custom" and not choice["multi"] and not choice["includeAll"]
        assert [(o["text"], o["value"]) for o in choice["options"]] == [("°C", "1"), ("°F", "1.8")]
        assert choice["current"]["value"] == "1" and choice["query"] == "°C : 1,°F : 1.8"
    for uid, p, target in found:
        where = f"{uid} / {p['title']}"
        match = re.fullmatch(r"\(\((.+)\) \+ 40\) \* \$temperature_unit - 40", target["expr"])
        assert match, where
        assert target["legendFormat"].endswith(" ${temperature_unit:text}"), where
        for celsius, scale, shown in ((100, "1", 100), (100, "1.8", 212), (-40, "1.8", -40), (60, "1.8", 140)):
            expr = target["expr"].replace(match.group(1), str(celsius)).replace("$temperature_unit", scale)
            assert eval(expr) == pytest.approx(shown), where   # PromQL arithmetic is Python's here
        assert p["fieldConfig"]["defaults"]["unit"] == "celsius", where
        override = next(o for o in p["fieldConfig"]["overrides"] if o["matcher"]["id"] == "byRegexp")
        assert re.fullmatch(override["matcher"]["options"], "garage handle °F")
        assert not re.fullmatch(override["matcher"]["options"], "garage handle °C")
        properties = {x["id"]: x["value"] for x in override["properties"]}
        assert properties["unit"] == "fahrenheit", where
        celsius_steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [s["value"] for s in properties["thresholds"]["steps"]] == [
            None if s["value"] is None else round(s["value"] * 1.8 + 32, 1) for s in celsius_steps], where
    steps = panel("wall-connector-diagnostics", "Temperatures")["fieldConfig"]["overrides"][0]["properties"][1]
    assert [s["value"] for s in steps["value"]["steps"]] == [None, 122, 140]   # the 50 and 60 °C alert colours


TIME_COLUMNS = ("timestamp", "timestamp_epoch", "timestamp_epoch_s")


def test_table_times_follow_the_time_format_variable() -> None:
    """24- or 12-hour: Grafana interpolates no unit (time:HH:mm is fixed in the JSON) but does interpolate
    transformation options, so every moment of an API table is turned into text in ${time_format}."""
    checked = 0
    for dashboard in dashboards():
        for p in panels(dashboard):
            times = [c["text"] for t in p["targets"] for c in t.get("columns", []) if c["type"] in TIME_COLUMNS]
            if p["type"] != "table" or not times:
                continue
            checked += 1
            where = f"{dashboard['uid']} / {p['title']}"
            choice = variable(dashboard, "time_format")
            assert [(o["text"], o["value"]) for o in choice["options"]] == [
                ("24-hour", "YYYY-MM-DD HH:mm"), ("12-hour", "YYYY-MM-DD hh:mm A")], where
            assert choice["current"]["text"] == "24-hour" and choice["type"] == "custom", where
            conversions = [c for step in p["transformations"] if step["id"] == "convertFieldType"
                           for c in step["options"]["conversions"]]
            assert conversions == [{"targetField": name, "destinationType": "string", "dateFormat": "${time_format}",
                                    "timezone": "browser"} for name in times], where
            first = p["targets"][0]["columns"][0]
            if first["type"] in TIME_COLUMNS:     # as text, "01:00 PM" sorts before "11:00 AM": the API's order
                assert not p.get("options", {}).get("sortBy"), where
    assert checked >= 8


def test_session_store_tables_follow_the_unit_and_vehicle_filters() -> None:
    """`${unit:csv}` / `${vehicle:csv}` (All sends the variables' allValue `.*`, no filter for the store).
    Routes without a filter parameter are listed here."""
    accepts = {"/api/sessions": {"unit", "vehicle"}, "/api/summary": {"unit", "vehicle"},
               "/api/chargers": {"unit"}, "/api/charges": {"vehicle"}}
    unfiltered = {"/api/sessions/current", "/api/smart-charging", "/api/smart-charging/actions", "/api/meter"}
    for dashboard in dashboards():
        for p in panels(dashboard):
            for target in p["targets"]:
                if "url" not in target:
                    continue
                assert target["url"] in set(accepts) | unfiltered, target["url"]
                params = {x["key"]: x["value"] for x in target["url_options"]["params"]}
                for name in accepts.get(target["url"], ()):
                    assert params.get(name) == f"${{{name}:csv}}", f"{dashboard['uid']} / {p['title']}: {name}"
                    chosen = variable(dashboard, name)
                    assert chosen["multi"] and chosen["includeAll"] and chosen["allValue"] == ".*", name


def test_all_wall_connectors_is_one_row_per_unit_joined_on_the_unit_label() -> None:
    p = panel("wall-connectors", "All Wall Connectors")
    assert p["type"] == "table" and p["timeFrom"] == "now/d"
    assert all(t["instant"] and t["format"] == "table" for t in p["targets"])
    exprs = [t["expr"] for t in p["targets"]]
    # by (site, unit): a "garage" at each of two sites is two rows, merged on both labels
    assert exprs[0] == 'max by (site, unit) (tesla_wall_connector_state_code{unit=~"$unit",site=~"$site"})'
    assert exprs[1] == 'max by (site, unit) (charging:unit_power_watts{unit=~"$unit",site=~"$site"})'
    assert exprs[2] == 'max by (site, unit, vehicle) (tesla_wall_connector_vehicle_info{unit=~"$unit",site=~"$site"})'
    assert "charging_session_energy_joules_total" in exprs[3] and exprs[3].startswith("sum by (site, unit) (")
    assert "charging_sessions_completed_total" in exprs[4] and exprs[4].startswith("sum by (site, unit) (")
    steps = {t["id"]: t["options"] for t in p["transformations"]}
    assert list(steps) == ["merge", "organize"]
    assert steps["organize"]["renameByName"] == {"Value #A": "State", "Value #B": "Power",
                                                 "Value #D": "Energy today", "Value #E": "Sessions today"}
    assert steps["organize"]["excludeByName"] == {"Time": True, "Value #C": True}   # the info metric's 1
    index = steps["organize"]["indexByName"]
    assert sorted(index, key=index.get) == ["site", "unit", "vehicle", "Value #A", "Value #B", "Value #D", "Value #E"]


def test_hours_of_the_day_are_local_to_the_browser() -> None:
    """Prometheus has only UTC: the queries add the browser's UTC offset at the end of the range (modulo a day:
    UTC+13 and UTC-11 have the same hours of the day), computed from $__to's local clock (H, m, s: unpadded,
    as PromQL reads a leading zero as octal) and its Unix ms."""
    from datetime import datetime
    from zoneinfo import ZoneInfo
    from grafana.boards import LOCAL_OFFSET_S
    for zone, moment in (("America/Chicago", "2026-01-15T23:30:59.999"), ("America/Chicago", "2026-07-01T00:05:00"),
                         ("Asia/Kolkata", "2026-03-01T04:59:30.5"), ("UTC", "2026-03-01T12:00:00"),
                         ("Pacific/Auckland", "2026-01-01T00:00:00"), ("Pacific/Honolulu", "2026-01-01T23:59:59")):
        local = datetime.fromisoformat(moment).replace(tzinfo=ZoneInfo(zone))
        tokens = {"H": str(local.hour), "m": str(local.minute), "s": str(local.second),
                  "x": str(int(local.timestamp() * 1000))}
        expr = re.sub(r"\$\{__to:date:(\w+)\}", lambda m: tokens[m.group(1)], LOCAL_OFFSET_S)
        assert eval(expr) == local.utcoffset().total_seconds() % 86400, (zone, moment)   # the hour of the day's
    for title in ("Best charging hours", "Price by hour of day"):
        for target in panel("energy-costs", title)["targets"]:
            assert 'count_values("hour", hour(vector(time() - ' in target["expr"], title
            assert target["instant"] and target["format"] == "table", title


def test_year_over_year_compares_the_calendar_months_of_two_years_from_the_session_store() -> None:
    """Prometheus keeps 40 days: the months come from the store's summaries, this year's from 1 January and
    last year's from its 1 January to this year's (the panel's time is the last year, so $__from is in it)."""
    p = panel("energy-costs", "Energy: this year against last")
    assert p["type"] == "barchart" and p["timeFrom"] == "1y" and p["options"]["xField"] == "Month"
    ranges = [{x["key"]: x["value"] for x in t["url_options"]["params"]} for t in p["targets"]]
    assert [(r["period"], r["from"], r["to"]) for r in ranges] == [
        ("month", "${__to:date:YYYY}-01-01", "${__to:date:seconds}"),
        ("month", "${__from:date:YYYY}-01-01", "${__to:date:YYYY}-01-01")]
    assert [[c["text"] for c in t["columns"]] for t in p["targets"]] == [["Month", "This year"],
                                                                         ["Month", "Last year"]]
    assert [t["id"] for t in p["transformations"]] == ["convertFieldType", "convertFieldType", "merge", "sortBy"]
    assert p["transformations"][1]["options"]["conversions"][0]["dateFormat"] == "MM MMM"   # "03 Mar" sorts


def test_this_week_is_compared_with_last_week_to_the_same_moment() -> None:
    for title in ("Energy this week and last", "Cost this week and last", "Sessions this week and last"):
        p = panel("wall-connectors", title)
        assert p["timeFrom"] == "now/w"
        this, last = (t["expr"] for t in p["targets"])
        assert last == f"last_over_time(({this})[5m:1m] offset 1w)", title


# ------------------------------------------------------------------------------- several sites at once

NOT_ADDITIVE = re.compile(r"\b(max|min|avg|quantile|topk|bottomk|stddev)\s*(?:by\s*\(([^)]*)\))?\s*\(")


def test_queries_keep_the_sites_apart() -> None:
    """With several sites selected (All), a query may add additive quantities up over the sites, but never takes
    the highest, lowest or mean of two sites (prices of two zones, states, ages: `max by (site)`), never merges
    two sites' units or vehicles of the same name (`by (site, unit)`), and joins a site's series only with the
    same site's (`on(site, ...)`; `on()` only with the site-less local hour of the day). Series named after a
    unit, charger or vehicle are named after their site too. tests/integration/test_dashboard_sites.py runs
    them on two sites."""
    checked = 0
    for dashboard in dashboards():
        for p in panels(dashboard):
            for target in p["targets"]:
                if "expr" not in target:
                    continue
                checked += 1
                expr, where = target["expr"], f"{dashboard['uid']} / {p['title']} / {target['refId']}"
                for aggregation, labels in re.findall(NOT_ADDITIVE, expr):
                    assert "site" in labels.split(", "), f"{where}: {aggregation} over sites: {expr}"
                for labels in re.findall(r"\bby\s*\(([^)]*)\)", expr):
                    names = set(labels.split(", "))
                    assert not names & {"unit", "vehicle", "charger"} or "site" in names, f"{where}: by ({labels})"
                for labels, rest in re.findall(r"\bon\s*\(([^)]*)\)\s*(\S+)", expr):
                    assert "site" in labels.split(", ") or rest == "group_left(hour)", f"{where}: on({labels})"
                legend = target.get("legendFormat", "")
                if re.search(r"\{\{(unit|vehicle|charger|target)\}\}", legend):
                    assert legend.startswith("{{site}} "), f"{where}: legend {legend!r}"
    assert checked >= 240
