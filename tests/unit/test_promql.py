"""servicekit.promql.with_matcher: a label matcher added to every vector selector and nowhere else.

Validity and meaning against a real Prometheus holding two sites: tests/integration/test_promql_matcher.py."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from servicekit.promql import parse_matcher, tokens, with_matcher
from testkit.promql_queries import dashboard_exprs, session_store_exprs

HOME = 'site="home"'
SITE = 'site=~"$site"'


@pytest.mark.parametrize("expr, expected", [
    # every kind of vector selector
    ("metric", 'metric{site="home"}'),
    ('metric{a="b"}', 'metric{a="b",site="home"}'),
    ('metric{a="b",}', 'metric{a="b",site="home"}'),
    ('metric {a="b", c!~"d"}', 'metric {a="b", c!~"d",site="home"}'),
    ('{__name__=~"x|y"}', '{__name__=~"x|y",site="home"}'),
    ('{"utf8.metric", a="b"}', '{"utf8.metric", a="b",site="home"}'),
    ("charging:power_watts:sum", 'charging:power_watts:sum{site="home"}'),
    # ranges, subqueries, offset and @
    ("rate(metric[5m])", 'rate(metric{site="home"}[5m])'),
    ("metric[1h30m] offset -1d", 'metric{site="home"}[1h30m] offset -1d'),
    ("max_over_time((sum(x))[1d:1h])", 'max_over_time((sum(x{site="home"}))[1d:1h])'),
    ("max_over_time(x[1d:])", 'max_over_time(x{site="home"}[1d:])'),
    ("x @ 1609746000 offset 5m", 'x{site="home"} @ 1609746000 offset 5m'),
    ("min_over_time(x[$__range] @ end()) - x @ start()",
     'min_over_time(x{site="home"}[$__range] @ end()) - x{site="home"} @ start()'),
    ("x @ ${__to:date:seconds}", 'x{site="home"} @ ${__to:date:seconds}'),
    # functions and aggregations, both places of by/without, label lists of binary operators
    ("sum by (unit, le) (rate(b[$__rate_interval]))", 'sum by (unit, le) (rate(b{site="home"}[$__rate_interval]))'),
    ("sum(x) without (instance)", 'sum(x{site="home"}) without (instance)'),
    ("SUM(x) BY (a) AND y", 'SUM(x{site="home"}) BY (a) AND y{site="home"}'),
    ("a / on(unit) group_left(vehicle) b", 'a{site="home"} / on(unit) group_left(vehicle) b{site="home"}'),
    ("a * ignoring(x) group_right c", 'a{site="home"} * ignoring(x) group_right c{site="home"}'),
    ("a * on() group_left c", 'a{site="home"} * on() group_left c{site="home"}'),
    ("a and b or c unless d", 'a{site="home"} and b{site="home"} or c{site="home"} unless d{site="home"}'),
    ("a > bool 1 atan2 b", 'a{site="home"} > bool 1 atan2 b{site="home"}'),
    ("topk(5, x) + count_values(\"v\", y) + quantile(0.5, z)",
     'topk(5, x{site="home"}) + count_values("v", y{site="home"}) + quantile(0.5, z{site="home"})'),
    ("histogram_quantile(0.95, sum by (le) (rate(d_bucket[5m])))",
     'histogram_quantile(0.95, sum by (le) (rate(d_bucket{site="home"}[5m])))'),
    ("absent(x) or vector(0)", 'absent(x{site="home"}) or vector(0)'),
    ("rate (x[5m])", 'rate (x{site="home"}[5m])'),
    # numbers, durations, strings, Grafana variables, comments: untouched
    ("x > 1e3 + 0x1f - .5 * 2.5e-3 + Inf - NaN + inf", 'x{site="home"} > 1e3 + 0x1f - .5 * 2.5e-3 + Inf - NaN + inf'),
    ('label_replace(x, "unit", "$1", "charger", "(.*)")', 'label_replace(x{site="home"}, "unit", "$1", "charger", "(.*)")'),
    ("x{a='it\\'s'} + y{b=`raw\\`}", "x{a='it\\'s',site=\"home\"} + y{b=`raw\\`,site=\"home\"}"),
    ('x{a="q\\"uote"}', 'x{a="q\\"uote",site="home"}'),
    ("(x + 40) * $unit - 40 + ${y:csv} + [[z]]", '(x{site="home"} + 40) * $unit - 40 + ${y:csv} + [[z]]'),
    ("time() - $__range_s", "time() - $__range_s"),
    ("x # a comment: y\n+ z", 'x{site="home"} # a comment: y\n+ z{site="home"}'),
    # a selector that already matches on the label
    ('x{site="cabin"} + y', 'x{site="cabin"} + y{site="home"}'),
    ('x{site=~".*"}', 'x{site=~".*"}'),
    ('x{"site"!="a"}', 'x{"site"!="a"}'),
])
def test_every_vector_selector_gets_the_matcher(expr: str, expected: str) -> None:
    assert with_matcher(expr, HOME) == expected
    assert with_matcher(expected, HOME) == expected, "once only"


@pytest.mark.parametrize("matcher", ['site=~"home|"', 'site=~"$site"', 'site!="cabin"', "site=~'a'", '"site"="a"'])
def test_any_complete_matcher(matcher: str) -> None:
    assert with_matcher('sum(x{a="b"}) / y', matcher) == f'sum(x{{a="b",{matcher}}}) / y{{{matcher}}}'
    assert parse_matcher(matcher) == "site"


@pytest.mark.parametrize("matcher", ["site", 'site="a",b="c"', '{site="a"}', "site=a", 'site=="a"', ""])
def test_a_matcher_must_be_one_complete_matcher(matcher: str) -> None:
    with pytest.raises(ValueError):
        with_matcher("x", matcher)


def test_skip_gets_the_metric_name_or_none() -> None:
    seen: list[str | None] = []

    def skip(name: str | None) -> bool:
        seen.append(name)
        return name is not None and name.startswith("charging_threshold:")
    expr = ('x > on() group_left charging_threshold:price_high_cents_per_kwh + {__name__=~"a|b"} '
            '+ {"quoted.name"} + charging_threshold:x{y="z"}')
    assert with_matcher(expr, HOME, skip=skip) == (
        'x{site="home"} > on() group_left charging_threshold:price_high_cents_per_kwh + {__name__=~"a|b",site="home"} '
        '+ {"quoted.name",site="home"} + charging_threshold:x{y="z"}')
    assert seen == ["x", "charging_threshold:price_high_cents_per_kwh", None, "quoted.name", "charging_threshold:x"]


@pytest.mark.parametrize("expr, position", [
    ("rate(x[5m]", "'('"), ("x)", "position 1"), ('x{a="b"', "position 1"), ('x{a="b}', "position 4"),
    ("x ! y", "position 2"), ("5mx", "position 0"), ("x[5m foo]", "position 5"), ("x{a}", "position 2"),
    ("x + $", "position 4"), ('x{a="b" c="d"}', "position 8"), ("x{(}", "position 2"), ("x]", "position 1"),
    ('{a="b"}}', "position 7"), ("x + ${y", "position 4"), ("x ~ y", "position 2"), ("x{a=~}", "position 2"),
])
def test_what_it_cannot_read_raises_naming_the_position(expr: str, position: str) -> None:
    with pytest.raises(ValueError, match=re.escape(position)):
        with_matcher(expr, HOME)


def test_tokens_keep_strings_numbers_durations_and_variables_whole() -> None:
    found = [(t.kind, t.text) for t in tokens('x{a="}{"}[1h30m:1m] @ ${__to:date:H} > .5e3')]
    assert found == [("name", "x"), ("op", "{"), ("name", "a"), ("op", "="), ("string", '"}{"'), ("op", "}"),
                     ("op", "["), ("number", "1h30m"), ("op", ":"), ("number", "1m"), ("op", "]"), ("op", "@"),
                     ("variable", "${__to:date:H}"), ("op", ">"), ("number", ".5e3")]


# ------------------------------------------------------------------ the suite's own queries

INSERTED = re.compile(r'\{site=~"\$site"\}|,site=~"\$site"|(?<=\{)site=~"\$site",?')
NAME = re.compile(r'(?<![\w:"$.])([A-Za-z_:][\w:]*)(?![\w:])')
NOT_METRICS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
               "offset", "inf", "nan", "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile"}


def no_site(name: str | None) -> bool:
    from servicekit.promql import without_site
    return without_site(name)


def assert_every_selector_has_the_matcher(original: str, injected: str, skip=lambda name: False) -> None:
    """Checked without the lexer: only matchers were added, each metric name is followed by braces holding
    the matcher (unless skipped), and so is every selector without a name."""
    assert INSERTED.sub("", injected) == original.replace("{}", ""), "only matchers added"   # x{} is x
    assert with_matcher(injected, SITE, skip=skip) == injected, "idempotent"
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', injected)              # strings hide no names
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "0", text)                     # nor do Grafana's variables
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1 ()", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)                            # durations
    text = re.sub(r"(?<![\w:])\d+(\.\d+)?(e[+-]?\d+)?", "0", text)      # numbers
    text = re.sub(r"\{([^}]*)\}", lambda m: "{+}" if 'site=~""' in m.group(1) else "{-}", text)
    for match in NAME.finditer(text):
        name, rest = match.group(1), text[match.end():].lstrip()
        if name.lower() in NOT_METRICS or rest.startswith("("):
            continue
        assert rest.startswith("{+}") != skip(name), f"{name} in {injected}"
    assert "{-}" not in re.sub(r"[\w:]+\s*\{-\}", "", text), f"a selector without a name: {injected}"


def test_every_dashboard_query_gets_the_site_matcher_on_every_selector_with_a_site() -> None:
    checked = 0
    for where, expr in dashboard_exprs():
        original = INSERTED.sub("", expr)       # what the board wrote: q() added the matchers
        injected = with_matcher(original, SITE, skip=no_site)
        assert injected == expr, where
        assert_every_selector_has_the_matcher(original, injected, no_site)
        checked += 1
    assert checked > 200


def test_series_without_a_site_are_skipped_by_name() -> None:
    for name in ("prometheus_tsdb_head_series", "alertmanager_alerts", "vm_rows", "vmagent_remotewrite_requests_total",
                 "vmalert_alerts_firing", "charging_threshold:price_high_cents_per_kwh"):
        assert no_site(name), name
    for name in (None, "up", "scrape_duration_seconds", "ALERTS", "charging:power_watts:sum", "twc_power_watts"):
        assert not no_site(name), name


async def test_every_session_store_query_takes_the_matcher(tmp_path: Path) -> None:
    exprs = await session_store_exprs(tmp_path)
    assert len(exprs) > 25 and any("__name__" in e for e in exprs) and any("[360s]" in e for e in exprs)
    for expr in exprs:
        assert_every_selector_has_the_matcher(expr, with_matcher(expr, SITE))
