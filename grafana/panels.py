"""Shared pieces of every dashboard, on top of grafana-foundation-sdk's builders.

Datasources, units, thresholds and value mappings are named once here; the panel functions set a
unit, thresholds, the datasource and the query type (instant for single values and tables, range
for graphs) on every panel, so no dashboard can forget one. The Infinity plugin has no typed query
in the SDK: `Infinity` builds one, implementing the SDK's Dataquery interface.

Sites: one Prometheus scrapes several homes and gives every series of a per-site job a `site` label.
Every board has a multi-value `site` variable; `q()` adds `site=~"$site"` to every vector selector of
every query (servicekit.promql.with_matcher), except those of series without a site (`without_site`),
and the filter variables list only the chosen sites' values. All is `.*`, which matches an unlabelled
series too: a single-site Prometheus without the label shows everything, as before. The session
store's tables read a `store` datasource variable: one Infinity datasource per site.

With several sites selected a query must not mix them (`per_site`, `by_site`, `site_legend`):
additive quantities (power, energy, cost, session counts) may be summed over the chosen sites (the
total), but a breakdown per unit or vehicle keeps `site` in its `by (...)`, since two homes may both
have a "garage"; non-additive ones (prices, percentiles, thresholds, states, ages, temperatures,
ratios) are per site (`max by (site)`), each series named with its site (`{{site}}`); joins between a
site's series match `on(site, ...)`. Over series without the label, `by (site)` is one unlabelled
series and `on(site)` is `on()`: a single-site Prometheus answers as before.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from grafana_foundation_sdk.builders import (
    bargauge, barchart, common as common_builders, dashboard, gauge, histogram as histogram_panel, prometheus, stat,
    statetimeline, table, timeseries,
)
from grafana_foundation_sdk.cog import builder as cogbuilder, variants as cogvariants
from grafana_foundation_sdk.models import common, dashboard as model, prometheus as prometheus_model

from servicekit.promql import with_matcher, without_site
from suite.prometheus_config import HOME_JOBS

TAG = "charging"
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
INFINITY_TYPE = "yesoreyeram-infinity-datasource"
SESSION_STORE = model.DataSourceRef(type_val=INFINITY_TYPE, uid="${store}")
SITE = "site"
SITE_MATCHER = 'site=~"$site"'
SITE_LEGEND = "{{site}}"
# A home's jobs (Prometheus gives their targets the `site` label); their `up` lists the sites.
SITE_JOBS = f'job=~"{"|".join(HOME_JOBS)}"'

# Grafana unit ids; unknown ids (the ¢/kWh and $/h) are shown as a suffix.
WATT, KWH, CENTS_PER_KWH, DOLLARS, DOLLARS_PER_HOUR = "watt", "kwatth", "¢/kWh", "currencyUSD", "$/h"
PERCENT, RATIO, SECONDS, DURATION, AGO = "percent", "percentunit", "s", "dtdurations", "dateTimeFromNow"
LOCAL_TIME = "dateTimeAsLocalNoDateIfToday"   # a moment (ms), its date only when it is not today
VOLT, AMPERE, HERTZ, CELSIUS, FAHRENHEIT, METERS = "volt", "amp", "hertz", "celsius", "fahrenheit", "lengthm"
MILES, WATT_HOURS = "lengthmi", "watth"
METERS_PER_MILE = 1609.344   # the metrics are in metres (base units); a US install reads miles
DBM, DECIBEL, COUNT, NONE, REQUESTS = "dBm", "dB", "short", "none", "reqps"
J_PER_KWH = "3.6e6"

Step = tuple[float, str]


def steps(base: str, *above: Step) -> dashboard.ThresholdsConfig:
    """Absolute thresholds: the base colour, then (value, colour) from that value up."""
    return (dashboard.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(value=None, color=base)] + [model.Threshold(value=v, color=c) for v, c in above]))


NEUTRAL = ("green",)
PRICE = ("green", (4, "yellow"), (6, "orange"), (8, "red"))          # ¢/kWh, the suite's price colours
PERCENTILE = ("green", (25, "yellow"), (75, "orange"), (90, "red"))  # the optimal / resume / stop percentiles
SOC = ("red", (20, "orange"), (40, "green"))
TEMPERATURE = ("green", (50, "orange"), (60, "red"))                  # rules/thresholds.yml alerts at 60 °C
AGE = ("green", (300, "orange"), (900, "red"))                        # data_stale_seconds is 900
GOOD_WHEN_ONE = ("red", (1, "green"))
BAD_WHEN_ANY = ("green", (1, "red"))


def states(codes: Mapping[int, tuple[str, str]]) -> list[model.ValueMapping]:
    """Value mappings for an enumeration: code -> (text, colour)."""
    return [model.ValueMap(options={str(code): model.ValueMappingResult(text=text, color=color, index=i)
                                    for i, (code, (text, color)) in enumerate(sorted(codes.items()))})]


def flags(true: tuple[str, str], false: tuple[str, str]) -> list[model.ValueMapping]:
    """Value mappings for a boolean field (JSON true/false): (text, colour) of each."""
    return [model.ValueMap(options={"true": model.ValueMappingResult(text=true[0], color=true[1], index=0),
                                    "false": model.ValueMappingResult(text=false[0], color=false[1], index=1)})]


def texts(words: Mapping[str, tuple[str, str]]) -> list[model.ValueMapping]:
    """Value mappings for a text field: its value -> (text, colour)."""
    return [model.ValueMap(options={value: model.ValueMappingResult(text=text, color=color, index=i)
                                    for i, (value, (text, color)) in enumerate(words.items())})]


UP = states({0: ("down", "red"), 1: ("up", "green")})
YES_NO = states({0: ("no", "text"), 1: ("yes", "green")})


# ----------------------------------------------------------------------------------------- queries

def sited(expr: str) -> str:
    """`expr` reading only the sites chosen in the `site` variable."""
    return with_matcher(expr, SITE_MATCHER, skip=without_site)


def by_site(*labels: str) -> str:
    """` by (site, <labels>) `: the grouping of an aggregation that keeps the sites apart (`counted(..., by)`)."""
    return f" by ({', '.join((SITE, *labels))}) "


def per_site(aggregation: str, expr: str, *labels: str) -> str:
    """`<aggregation> by (site, <labels>) (<expr>)`: one value per site (and labels), e.g. the price of each
    site's zone, never the highest of two zones; over unlabelled series, one unlabelled series."""
    return f"{aggregation}{by_site(*labels)}({expr})"


def site_legend(legend: str = "") -> str:
    """A legend naming the series' site first (`{{site}}`: empty on a series without the label), so the
    series of two sites (a "garage" at each, each zone's price) are told apart."""
    return f"{SITE_LEGEND} {legend}" if legend else SITE_LEGEND


def q(expr: str, legend: str | None = None) -> prometheus.Dataquery:
    """A PromQL query against the dashboard's `datasource` variable, of the chosen sites; the panel sets
    instant or range."""
    query = prometheus.Dataquery().expr(sited(expr)).datasource(PROMETHEUS)
    return query.legend_format(legend) if legend else query


class InfinityQuery(cogvariants.Dataquery):
    """A JSON query of the Infinity datasource (backend parser), as Grafana stores it."""

    def __init__(self, ref_id: str, url: str, params: Sequence[tuple[str, str]], root_selector: str,
                 columns: Sequence[tuple[str, str, str]]) -> None:
        self.ref_id, self.url, self.params = ref_id, url, tuple(params)
        self.root_selector, self.columns = root_selector, tuple(columns)

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id, "datasource": SESSION_STORE.to_json(), "type": "json", "source": "url",
            "parser": "backend", "format": "table", "url": self.url,
            "url_options": {"method": "GET", "data": "",
                            "params": [{"key": key, "value": value} for key, value in self.params]},
            "root_selector": self.root_selector,
            "columns": [{"selector": s, "text": t, "type": kind} for s, t, kind in self.columns],
            "filters": [],
        }


class Infinity(cogbuilder.Builder[InfinityQuery]):
    """Builder of an Infinity query of the session store's API (a path relative to its datasource URL)."""

    def __init__(self, url: str, root_selector: str) -> None:
        self._ref_id, self._url, self._root = "A", url, root_selector
        self._params: list[tuple[str, str]] = []
        self._columns: list[tuple[str, str, str]] = []

    def ref_id(self, ref_id: str) -> "Infinity":
        self._ref_id = ref_id
        return self

    def param(self, key: str, value: str) -> "Infinity":
        self._params.append((key, value))
        return self

    def time_range(self) -> "Infinity":
        """Only what the dashboard's time range covers (`from`, `to`: Unix seconds)."""
        return self.param("from", "${__from:date:seconds}").param("to", "${__to:date:seconds}")

    def filtered(self, *names: str) -> "Infinity":
        """Follow the dashboard's multi-value filters (`unit`, `vehicle`): `${unit:csv}` sends the selection
        as a comma-separated list; All sends `.*`, which the store reads as no filter."""
        for name in names or ("unit", "vehicle"):
            self.param(name, f"${{{name}:csv}}")
        return self

    def column(self, selector: str, text: str, kind: str = "string") -> "Infinity":
        """kind: string, number, boolean, timestamp, timestamp_epoch (ms) or timestamp_epoch_s."""
        self._columns.append((selector, text, kind))
        return self

    @property
    def columns(self) -> tuple[tuple[str, str, str], ...]:
        return tuple(self._columns)

    def build(self) -> InfinityQuery:
        return InfinityQuery(self._ref_id, self._url, self._params, self._root, self._columns)


# ------------------------------------------------------------------------------------------ panels

Target = prometheus.Dataquery | Infinity


def _panel(builder, title: str, unit: str, targets: Sequence[Target], *, thresholds: Sequence, w: int, h: int,
           description: str | None, instant: bool, mappings: list[model.ValueMapping] | None = None,
           time_from: str | None = None, interval: str | None = None, decimals: int | None = None,
           min_value: float | None = None, max_value: float | None = None, table_format: bool = False):
    """Everything every panel gets: title, unit, thresholds, datasource, size and its queries."""
    builder.title(title).unit(unit).thresholds(steps(*thresholds)).span(w).height(h)
    infinity = any(isinstance(t, Infinity) for t in targets)
    builder.datasource(SESSION_STORE if infinity else PROMETHEUS)
    for index, target in enumerate(targets):
        target.ref_id(chr(ord("A") + index))
        if isinstance(target, prometheus.Dataquery):
            if instant:
                target.instant()
            else:
                target.range()
            if table_format:
                target.format(prometheus_model.PromQueryFormat.TABLE)
        builder.with_target(target)
    for value, setter in ((description, builder.description), (mappings, builder.mappings),
                          (time_from, builder.time_from), (interval, builder.interval),
                          (decimals, builder.decimals), (min_value, builder.min), (max_value, builder.max)):
        if value is not None:
            setter(value)
    return builder


def _legend(*calcs: str) -> common_builders.VizLegendOptions:
    return (common_builders.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE if calcs else
                                                            common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs(list(calcs)))


def graph(title: str, unit: str, *targets: Target, thresholds: Sequence = NEUTRAL, w: int = 12, h: int = 8,
          description: str | None = None, bars: bool = False, stacked: bool = False, interval: str | None = None,
          time_from: str | None = None, threshold_lines: bool = False, calcs: Sequence[str] = ("lastNotNull", "max"),
          min_value: float | None = None, max_value: float | None = None,
          overrides: Iterable[tuple[str, list[model.DynamicConfigValue]]] = (),
          regexp_overrides: Iterable[tuple[str, list[model.DynamicConfigValue]]] = ()) -> timeseries.Panel:
    """A time series (lines, or bars for per-day or per-hour totals)."""
    panel = timeseries.Panel().legend(_legend(*calcs)).tooltip(
        common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING))
    if bars:
        panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80).line_width(1)
    else:
        panel.line_width(1).fill_opacity(10).show_points(common.VisibilityMode.NEVER)
    if stacked:
        panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if threshold_lines:
        panel.thresholds_style(common_builders.GraphThresholdsStyleConfig()
                               .mode(common.GraphThresholdsStyleMode.DASHED))
    for name, properties in overrides:
        panel.override_by_name(name, properties)
    for pattern, properties in regexp_overrides:
        panel.override_by_regexp(pattern, properties)
    return _panel(panel, title, unit, targets, thresholds=thresholds, w=w, h=h, description=description,
                  instant=False, interval=interval, time_from=time_from, min_value=min_value, max_value=max_value)


def timeline(title: str, unit: str, *targets: Target, mappings: list[model.ValueMapping],
             thresholds: Sequence = NEUTRAL, w: int = 24, h: int = 6, description: str | None = None
             ) -> statetimeline.Panel:
    """A state timeline of an enumeration's numeric code, coloured by its value mappings."""
    panel = statetimeline.Panel().show_value(common.VisibilityMode.AUTO).merge_values(True).legend(_legend())
    panel.color_scheme(dashboard.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
    return _panel(panel, title, unit, targets, thresholds=thresholds, w=w, h=h, description=description,
                  instant=False, mappings=mappings)


def single(title: str, unit: str, *targets: Target, thresholds: Sequence = NEUTRAL, w: int = 4, h: int = 5,
           description: str | None = None, mappings: list[model.ValueMapping] | None = None,
           time_from: str | None = None, decimals: int | None = None, background: bool = False,
           sparkline: bool = False, calc: str = "lastNotNull",
           regexp_overrides: Iterable[tuple[str, list[model.DynamicConfigValue]]] = ()) -> stat.Panel:
    """A stat: the current value of each series (coloured by thresholds or mappings); `calc` "sum" adds up
    a table's column (rows of the session store's API)."""
    panel = (stat.Panel().reduce_options(common_builders.ReduceDataOptions().calcs([calc]).values(False))
             .color_mode(common.BigValueColorMode.BACKGROUND if background else common.BigValueColorMode.VALUE)
             .graph_mode(common.BigValueGraphMode.AREA if sparkline else common.BigValueGraphMode.NONE)
             .text_mode(common.BigValueTextMode.AUTO))
    for pattern, properties in regexp_overrides:
        panel.override_by_regexp(pattern, properties)
    return _panel(panel, title, unit, targets, thresholds=thresholds, w=w, h=h, description=description,
                  instant=True, mappings=mappings, time_from=time_from, decimals=decimals)


def dial(title: str, unit: str, *targets: Target, thresholds: Sequence = NEUTRAL, w: int = 6, h: int = 6,
         description: str | None = None, min_value: float = 0, max_value: float = 100) -> gauge.Panel:
    panel = gauge.Panel().reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    panel.show_threshold_markers(True)
    return _panel(panel, title, unit, targets, thresholds=thresholds, w=w, h=h, description=description,
                  instant=True, min_value=min_value, max_value=max_value)


def bars(title: str, unit: str, *targets: Target, thresholds: Sequence = NEUTRAL, w: int = 8, h: int = 6,
         description: str | None = None, time_from: str | None = None, min_value: float | None = None,
         max_value: float | None = None) -> bargauge.Panel:
    """A bar gauge: one bar per series, current value."""
    panel = (bargauge.Panel().reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .display_mode(common.BarGaugeDisplayMode.GRADIENT).orientation(common.VizOrientation.HORIZONTAL))
    return _panel(panel, title, unit, targets, thresholds=thresholds, w=w, h=h, description=description,
                  instant=True, time_from=time_from, min_value=min_value, max_value=max_value)


def label_table(title: str, expr: str, columns: Sequence[str], *, w: int = 12, h: int = 6,
                description: str | None = None, unit: str = NONE, thresholds: Sequence = NEUTRAL) -> table.Panel:
    """The labels of an instant vector (info metrics, ALERTS) as a table, one row per series; the site first
    (a column only where the series have the label)."""
    columns = [SITE, *columns]
    panel = table.Panel().with_transformation(model.DataTransformerConfig(
        id_val="organize", options={"includeByName": {name: True for name in columns},
                                    "indexByName": {name: i for i, name in enumerate(columns)}}))
    return _panel(panel, title, unit, [q(expr)], thresholds=thresholds, w=w, h=h, description=description,
                  instant=True, table_format=True)


TIME_KINDS = ("timestamp", "timestamp_epoch", "timestamp_epoch_s")
TIME_FORMAT = "${time_format}"


def clock_times(*fields: str) -> model.DataTransformerConfig:
    """Time fields shown as text in the `time_format` variable's format (24- or 12-hour): Grafana's
    units (dateTimeAsLocal, time:<format>) are not interpolated, transformation options are."""
    return model.DataTransformerConfig(id_val="convertFieldType", options={
        "conversions": [{"targetField": name, "destinationType": "string", "dateFormat": TIME_FORMAT,
                         "timezone": "browser"} for name in fields], "fields": {}})


def api_table(title: str, query: Infinity, *, units: Mapping[str, str] | None = None, w: int = 24, h: int = 9,
              description: str | None = None, thresholds: Sequence = NEUTRAL,
              mappings: Mapping[str, list[model.ValueMapping]] | None = None, sort_ascending: bool = False,
              time_from: str | None = None) -> table.Panel:
    """A table of the session store's API; `units` maps column titles to units, `mappings` column titles to
    value mappings (shown as coloured text). Moments are shown in the `time_format` variable's format; a
    table whose first column is a moment keeps the API's order (newest first: as text, 12-hour times would
    not sort), the others are sorted by their first column (descending unless `sort_ascending`)."""
    panel = table.Panel()
    times = [text for _, text, kind in query.columns if kind in TIME_KINDS]
    if query.columns[0][1] not in times:
        panel.sort_by([common_builders.TableSortByFieldState().display_name(query.columns[0][1])
                       .desc(not sort_ascending)])
    if times:
        panel.with_transformation(clock_times(*times))
    for column, unit in (units or {}).items():
        panel.override_by_name(column, [model.DynamicConfigValue(id_val="unit", value=unit)])
    for column, mapping in (mappings or {}).items():
        panel.override_by_name(column, [model.DynamicConfigValue(id_val="mappings", value=mapping),
                                        model.DynamicConfigValue(id_val="custom.cellOptions",
                                                                 value={"type": "color-text"})])
    return _panel(panel, title, NONE, [query], thresholds=thresholds, w=w, h=h, description=description,
                  instant=True, time_from=time_from)


def joined_table(title: str, key: str, *targets: tuple[Target, str], w: int = 24, h: int = 8,
                 units: Mapping[str, str] | None = None, mappings: Mapping[str, list[model.ValueMapping]] | None = None,
                 labels: Sequence[str] = (), description: str | None = None, thresholds: Sequence = NEUTRAL,
                 sort: tuple[str, bool] | None = None, time_from: str | None = None) -> table.Panel:
    """One row per value of the label `key`, one column per instant query (`... by (key)`, table format),
    each target (query, column title); `labels` are other label columns kept (e.g. `vehicle` of an info
    metric, whose value column is dropped: give it the title ""). Grafana merges the tables on their common
    label columns (Merge: `site` and `key` of per-site queries, `... by (site, key)`), then names and orders the
    columns (Organize: the site first, where the series have it); `sort` is (column, descending)."""
    refs = [chr(ord("A") + index) for index in range(len(targets))]
    named = {f"Value #{ref}": name for ref, (_, name) in zip(refs, targets) if name}
    dropped = {f"Value #{ref}": True for ref, (_, name) in zip(refs, targets) if not name}
    order = [SITE, key, *labels, *named]
    panel = table.Panel()
    panel.with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
    panel.with_transformation(model.DataTransformerConfig(id_val="organize", options={
        "excludeByName": {"Time": True, **dropped}, "indexByName": {name: i for i, name in enumerate(order)},
        "renameByName": named, "includeByName": {}}))
    if sort:
        panel.sort_by([common_builders.TableSortByFieldState().display_name(sort[0]).desc(sort[1])])
    for column, unit in (units or {}).items():
        panel.override_by_name(column, [setting("unit", unit)])
    for column, mapping in (mappings or {}).items():
        panel.override_by_name(column, [setting("mappings", mapping), setting("custom.cellOptions",
                                                                              {"type": "color-text"})])
    return _panel(panel, title, NONE, [target for target, _ in targets], thresholds=thresholds, w=w, h=h,
                  description=description, instant=True, table_format=True, time_from=time_from)


def histogram(title: str, unit: str, *targets: Target, w: int = 12, h: int = 8, interval: str | None = None,
              description: str | None = None, thresholds: Sequence = NEUTRAL) -> histogram_panel.Panel:
    """How the values of the series over the time range are distributed (Grafana buckets them)."""
    panel = histogram_panel.Panel().legend(_legend())
    return _panel(panel, title, unit, targets, thresholds=thresholds, w=w, h=h, description=description,
                  instant=False, interval=interval)


def api_bars(title: str, unit: str, *queries: Infinity, x_field: str, w: int = 12, h: int = 8,
             description: str | None = None, stacked: bool = True, thresholds: Sequence = NEUTRAL,
             transformations: Sequence[model.DataTransformerConfig] = (), time_from: str | None = None
             ) -> barchart.Panel:
    """A bar chart of the session store's summaries, one bar (group) per period."""
    panel = barchart.Panel().x_field(x_field).legend(_legend()).show_value(common.VisibilityMode.NEVER)
    if stacked:
        panel.stacking(common.StackingMode.NORMAL)
    for step in transformations:
        panel.with_transformation(step)
    return _panel(panel, title, unit, list(queries), thresholds=thresholds, w=w, h=h, description=description,
                  instant=True, time_from=time_from)


def keyed_bars(title: str, unit: str, key: str, *targets: tuple[Target, str], key_label: str, w: int = 24,
               h: int = 9, description: str | None = None, thresholds: Sequence = NEUTRAL,
               overrides: Iterable[tuple[str, list[model.DynamicConfigValue]]] = ()) -> barchart.Panel:
    """A bar chart of instant queries keyed by a numeric label (`sum by (key) (...)`), one bar group per
    value of `key` in numeric order; each target is (query, its name in the legend).

    Grafana's time series panels need a time x axis (Trend, the one with a numeric x, is an alpha panel)
    and the bar chart draws a single frame: each query is a table (Time, key, `Value #<refId>`), merged
    into one on the key, the key made a number and sorted (as text "10" sorts before "2"), then the
    value columns renamed."""
    refs = [chr(ord("A") + index) for index in range(len(targets))]
    panel = (barchart.Panel().x_field(key).legend(_legend()).show_value(common.VisibilityMode.NEVER)
             .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.NONE)))
    for id_val, options in (
            ("merge", {}),
            ("convertFieldType", {"conversions": [{"targetField": key, "destinationType": "number"}], "fields": {}}),
            ("sortBy", {"fields": {}, "sort": [{"field": key, "desc": False}]}),
            ("organize", {"excludeByName": {"Time": True},
                          "indexByName": {key: 0, **{f"Value #{ref}": i + 1 for i, ref in enumerate(refs)}},
                          "renameByName": {f"Value #{ref}": name for ref, (_, name) in zip(refs, targets)}})):
        panel.with_transformation(model.DataTransformerConfig(id_val=id_val, options=options))
    panel.override_by_name(key, [setting("unit", NONE), setting("decimals", 0), setting("custom.axisLabel", key_label)])
    for name, properties in overrides:
        panel.override_by_name(name, properties)
    return _panel(panel, title, unit, [target for target, _ in targets], thresholds=thresholds, w=w, h=h,
                  description=description, instant=True, table_format=True)


def step(id_val: str, **options: object) -> model.DataTransformerConfig:
    """One transformation of a panel's data (Grafana's ids: merge, convertFieldType, sortBy, organize, ...)."""
    return model.DataTransformerConfig(id_val=id_val, options=options)


def setting(id_val: str, value: object) -> model.DynamicConfigValue:
    """One property of a field override: unit, decimals, color, custom.axisPlacement, ..."""
    return model.DynamicConfigValue(id_val=id_val, value=value)


def fixed_colour(colour: str) -> model.DynamicConfigValue:
    return setting("color", {"mode": "fixed", "fixedColor": colour})


def fill_between(upper: str, lower: str) -> tuple[str, list[model.DynamicConfigValue]]:
    """Override that shades the band between two series, by display name (their legends). Grafana pairs them
    by that fixed name, so a band's panel shows one site: `per_site_panel`."""
    return upper, [model.DynamicConfigValue(id_val="custom.fillBelowTo", value=lower)]


def per_site_panel(panel, w: int):
    """One copy of the panel per selected site (Grafana's repeat over `site`, side by side), each with that
    site alone in `$site` (its title names it): for what a site's name in a legend would break (a band
    between two lines)."""
    return panel.repeat("site").repeat_direction("h").max_per_row(max(1, 24 // w))


# --------------------------------------------------------------------------------- variables, board

def datasource_variable() -> dashboard.DatasourceVariable:
    return (dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
            .current(model.VariableOption(selected=True, text="Prometheus", value="prometheus")))


def filter_variable(name: str, label: str, metric: str, label_name: str, *, of_sites: bool = True
                    ) -> dashboard.QueryVariable:
    """Multi-value filter over a label's values (of the chosen sites' series). All is `.*`, sent as is: in
    PromQL it matches every value, the empty one too (sessions no vehicle was matched to), and the session
    store's API reads it as no filter; a selection is `(a|b)` in PromQL and `a,b` in `${name:csv}` for the API."""
    selector = sited(metric) if of_sites else metric
    return (dashboard.QueryVariable(name).label(label).datasource(PROMETHEUS)
            .query(f"label_values({selector}, {label_name})").refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC).multi(True).include_all(True)
            .all_value(".*").current(model.VariableOption(selected=True, text=["All"], value=["$__all"])))


def site_variable() -> dashboard.QueryVariable:
    """The sites (homes) Prometheus scrapes: the `site` label of the per-site jobs' targets."""
    return filter_variable("site", "Site", f"up{{{SITE_JOBS}}}", "site", of_sites=False)


def store_variable() -> dashboard.DatasourceVariable:
    """The session store of a site: Infinity datasources named `Session store` (one site) or
    `Session store: <site>`; the single site's, uid session-store, by default."""
    return (dashboard.DatasourceVariable("store").label("Session store").type(INFINITY_TYPE)
            .regex("/^Session store/")
            .current(model.VariableOption(selected=True, text="Session store", value="session-store")))


def choice_variable(name: str, label: str, options: Sequence[tuple[str, str]]) -> dashboard.CustomVariable:
    """A single choice among fixed (text, value) options; the first is the default."""
    chosen = [model.VariableOption(selected=i == 0, text=text, value=value) for i, (text, value) in enumerate(options)]
    return (dashboard.CustomVariable(name).label(label).values(",".join(f"{t} : {v}" for t, v in options))
            .options(chosen).current(chosen[0]))


# °C or °F: the variable holds the scale of a degree (1 or 9/5). -40 is the same in both, so
# °F = (°C + 40) x 9/5 - 40; with the scale 1 the value is left as it is.
TEMPERATURE_VARIABLE = "temperature_unit"
TEMPERATURE_OPTIONS = (("°C", "1"), ("°F", "1.8"))


def temperature_variable() -> dashboard.CustomVariable:
    return choice_variable(TEMPERATURE_VARIABLE, "Temperature", TEMPERATURE_OPTIONS)


def temperature(expr: str) -> str:
    """A Celsius expression in the chosen unit."""
    return f"(({expr}) + 40) * ${TEMPERATURE_VARIABLE} - 40"


def temperature_legend(legend: str) -> str:
    """The series name ends with the unit's text (°C or °F): the panel's unit follows it (see in_fahrenheit)."""
    return f"{legend} ${{{TEMPERATURE_VARIABLE}:text}}"


def in_fahrenheit(*base_and_steps: Step | str) -> list[tuple[str, list[model.DynamicConfigValue]]]:
    """Grafana does not interpolate a panel's unit nor its thresholds: series named "... °F" get the
    fahrenheit unit and the Celsius thresholds converted."""
    base, *above = base_and_steps
    steps_f = steps(base, *((round(value * 1.8 + 32, 1), colour) for value, colour in above))
    return [(".*°F$", [setting("unit", FAHRENHEIT), setting("thresholds", steps_f.build())])]


# 24- or 12-hour times in tables (moment.js formats, as Grafana's date formats).
TIME_FORMAT_VARIABLE = "time_format"
TIME_FORMAT_OPTIONS = (("24-hour", "YYYY-MM-DD HH:mm"), ("12-hour", "YYYY-MM-DD hh:mm A"))


def time_format_variable() -> dashboard.CustomVariable:
    return choice_variable(TIME_FORMAT_VARIABLE, "Time format", TIME_FORMAT_OPTIONS)


def charging_links() -> dashboard.DashboardLink:
    """Every dashboard tagged `charging`, keeping the time range and the filters."""
    return (dashboard.DashboardLink("Charging dashboards").type(model.DashboardLinkType.DASHBOARDS).tags([TAG])
            .as_dropdown(True).include_vars(True).keep_time(True))


class Board:
    """A dashboard with the suite's defaults; panels and rows get their ids in the order added. Its
    variables: `datasource`, `site`, `store` when a panel reads the session store, then the board's own."""

    def __init__(self, uid: str, title: str, description: str, *, time_from: str = "now-6h", refresh: str = "1m",
                 variables: Sequence[dashboard.QueryVariable | dashboard.CustomVariable] = ()) -> None:
        self.uid = uid
        self.builder = (dashboard.Dashboard(title).uid(uid).description(description).tags([TAG])
                        .time(time_from, "now").timezone("browser").refresh(refresh)
                        .tooltip(model.DashboardCursorSync.CROSSHAIR).link(charging_links()))
        self._variables = list(variables)
        self._store = False         # a panel reads the session store
        self._built = False
        self._next_id = 0

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add(self, *panels) -> "Board":
        for panel in panels:
            source = panel.build().datasource
            self._store = self._store or (source is not None and source.type_val == INFINITY_TYPE)
            self.builder.with_panel(panel.id(self._id()))
        return self

    def row(self, title: str) -> "Board":
        self.builder.with_row(dashboard.Row(title).id(self._id()))
        return self

    def build(self) -> model.Dashboard:
        if not self._built:     # the variables once every panel is known (the SDK builds in place)
            store = [store_variable()] if self._store else []
            for variable in [datasource_variable(), site_variable(), *store, *self._variables]:
                self.builder.with_variable(variable)
            self._built = True
        return self.builder.build()
