"""Hostile and malformed input: configuration values, HTTP query parameters, oversized requests,
and vehicle names carrying HTML, quotes, newlines and spreadsheet formulas.

(a) Every setting declared in servicekit/config.py, fed wrong types and out-of-range values
    (from YAML and from the environment), stops with one `ConfigError` line naming the key; never
    another exception. A table of known-bad values per value type, plus hypothesis-generated
    values and strings (derandomized, no example database, so runs are repeatable and leave no files).
(b) Every GET parameter of the session store's OpenAPI description, given garbage: a documented
    status (400 with a JSON error naming the parameter, or 200/404), never a 500 or a stack
    trace, and the database is unchanged. A small table-plus-random generator rather than
    schemathesis: schemathesis installs and runs here in seconds, but brings ~30 packages, and
    checks conformance to the schema rather than what matters here (the 400 names the parameter,
    nothing is written); this table pins those expectations in about a second.
(c) A 10 MB override body and a 100 kB query string are refused; the store stays healthy.
(d) Vehicle names from `vehicles.names` stay data: valid JSON, CSV that round-trips, escaped HTML,
    and expositions `promtool check metrics` accepts, with the label values intact.
"""
from __future__ import annotations

import csv
import dataclasses
import http.client
import io
import json
import random
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from servicekit.config import SECTIONS, ConfigError, load, load_files
from servicekit.settings_types import (
    Address, Bool, CentsPerKwh, ChargerList, Choice, DeliveryPeriods, Duration, NameMap, Number, OptionalNumber, OptionalText,
    OptionalUrl, SiteName, Text, TimeZone, Url, UrlList, VinList,
)
from session_store.openapi import OPENAPI
from session_store.smart_charging import Memory
from session_store.records import ActionRecord, Session
from session_store.storage import Storage
from suite.processes import ManagedProcess, wait_until
from testkit.exposition import label_values
from testkit.golden import promtool_problems
from testkit.http import get, get_json
from testkit.security import API_TOKEN, FORMULA_NAME, NAMES, SCRIPT_NAME, SecurityStack
from testkit.stack import Stack

pytestmark = pytest.mark.integration

# --- (a) configuration ----------------------------------------------------------------------------------

SETTINGS = [(section, f.name, f.metadata["kind"], f.metadata["env"])
            for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)]
# Cross-field checks name the key they are about, which may be another one than the key fed.
CROSS_FIELD = ("smart_charging.stop_percentile:", "prometheus.retention:", "TESSIE_ACCESS_TOKEN:",
               "alertmanager.email_to:")


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


HUGE = "x" * 100_000
CONTAINERS = [[1, 2], {"nested": {"deeper": [1]}}, nested(5000)]


def must_reject(kind: Any) -> list[Any]:
    """Values of the wrong type or out of range for a kind of setting."""
    if isinstance(kind, Bool):
        return ["maybe", 2, 1.5, "", "ja", "✓", HUGE, *CONTAINERS]
    if isinstance(kind, Number):
        values = ["abc", "", "1,5", "∞", "nan", float("nan"), float("inf"), -float("inf"), "1e400", 10**400, True,
                  HUGE, *CONTAINERS]
        if kind.minimum is not None:
            values += [kind.minimum] if kind.exclusive_minimum else [kind.minimum - 1]
        if kind.maximum is not None:
            values.append(kind.maximum + 1)
        if kind.integer:
            values.append(1.5)
        return [v for v in values if v != ""] if isinstance(kind, OptionalNumber) else values   # "" is none
    if isinstance(kind, Duration):
        return ["soon", "-5m", -1, "5 parsecs", "", float("inf"), float("nan"), "1e400", 10**400, True, HUGE,
                *CONTAINERS, *([] if kind.allow_zero else [0, "0s"])]
    if isinstance(kind, Choice):
        return ["nope", 5, "", True, "ｃｏｍｅｄ", HUGE, *CONTAINERS]
    if isinstance(kind, SiteName):   # a label value and a directory name
        return ["my home", "../x", "a/b", "-x", "x" * 41, "", 5, True, "ｈｏｍｅ", HUGE, *CONTAINERS]
    if isinstance(kind, VinList):
        return ["x", 5, ["nope"], [5], [None], {"a": 1}, ["5YJ3E1EA7KF00000"], nested(5000)]
    if isinstance(kind, Text):   # and OptionalText
        return ["   ", True, 1.5, *CONTAINERS] + ([] if isinstance(kind, OptionalText) else ["", 5])
    if isinstance(kind, OptionalUrl):   # empty means none
        return ["ftp://x", "http://", "http://[::1", "javascript:alert(1)", "//no-scheme", 5, HUGE, *CONTAINERS]
    if isinstance(kind, Url):
        return ["ftp://x", "http://", "http://[::1", "http://h:99999", "http://h:port", "javascript:alert(1)",
                "//no-scheme", 5, "", HUGE, *CONTAINERS]
    if isinstance(kind, TimeZone):
        return ["Mars/Olympus", "", 5, "../../etc/passwd", "a/" * 3000, "\x00", "America/Chicago\n", HUGE, *CONTAINERS]
    if isinstance(kind, Address):
        return ["localhost", "127.0.0.1:99999", ":9881", "127.0.0.1:²", "127.0.0.1:-1", "127.0.0.1:", 9881, True, "",
                HUGE, *CONTAINERS]
    if isinstance(kind, ChargerList):
        return ["garage", 5, {"name": "x"}, [1], [{"name": "a"}], [{"name": "a", "address": "b", "x": 1}],
                [{"name": [], "address": "b"}], [{"name": "a", "address": "b"}, {"name": "a", "address": "c"}],
                nested(5000)]
    if isinstance(kind, NameMap):
        return ["x", 5, [1], {"k": [1]}, {"k": {"a": 1}}, {"k": ""}, {"k": None}, nested(5000),
                *([{"not-an-id": "x"}] if kind.validate_id else [])]
    if isinstance(kind, UrlList):
        return [5, [5], ["ftp://x"], {"a": 1}, "ftp://x", [None], nested(5000)]
    if isinstance(kind, CentsPerKwh):   # cents: dollars-looking 0.075 and over a dollar are refused
        return ["abc", "", "7c", float("nan"), float("inf"), "1e400", -1, 0.075, 101, True, HUGE, *CONTAINERS]
    if isinstance(kind, DeliveryPeriods):
        period = {"start": "13:00", "end": "19:00", "cents_per_kwh": 10.7}
        return ["13:00-19:00", 5, {"start": "13:00"}, [5], [{"start": "13:00"}], [{**period, "x": 1}],
                *[[{**period, key: value}] for key, value in (
                    ("start", "25:00"), ("start", 780), ("start", "13:01"), ("end", "13:00"), ("end", HUGE),
                    ("cents_per_kwh", -1), ("cents_per_kwh", "nan"), ("cents_per_kwh", 0.075), ("months", [13]),
                    ("months", []), ("months", "june"), ("months", [True]), ("days", ["funday"]), ("days", "mon"),
                    ("days", [5]), ("days", nested(50)))], nested(5000)]
    raise AssertionError(f"no bad values for {type(kind).__name__}: add them here")


def must_reject_env(kind: Any) -> list[str]:
    """Environment strings of the wrong shape for a kind of setting."""
    table = {Bool: ["maybe", "2", "✓"], Number: ["abc", "nan", "inf", "1e400", "1,5"],
             Duration: ["soon", "-5m", "inf", "1e400"], Choice: ["nope", "ｃｏｍｅｄ"],
             Url: ["ftp://x", "http://[::1", "http://h:99999"], TimeZone: ["Mars/Olympus", "a/" * 3000],
             ChargerList: ["garage", "a:b,a:c", ":x"], NameMap: ["x", "id:"], UrlList: ["ftp://x", "http://[x"],
             CentsPerKwh: ["abc", "nan", "-1", "1e400", "500"]}
    for cls, values in table.items():
        if isinstance(kind, cls):
            return values + ([HUGE] if cls not in (NameMap, ChargerList) else [])
    return []   # free text: every string is valid


def assert_one_line_naming(error: ConfigError, key: str) -> None:
    message = str(error)
    assert type(error) is ConfigError
    assert message.startswith((f"{key}:", f"{key}[", f"{key}.")) or message.startswith(CROSS_FIELD), message
    assert "\n" not in message and len(message) < 400 and "Traceback" not in message, message[:400]


YAML_CASES = [(f"{s}.{n}", s, n, value) for s, n, kind, _ in SETTINGS for value in must_reject(kind)]


@pytest.mark.parametrize("key, section, name, value", YAML_CASES,
                         ids=[f"{key}-{i}" for i, (key, *_rest) in enumerate(YAML_CASES)])
def test_every_setting_rejects_wrong_types_and_out_of_range_values_naming_the_key(key, section, name, value) -> None:
    with pytest.raises(ConfigError) as error:
        load({section: {name: value}}, {}, {})
    assert_one_line_naming(error.value, key)


ENV_CASES = [(env, value) for _, _, kind, env in SETTINGS if env for value in must_reject_env(kind)]


@pytest.mark.parametrize("env, value", ENV_CASES, ids=[f"{env}-{i}" for i, (env, _) in enumerate(ENV_CASES)])
def test_every_environment_override_rejects_bad_strings_naming_the_variable(env: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        load({}, {env: value}, {})
    assert_one_line_naming(error.value, env)


def test_every_kind_of_setting_has_bad_values() -> None:
    """A setting of a new kind must come with its bad values (must_reject raises otherwise)."""
    assert all(must_reject(kind) for _, _, kind, _ in SETTINGS)
    assert len(SETTINGS) > 60 and len(YAML_CASES) > 700


@pytest.mark.parametrize("mapping, key", [
    *[({section: {"no_such_key": 1}}, f"{section}.no_such_key") for section in SECTIONS],
    *[({section: {5: 1}}, f"{section}.5") for section in SECTIONS],
    *[({section: value}, section) for section in ("price", "sessions")
      for value in ([1, 2], "text", 5, True, nested(5000))],
    ({"no_such_section": {}}, "no_such_section"),
    ({5: {}}, "5"),
    ({"tessie": {"base_url": "http://x", "baseurl": "http://y"}}, "tessie.baseurl"),
])
def test_unknown_keys_and_wrong_structure_name_the_key(mapping: dict, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(mapping, {}, {})
    assert_one_line_naming(error.value, key)


@pytest.mark.parametrize("text", [[1, 2], "a string", 5, nested(5000)], ids=["list", "string", "number", "deep"])
def test_a_top_level_that_is_not_a_mapping_is_refused(text: Any) -> None:
    with pytest.raises(ConfigError) as error:
        load(text, {}, {})
    assert_one_line_naming(error.value, "(top level)")


@pytest.mark.parametrize("content", ["price: " + "[" * 5000 + "]" * 5000, "price:\n  poll_interval: " + "x" * 1_000_000,
                                     "price: {poll_interval: !!python/object/apply:os.system ['true']}",
                                     "\x00\x01 binary", "price: &a [*a]"],
                         ids=["deep", "huge", "python tag", "binary", "alias loop"])
def test_hostile_yaml_files_stop_with_one_line(tmp_path: Path, content: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as error:
        load_files(str(path), "/dev/null", {})
    message = str(error.value)
    assert message.startswith(("config file:", "price")) and "\n" not in message and len(message) < 400, message[:400]


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from([10**400, -10**400, 2**63]),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
                    st.sampled_from(["inf", "-inf", "nan", "1e400", "0", "-0", "²", "٣", "127.0.0.1:²",
                                     "http://[::1", "5m", "-5m", "1h30m", "America/Chicago", "true", "comed",
                                     "a/" * 2000]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), inner, max_size=4),
                      max_leaves=12)
FAST = settings(max_examples=400, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(setting=st.sampled_from(SETTINGS), value=values)
def test_generated_values_either_load_or_name_the_key(setting: tuple, value: Any) -> None:
    section, name, _, _ = setting
    try:
        load({section: {name: value}}, {}, {})
    except ConfigError as error:
        assert_one_line_naming(error, f"{section}.{name}")


@FAST
@given(setting=st.sampled_from([s for s in SETTINGS if s[3]]),
       text=st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=60))
def test_generated_environment_strings_either_load_or_name_the_variable(setting: tuple, text: str) -> None:
    env = setting[3]
    try:
        load({}, {env: text}, {})
    except ConfigError as error:
        assert_one_line_naming(error, env)


# --- the quiet store: seeded database, no Prometheus, nothing writes ------------------------------

VINS = [f"5YJ3E1EA7KF1000{i:02d}" for i in range(8)]
HOSTILE = [
    "<script>alert(1)</script>",
    "Bob's \"car\", with a comma\nand a newline",
    "=HYPERLINK(\"http://evil.example/\",\"click\")",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "</td><img src=x onerror=alert(1)> back\\slash \u2028 ünïcødé 🚗",
    "\t=1+1",
]
HOSTILE_NAMES = dict(zip(VINS, HOSTILE))
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclasses.dataclass
class Quiet:
    url: str
    process: ManagedProcess
    database: Path

    def dump(self) -> list[str]:
        """The database's content, row by row (the store keeps it open in WAL mode)."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            return list(db.iterdump())


def seeded_session(index: int, vin: str, now: float) -> Session:
    start = now - 86400 * (index + 1)
    return Session(unit="garage", din="1457768-02-G--PGT00000000090", vin=vin, vehicle=HOSTILE_NAMES[vin],
                   start=start, end=start + 3600, duration_s=3600, energy_wh=7000, peak_w=7700, average_w=7000,
                   meter_energy_wh=None, supply_cost=0.21, supply_credit=0.0, delivery_cost=0.525, full_cost=0.735,
                   supply_price_cents=3.0, cost_final=True, intervals={start + 300: 583.3}, gap_s=0.0,
                   source="live_status", reconciliation="pending")


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Quiet]:
    tmp = tmp_path_factory.mktemp("quiet-store")
    database = tmp / "store.sqlite3"
    now = time.time()
    storage = Storage(database)
    storage.save_step({}, [seeded_session(i, vin, now) for i, vin in enumerate(VINS)], [], now)
    storage.save_smart_charging({VINS[0]: Memory(override_until=now + 86400)},
                                [ActionRecord(now - 60 * i, vin, name, "stop_simulated", "price_above_stop",
                                              "simulated", 9.5, 8.0, 6.0, None)
                                 for i, (vin, name) in enumerate(HOSTILE_NAMES.items())])
    storage.close()
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump({"vehicles": {"names": HOSTILE_NAMES},
                                      "sessions": {"database": str(database), "evaluation_interval": 1},
                                      "smart_charging": {"evaluation_interval": 1},
                                      "prometheus": {"url": "http://127.0.0.1:9"}}, allow_unicode=True))
    with Stack(tmp) as stack:
        store = stack.component("store", "session_store", config=config, args=["--secrets", "/dev/null"],
                                env={"SMART_CHARGING_API_TOKEN": API_TOKEN}, ready_timeout=30)
        yield Quiet(store.url, store.process, database)


# --- (b) GET parameters ---------------------------------------------------------------------------

RAW = object()   # marks a value that is already percent-encoded
GARBAGE: list[Any] = [
    "", " ", "-1", "0", "-0", "1.5", "1e400", "-1e400", "nan", "NaN", "inf", "-inf", "Infinity", str(2**63),
    str(10**30), "-" + str(10**30), "9" * 4000, "٣", "²", "½", "1_000", "0x10", "true", "null", "[]", "{}",
    "' OR 1=1 --", "1; DROP TABLE sessions;--", "\" OR \"\"=\"", "%", "\x00", (RAW, "%ED%A0%80"), (RAW, "%FF%FE"),
    (RAW, "%00%00"), "<script>alert(1)</script>", "🚗" * 100, "a" * 4000, "2026-13-01", "2026-02-30T25:00",
    "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "1970-01-01", "../../etc/passwd", "\r\nX-Injected: 1",
    "csv", "json", "day",
]


def encoded(value: Any) -> str:
    return value[1] if isinstance(value, tuple) else urllib.parse.quote(value, safe="")


def filled(path: str) -> str:
    """A path with its remaining parameters set to valid values."""
    return path.replace("{id}", "1").replace("{vin}", "5YJ3E1EA7KF000001")


def operations() -> list[tuple[str, dict]]:
    return [(path, item["get"]) for path, item in OPENAPI["paths"].items() if "get" in item and path != "/api/events"]


def check_answer(url: str, status: int, headers: dict[str, str], body: bytes, operation: dict,
                 names: tuple[str, ...]) -> None:
    if status == 404 and body == b"404: Not Found" and any(c in urllib.parse.unquote(url) for c in "{}"):
        return   # aiohttp's router: `{id}` never matches braces, so no handler was reached at all
    documented = {int(code) for code in operation["responses"]}
    assert status < 500 and status in documented, (url[:200], status, body[:300])
    assert b"Traceback" not in body and b"Server got itself in trouble" not in body, url[:200]
    kind = headers.get("Content-Type", "")
    if status != 200 or "csv" not in kind:
        assert kind.startswith("application/json"), (url[:200], kind)
        data = json.loads(body)
        if status == 400:   # it names the garbage, or a required parameter the request lacks
            required = tuple(p["name"] for p in operation.get("parameters", []) if p.get("required"))
            assert data["error"].split(":")[0] in names + required, (url[:200], data)


def test_every_get_parameter_answers_garbage_with_a_named_400_or_a_200_and_changes_nothing(quiet: Quiet) -> None:
    before = quiet.dump()
    checked = 0
    for path, operation in operations():
        parameters = [p["name"] for p in operation.get("parameters", [])]
        for name in parameters or ["junk"]:
            for value in GARBAGE:
                if "{" + name + "}" in path:
                    url = quiet.url + filled(path.replace("{" + name + "}", encoded(value) or "%20"))
                else:
                    url = f"{quiet.url}{filled(path)}?{name}={encoded(value)}"
                status, headers, body = get(url)
                check_answer(url, status, headers, body, operation, (name, "from", "to"))
                checked += 1
        for name in parameters:   # repeated: the first one counts, whichever is garbage
            for pair in (("5", "abc"), ("abc", "5"), ("", "nan")):
                url = f"{quiet.url}{filled(path)}?" + "&".join(f"{name}={v}" for v in pair)
                status, headers, body = get(url)
                check_answer(url, status, headers, body, operation, (name, "from", "to"))
    # several garbage parameters at once, generated
    rng = random.Random(20260101)
    for _ in range(150):
        path, operation = rng.choice(operations())
        parameters = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"] or ["junk"]
        chosen = rng.sample(parameters, rng.randint(1, len(parameters)))
        query = "&".join(f"{name}={encoded(rng.choice(GARBAGE))}" for name in chosen)
        url = f"{quiet.url}{filled(path.replace('{id}', str(rng.choice([1, -1, 2**70]))))}?{query}"
        status, headers, body = get(url)
        check_answer(url, status, headers, body, operation, (*chosen, "from", "to", "id", "vin"))
        checked += 1
    assert checked > 600
    assert quiet.process.running and quiet.dump() == before, "a GET changed the database"
    log = quiet.process.log_path.read_text()
    assert "Traceback" not in log and "Error handling request" not in log, log[-2000:]


# --- (c) oversized requests -----------------------------------------------------------------------

def raw_request(url: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
                ) -> int | None:
    """Status of the answer, or None when the server closed the connection instead (also a refusal)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        response.read()
        return response.status
    except (ConnectionError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def test_oversized_bodies_and_query_strings_are_refused_and_the_store_stays_healthy(quiet: Quiet) -> None:
    before = quiet.dump()
    big = b'{"vin": "' + b"A" * (10 * 1024 * 1024) + b'", "until": 1}'
    override = "/api/smart-charging/override"
    with_token = raw_request(quiet.url, "POST", override, big, {"Authorization": f"Bearer {API_TOKEN}"})
    assert with_token in (413, None), with_token
    assert raw_request(quiet.url, "POST", override, big) in (401, 413, None)
    long_query = "/api/sessions?unit=" + "a" * 100_000
    assert raw_request(quiet.url, "GET", long_query) in (400, 413, 414, 431, None)
    many = "/api/sessions?" + "&".join(f"p{i}=1" for i in range(20_000))
    assert raw_request(quiet.url, "GET", many) in (200, 400, 413, 414, 431, None)
    assert quiet.process.running
    assert get(f"{quiet.url}/-/healthy")[0] == 200 and get(f"{quiet.url}/api/sessions")[0] == 200
    assert quiet.dump() == before


# --- (d) hostile vehicle names ----------------------------------------------------------------------

def test_json_answers_keep_hostile_names_as_data(quiet: Quiet) -> None:
    for path, pick in (("/api/sessions?limit=1000", lambda d: [s["vehicle"] for s in d["sessions"]]),
                       ("/api/export?format=json", lambda d: [s["vehicle"] for s in d]),
                       ("/api/smart-charging/actions?limit=1000", lambda d: [a["vehicle"] for a in d["actions"]])):
        status, headers, body = get(quiet.url + path)
        assert status == 200 and headers["Content-Type"].startswith("application/json"), (path, headers)
        assert sorted(pick(json.loads(body))) == sorted(HOSTILE), path


def exported_rows(quiet: Quiet) -> list[dict[str, str]]:
    status, headers, body = get(f"{quiet.url}/api/export")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(body.decode(), newline="")))


def test_csv_export_round_trips_names_with_quotes_commas_and_newlines(quiet: Quiet) -> None:
    rows = exported_rows(quiet)
    unguarded = [name[1:] if name.startswith("'") and name[1:].startswith(FORMULA_START) else name
                 for name in (row["vehicle"] for row in rows)]
    assert sorted(unguarded) == sorted(HOSTILE)
    assert {row["vin"] for row in rows} == set(VINS)


def test_csv_export_guards_against_spreadsheet_formulas(quiet: Quiet) -> None:
    rows = exported_rows(quiet)
    dangerous = [row["vehicle"] for row in rows if row["vehicle"].startswith(FORMULA_START)]
    assert dangerous == [], f"formula-like cells exported as is: {dangerous}"
    assert sum(row["vehicle"].startswith("'") for row in rows) == sum(h.startswith(FORMULA_START) for h in HOSTILE)


def test_store_metrics_escape_hostile_names_in_labels(quiet: Quiet) -> None:
    text = get(f"{quiet.url}/metrics")[2].decode()
    assert promtool_problems(text) == ""
    assert label_values(text, "vehicle") >= set(HOSTILE), "the names came back unchanged from the exposition"


def test_store_pages_escape_hostile_names(quiet: Quiet) -> None:
    page = get(f"{quiet.url}/")[2].decode()
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page


def test_the_live_components_keep_configured_names_as_data(stack: SecurityStack) -> None:
    """The shared stack's `vehicles.names` hold <script>, quotes, a newline, a backslash and a formula."""
    vehicle, fleet, store = stack.urls["vehicle"], stack.urls["fleet"], stack.store
    wait_until(lambda: set(NAMES.values()) <= label_values(get(f"{vehicle}/metrics")[2].decode(), "vehicle"), 20,
               0.2, "both cars in the vehicle exporter's exposition")
    wait_until(lambda: set(NAMES.values()) <= label_values(get(f"{fleet}/metrics")[2].decode(), "vehicle"), 20, 0.2,
               "both cars on the Fleet units")
    wait_until(lambda: {v["vehicle"] for v in get_json(f"{store}/api/smart-charging")["vehicles"]}
               >= set(NAMES.values()), 20, 0.2, "both cars in smart charging")
    for name in ("twc", "fleet", "vehicle", "price", "store"):
        for accept in ("", "application/openmetrics-text; version=1.0.0"):
            text = get(f"{stack.urls[name]}/metrics", headers={"Accept": accept} if accept else None)[2].decode()
            if not accept:
                assert promtool_problems(text) == ""
            assert "<script>alert(1)</script>\n" not in text and FORMULA_NAME not in text, "a raw newline in a label"
        page = get(f"{stack.urls[name]}/")[2].decode()
        assert "<script>" not in page, f"unescaped name on the landing page of {name}"
    landing = get(f"{vehicle}/")[2].decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in landing, "the vehicle page lists the car, escaped"
    for path in ("/api/smart-charging", "/api/sessions/current", "/api/smart-charging/actions"):
        status, headers, body = get(store + path)
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        json.loads(body)
    current = get_json(f"{store}/api/sessions/current")["sessions"]
    assert {s["vehicle"] for s in current} <= set(NAMES.values())
    assert SCRIPT_NAME in {v["vehicle"] for v in get_json(f"{store}/api/smart-charging")["vehicles"]}


def test_non_finite_times_are_refused_not_read_as_an_empty_range(quiet: Quiet) -> None:
    for value in ("nan", "inf", "-inf", "1e400"):
        status, _, body = get(f"{quiet.url}/api/sessions?from={value}")
        assert status == 400 and json.loads(body)["error"].startswith("from: expected a finite number"), (value, body)
