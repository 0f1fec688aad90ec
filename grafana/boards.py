"""One function per dashboard. Every query names a metric or recording rule the suite really exports
(README: Metrics, Sessions, Smart charging; rules/*.yml); tests/e2e/test_dashboard_queries.py runs
each of them against a real Prometheus fed by the simulator.

Conventions: every selector of every query also follows `$site` (the homes Prometheus scrapes): `q()`
adds `site=~"$site"` (grafana.panels), so the queries never match on it; with several sites selected,
totals of power, energy, cost and sessions add the sites up, while prices, percentiles, thresholds,
states, ages, temperatures and ratios are per site (`per_site`: `max by (site)`, the site in the
legend), breakdowns per unit or vehicle are `by (site, unit)` (two homes may both have a "garage") and
joins between a site's series are `on(site, ...)`. `$unit` filters Wall
Connector units (`unit` on Fleet and session metrics, `charger` on the local API), `$vehicle` vehicles; both are multi-value, All being `.*` (every series, the unlabelled
ones too; the session store's tables get the selection as `${unit:csv}` and read `.*` as no filter). Per-day and per-hour bars
are windows `[1d] offset -1d`: Grafana aligns those steps to local midnight (or the hour), so each
bar is the day (hour) that starts at its timestamp, today's included.

The session store's counters are read with `counted()`, not `increase()`: the window's last value
minus the value it started from, so a series that first appears inside the window counts from 0 (a
car's or unit's first session) and nothing is extrapolated (the total is exact to the cent, and
consecutive days add up to the range).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from grafana_foundation_sdk.builders import barchart

from grafana.panels import (
    AGE, AGO, AMPERE, BAD_WHEN_ANY, CELSIUS, CENTS_PER_KWH, COUNT, DBM, DECIBEL, DOLLARS, DOLLARS_PER_HOUR, DURATION,
    GOOD_WHEN_ONE, HERTZ, J_PER_KWH, KWH, LOCAL_TIME, METERS_PER_MILE, MILES, NEUTRAL, NONE, PERCENT, PERCENTILE,
    PRICE, RATIO, REQUESTS, SECONDS, SOC, TEMPERATURE, UP, VOLT, WATT, WATT_HOURS, YES_NO, Board, Infinity, api_bars,
    api_table, bars, dial, fill_between, per_site_panel, filter_variable, fixed_colour, flags, graph, in_fahrenheit, joined_table,
    keyed_bars, label_table, histogram, by_site, per_site, q, setting, single, site_legend, states, temperature,
    temperature_legend, step, temperature_variable, texts, time_format_variable, timeline,
)

U, V, C = 'unit=~"$unit"', 'vehicle=~"$vehicle"', 'charger=~"$unit"'
EXPORTER_JOBS = 'job=~"twc|fleet|vehicle|price|session_store"'
HEALTH_PREFIXES = "twc|tesla_energy_site|tesla_vehicle|electricity_price"
UPSTREAMS = f"{HEALTH_PREFIXES}|charging_session_store|charging_session_store_fleet"  # and the session store
REQUESTS_TOTAL = f'{{__name__=~"({UPSTREAMS})_upstream_requests_total"}}'
DURATION_BUCKETS = f'{{__name__=~"({UPSTREAMS})_upstream_request_duration_seconds_bucket"}}'
COUNTED_WHEN_RECORDED = ("From the session store's counters, so a session counts when it is recorded: one known only "
                         "from Fleet charge history (hours late) counts on the day it arrives. The session store's "
                         "summaries (Energy & Costs, weeks and months) count by start time.")
CALENDAR = ("The session store's /api/summary: sessions in the time range by start, per week (from Monday) or "
            "month in general.timezone; the first and last periods may be partial.")
MONTH_S = 2629800  # an average month (30.44 days): the monthly charges prorated over a range
HOURLY_BILLING = "ComEd bills each clock hour at the mean of its twelve 5-minute prices"
PROJECTED = ("the projected billed price of the clock hour in progress: the mean of its published 5-minute "
             "prices, the rest at the latest one")

FLEET_STATE = states({1: ("charging", "green"), 2: ("disconnected", "text"), 4: ("connected", "blue")})
EVSE_STATE = states({0: ("booting", "purple"), 1: ("not connected", "text"), 2: ("connected", "blue"),
                     4: ("ready", "blue"), 6: ("negotiating", "yellow"), 7: ("error", "red"),
                     8: ("charging finished", "green"), 9: ("waiting for car", "yellow"),
                     10: ("charging (reduced)", "orange"), 11: ("charging", "green")})
VEHICLE_CHARGING = states({0: ("disconnected", "text"), 1: ("no power", "orange"), 2: ("starting", "yellow"),
                           3: ("charging", "green"), 4: ("stopped", "blue"), 5: ("complete", "purple")})
CONNECTIVITY = states({0: ("offline", "red"), 1: ("asleep", "blue"), 2: ("online", "green")})
SMART_STATUS = states({0: ("not charging", "text"), 1: ("charging", "green"), 2: ("paused", "orange"),
                       3: ("paused (dry run)", "yellow"), 4: ("user override", "blue"),
                       5: ("manual override", "purple"), 6: ("fail-safe", "red")})
MODE = states({0: ("live control", "green"), 1: ("dry run", "blue")})
FAULT_STATE = states({2: ("normal (2)", "green")})
COST_FINAL = flags(("final", "green"), ("provisional", "orange"))
CONFIG_STATUS = states({5: ("commissioned (5)", "green")})


def unit_variable():
    return filter_variable("unit", "Wall Connector", "tesla_wall_connector_power_watts", "unit")


def vehicle_variable():
    return filter_variable("vehicle", "Vehicle", "tesla_vehicle_battery_level_percent", "vehicle")


def session_unit_variable():
    """Every unit the session store knows, from the Fleet API or the local one (exported at 0 from the start)."""
    return filter_variable("unit", "Wall Connector", "charging_sessions_completed_total", "unit")


def session_vehicle_variable():
    return filter_variable("vehicle", "Vehicle", "charging_sessions_completed_total", "vehicle")


def session_variables() -> list:
    """Units and vehicles as the session store names them (vehicles.names)."""
    return [session_unit_variable(), session_vehicle_variable()]


@dataclass(frozen=True)
class Window:
    """A window of time as PromQL sees it at each evaluation: `[length] offset shift`; it starts `before`
    earlier than the evaluation (an offset) at `start` (a PromQL time)."""

    length: str
    shift: str
    before: str
    start: str

    @property
    def selector(self) -> str:
        return f"[{self.length}]{self.at_end}"

    @property
    def at_end(self) -> str:
        return f" offset {self.shift}" if self.shift else ""

    @property
    def at_start(self) -> str:
        return f" offset {self.before}" if self.before else ""


class SinceStart(Window):
    """From the start of a range query to each of its steps (a running total): the value at the start is
    read `@ start()`, the first value over the whole range `@ end()`."""

    @property
    def selector(self) -> str:
        return f"[{self.length}] @ end()"

    @property
    def at_start(self) -> str:
        return " @ start()"


# The time range (instant panels), and a bar's day or hour: the one starting at the step.
RANGE = Window("$__range", "", "$__range", "time() - $__range_s")
DAY = Window("1d", "-1d", "", "time()")
HOUR = Window("1h", "-1h", "", "time()")
CUMULATIVE = SinceStart("$__range", "", "", "${__from:date:seconds}")
BEFORE = "1d"   # how far back a value at a window's start or end is looked for: gaps up to a day are bridged
STORE_UP = "charging_session_store_up"
FIRST_RECORDED = "charging_session_first_recorded_timestamp_seconds"


def counted(series: str, window: Window, by: str = "") -> str:
    """What a session-store counter gained in the window, summed: per series its value at the window's
    end (its last sample up to BEFORE earlier) minus its value at the window's start, which is

    - its last sample before the window (up to BEFORE earlier);
    - else 0, when the store was scraped just before the window (so the series did not exist yet: the
      first session of a car or unit) or had recorded no session before the window (a new installation);
    - else (Prometheus holds nothing from before the window: retention, an outage of more than a day)
      its first value in the window, so a lifetime total is never counted as the window's.

    `increase()` would miss the first value of a series that appears in the window (it starts at its
    first session's value) and extrapolate the rest. Session counters only fall when sessions of an
    unknown vehicle are attributed to one learned from charge history; per series the difference then
    moves them from one vehicle to the other, and the sum is right. Only the first value reads the whole
    window, as `increase()` does; the rest reads a day. The store's own series decide per site (`on(site)`):
    one home's store being up says nothing of another's history."""
    end = f"last_over_time({series}[{BEFORE}]{window.at_end})"
    before = f"last_over_time({series}[{BEFORE}]{window.at_start})"
    first = f"min_over_time({series}{window.selector})"
    fresh = (f"last_over_time({STORE_UP}[{BEFORE}]{window.at_start})"
             f" or last_over_time({FIRST_RECORDED}[{BEFORE}]{window.at_end}) >= {window.start}")
    return f"sum{by}({end} - ({before} or {first} unless on(site) ({fresh}) or 0 * {end}))"


def energy_kwh(window: Window, by: str = "") -> str:
    """Energy of the sessions completed in the window, kWh."""
    return f"{counted(f'charging_session_energy_joules_total{{{U},{V}}}', window, by)} / {J_PER_KWH}"


def cost(window: Window, component: str, by: str = "") -> str:
    return counted(f'charging_session_cost_dollars_total{{{U},{V},component="{component}"}}', window, by)


def net_cost(window: Window, by: str = "") -> str:
    """Supply (net of credits from negative prices) plus delivery, dollars."""
    charged = counted(f'charging_session_cost_dollars_total{{{U},{V},component!="supply_credit"}}', window, by)
    return f'({charged} - {cost(window, "supply_credit", by)})'


def paid_cents_per_kwh(window: Window, by: str = by_site()) -> str:
    """Average supply price paid: net supply cost over energy, per site (a ratio: never across sites) or finer
    group; only groups with energy."""
    return f'({cost(window, "supply", by)} - {cost(window, "supply_credit", by)}) * 100 / ({energy_kwh(window, by)} > 0)'


def billed_cents_per_kwh(window: str) -> str:
    """Average billed hourly price of each site's zone (one sample per complete hour, stamped with its end),
    every hour weighing once."""
    return per_site("max", f"avg_over_time(electricity_price_billed_cents_per_kwh{window})")


def reference_cost(window: Window) -> str:
    """What the sessions would have cost on the fixed-price rate (same delivery), dollars."""
    return counted(f"charging_session_reference_cost_dollars_total{{{U},{V}}}", window)


def savings(window: Window) -> str:
    """The fixed-price rate's cost minus the net cost (supply - credits + delivery), dollars."""
    return f"({reference_cost(window)} - {net_cost(window)})"


def a_week_earlier(expr: str) -> str:
    """An instant expression evaluated a week earlier (its own `$__range` and time() included): the
    last minute step of a subquery offset 1w."""
    return f"last_over_time(({expr})[5m:1m] offset 1w)"


# Each site's zone has its own prices: every price is per site (the highest of two zones means nothing).
PRICE_NOW = per_site("max", "electricity_price_cents_per_kwh")                  # the latest 5-minute price
HOUR_NOW = per_site("max", "electricity_price_hour_projected_cents_per_kwh")    # what energy drawn now is billed at
LAST_BILLED = per_site("max", "last_over_time(electricity_price_billed_cents_per_kwh[2h])")  # the newest complete hour
# The billed price of the hour starting at a step H (bars of an hour): its sample is stamped with the hour's
# end, H + 1h. Half an hour of lookback keeps out the previous hour's, stamped H (Prometheus 2 range
# selectors include their start).
BILLED_HOUR = per_site("max", "last_over_time(electricity_price_billed_cents_per_kwh[30m] offset -1h)")
# The hours of the day starting at a step D end in (D, D + 1d]: the same minus the previous day's last hour.
BILLED_DAY = "[1439m] offset -1d"
# Power per unit of each site: the Fleet view of every unit, else the local API's chargers (as
# charging:power_watts:sum); by (site, unit), so a "garage" at two homes stays two units.
UNIT_POWER = (f"sum by (site, unit) (charging:unit_power_watts{{{U}}}) or sum by (site, unit) "
              f'(label_replace(charging:charger_power_watts{{{C}}}, "unit", "$1", "charger", "(.*)"))')


CHARGING_W = 100   # sessions.power_threshold_w's default: a unit above it is charging
MINUTE_KWH = f"60 / {J_PER_KWH}"     # W sampled each minute -> kWh


def hourly_kwh() -> str:
    """Energy each unit drew in the clock hour starting at each step: its power sampled every minute x a
    minute. The subquery is a second short of an hour (Prometheus 2 includes a subquery's start step), so
    its steps are the hour's sixty minute ends; in the hour in progress, minutes up to 5 ahead read the
    latest sample (Prometheus's lookback)."""
    return f"sum_over_time(({UNIT_POWER})[3599s:1m] offset -1h) * {MINUTE_KWH}"


# The browser's UTC offset (seconds, modulo a day: all the hour of the day needs) at the end of the time range:
# its local clock (H, m, s) minus the UTC time of day of the same moment (x: Unix milliseconds). Prometheus
# knows only UTC; PromQL reads the leading zeros of padded formats (HH) as octal, so the unpadded ones are used.
LOCAL_OFFSET_S = ("(((${__to:date:H} * 60 + ${__to:date:m}) * 60 + ${__to:date:s}"
                  " - (${__to:date:x} - ${__to:date:x} % 1000) / 1000 % 86400 + 86400) % 86400)")
HOURS_OF_DAY = ("Local hours are the browser's: Prometheus knows only UTC, so the dashboard adds the browser's "
                "UTC offset at the end of the time range to every moment (across a daylight-saving change, the "
                "time before it is an hour off).")


def local_hour(shift: str) -> str:
    """A series {hour="<0..23>"} 1: the local hour of the evaluation time shifted by `shift` seconds."""
    return f'count_values("hour", hour(vector(time() {shift} + {LOCAL_OFFSET_S})))'


# Subqueries over the range give per hour-of-day series of each site: the billed price of its zone's hour ending
# at each hourly step (stamped with its end) labelled with the hour it started in; its units' power each minute.
BILLED_BY_HOUR = (f"{per_site('max', 'last_over_time(electricity_price_billed_cents_per_kwh[30m])')} "
                  f"* on() group_left(hour) {local_hour('- 3600')}")
ENERGY_BY_HOUR = (f"sum_over_time(({per_site('sum', UNIT_POWER)} * on() group_left(hour) {local_hour('- 30')})"
                  f"[$__range:1m]) * {MINUTE_KWH}")


def price_and_thresholds() -> tuple:
    return (q(HOUR_NOW, site_legend("this hour (projected)")), q(PRICE_NOW, site_legend("5-minute price")),
            q(per_site("max", "smart_charging_stop_threshold_cents_per_kwh"), site_legend("stop above")),
            q(per_site("max", "smart_charging_resume_threshold_cents_per_kwh"), site_legend("resume below")))


def overview() -> Board:
    board = Board("charging-overview", "Charging Overview",
                  "Home: live power per Wall Connector, the vehicles, this hour's price (what charging now is billed "
                  "at) beside the 5-minute price and where it ranks, today's energy, cost and savings, smart "
                  "charging, the alerts firing now, which car is on which unit and the latest sessions.",
                  time_from="now-6h", refresh="30s",
                  variables=[session_unit_variable(), vehicle_variable(), time_format_variable()])
    board.add(
        single("Charging power", WATT, q(f"sum({UNIT_POWER})"),
               description="Fleet units, else the local Wall Connectors (as charging:power_watts:sum).",
               sparkline=True),
        single("Charging cost now", DOLLARS_PER_HOUR, q("sum(charging:cost_dollars_per_hour)"), decimals=2, w=3,
               thresholds=("green", (0.5, "yellow"), (1, "orange"), (2, "red")),
               description=f"Every unit's power x (this hour's projected price + the delivery rate in force), dollars "
                           f"per hour (each site's power at its own prices, the selected sites added up). "
                           f"{HOURLY_BILLING}, so energy drawn now pays the hour's price, not the latest 5-minute one."),
        single("Price now", CENTS_PER_KWH, q(HOUR_NOW, site_legend("this hour")), q(PRICE_NOW, site_legend("5-minute")),
               thresholds=PRICE,
               background=True, decimals=1,
               description=f"This hour: {PROJECTED}; what charging now is billed at ({HOURLY_BILLING}). "
                           f"5-minute: the latest 5-minute price."),
        single("This hour's percentile", PERCENT,
               q(per_site("max", "electricity_price_hour_projected_percentile_rank_percent"), site_legend()),
               thresholds=PERCENTILE, decimals=0, w=3,
               description="Where this hour's projected price ranks among the billed hours of the last 30 days; "
                           "smart charging (signal billed) stops above the 90th and resumes below the 75th "
                           "percentile."),
        single("Energy today", KWH, q(energy_kwh(RANGE)), time_from="now/d", decimals=1, w=3,
               description=f"Sessions completed today. {COUNTED_WHEN_RECORDED}"),
        single("Cost today", DOLLARS, q(net_cost(RANGE)), time_from="now/d", decimals=2, w=3,
               description="Supply (net of credits) and delivery of the sessions completed today, as billed; a "
                           "session enters once its cost is final (every hour it touched complete)."),
        single("Savings today", DOLLARS, q(savings(RANGE)), time_from="now/d", decimals=2,
               thresholds=("red", (0, "green")),
               description="What the sessions completed today would have cost on the fixed-price rate "
                           "(tariff.reference_supply_per_kwh, same delivery) minus what they cost."),
    )
    board.add(
        graph("Power per Wall Connector", WATT, q(UNIT_POWER, site_legend("{{unit}}")), w=16),
        graph("Price and smart-charging thresholds", CENTS_PER_KWH, *price_and_thresholds(), thresholds=PRICE, w=8,
              calcs=("lastNotNull",),
              description="This hour's projected price (what charging now is billed at) and the 5-minute price "
                          "against smart charging's thresholds (with signal billed: percentiles of the billed "
                          "hours of the lookback)."),
    )
    board.add(
        bars("State of charge", PERCENT, q(f"tesla_vehicle_battery_level_percent{{{V}}}", site_legend("{{vehicle}}")),
             thresholds=SOC, min_value=0, max_value=100),
        single("Vehicle charging state", NONE, q(f"tesla_vehicle_charging_state_code{{{V}}}",
                                                 site_legend("{{vehicle}}")),
               mappings=VEHICLE_CHARGING, w=8, h=6,
               description="As the car reports it (cached while asleep; the unit's power is fresher)."),
        single("Smart charging", NONE, q(f"smart_charging_status_code{{{V}}}", site_legend("{{vehicle}}")),
               mappings=SMART_STATUS, w=6, h=6),
        single("Smart-charging mode", NONE, q("smart_charging_dry_run", site_legend()), mappings=MODE, w=2, h=6),
    )
    board.add(
        bars("Session in progress", KWH, q(f"charging_session_in_progress_energy_joules{{{U}}} / {J_PER_KWH}",
                                          site_legend("{{unit}}")), w=8,
             description="Energy of each open session so far."),
        label_table("Active alerts", 'ALERTS{alertstate="firing"}',
                    ["alertname", "severity", "unit", "charger", "vehicle", "provider", "job"], w=16,
                    thresholds=NEUTRAL),
    )
    board.row("Chargers and sessions").add(
        api_table("Who is charging where", chargers_query(), w=24, h=6,
                  units={"Power": WATT, "Charging for": DURATION, "Energy so far": WATT_HOURS, "Cost so far": DOLLARS},
                  mappings={"State": CHARGER_STATE}, sort_ascending=True,
                  description="The session store's /api/chargers (the selected units): each unit as the session "
                              "state machine sees it, "
                              "the car on it (VIN and name when known) and the session in progress with its "
                              f"running billed cost ({HOURLY_BILLING}: the hour in progress at its projected "
                              "price)."),
        api_table("Recent sessions", Infinity("/api/sessions", "sessions").param("limit", "10").filtered()
                  .column("start", "Start", "timestamp_epoch_s").column("unit", "Unit").column("vehicle", "Vehicle")
                  .column("duration_s", "Duration", "number").column("energy_wh", "Energy", "number")
                  .column("full_cost", "Cost", "number").column("effective_price_cents", "Effective price", "number")
                  .column("cost_final", "Final", "boolean"), h=9,
                  units={"Duration": DURATION, "Energy": WATT_HOURS, "Cost": DOLLARS, "Effective price": CENTS_PER_KWH},
                  mappings={"Final": COST_FINAL},
                  description="The 10 newest completed sessions of the selected units and vehicles, whatever the "
                              "time range (Session History has them all)."),
    )
    return board


CHARGER_STATE = texts({"charging": ("charging", "green"), "plugged_in": ("plugged in", "blue"),
                       "idle": ("idle", "text"), "unknown": ("unknown", "orange")})


def chargers_query() -> Infinity:
    """Which car is on which unit, and the session in progress with its running cost."""
    return (Infinity("/api/chargers", "chargers").filtered("unit")
            .column("unit", "Unit").column("state", "State").column("vehicle", "Vehicle").column("vin", "VIN")
            .column("power_w", "Power", "number").column("session.start", "Session start", "timestamp_epoch_s")
            .column("session.duration_s", "Charging for", "number")
            .column("session.energy_wh", "Energy so far", "number").column("session.cost", "Cost so far", "number"))


def wall_connectors() -> Board:
    board = Board("wall-connectors", "Wall Connectors",
                  "Every unit, leader and followers, from the Fleet API: one row per unit (state, power, vehicle, "
                  "today's energy and sessions), how many are charging, today's sessions, this week against last "
                  "week, power, state, fault state, plugged-in vehicle and unit facts.",
                  variables=[unit_variable(), session_vehicle_variable(), time_format_variable()])
    energy, sessions = "charging_session_energy_joules_total", "charging_sessions_completed_total"
    board.add(
        joined_table("All Wall Connectors", "unit",
                     (q(per_site("max", f"tesla_wall_connector_state_code{{{U}}}", "unit")), "State"),
                     (q(per_site("max", f"charging:unit_power_watts{{{U}}}", "unit")), "Power"),
                     (q(per_site("max", f"tesla_wall_connector_vehicle_info{{{U}}}", "unit", "vehicle")), ""),
                     (q(f"{counted(f'{energy}{{{U}}}', RANGE, by_site('unit'))} / {J_PER_KWH}"), "Energy today"),
                     (q(counted(f"{sessions}{{{U}}}", RANGE, by_site("unit"))), "Sessions today"),
                     labels=["vehicle"], units={"Power": WATT, "Energy today": KWH, "Sessions today": COUNT},
                     mappings={"State": FLEET_STATE}, time_from="now/d", w=16, h=7, sort=("unit", False),
                     description=f"One row per unit: its Fleet state and power now, the plugged-in vehicle, and the "
                                 f"energy and number of the sessions completed today (every vehicle). "
                                 f"{COUNTED_WHEN_RECORDED}"),
        single("Units charging", COUNT, q(f"count(tesla_wall_connector_state_code{{{U}}} == 1) or vector(0)"),
               decimals=0, h=7, description="Units whose Fleet state is charging now."),
        single("Vehicles connected", COUNT, q(f"sum(tesla_wall_connector_vehicle_connected{{{U}}}) or vector(0)"),
               decimals=0, h=7, description="Units with a vehicle plugged in now."),
        api_table("Today's sessions", sessions_query(), time_from="now/d", h=8,
                  units=SESSION_UNITS, mappings={"Final": COST_FINAL},
                  description="The session store's /api/sessions since midnight, for the selected units and "
                              "vehicles, newest first."),
    )
    week = f"{{{U},{V}}}"
    board.row("This week against last week (to the same moment)").add(*(
        single(title, unit, q(expr, "this week"), q(a_week_earlier(expr), "last week"), time_from="now/w",
               decimals=decimals, w=8, h=5,
               description=f"Since the start of the week (the time picker's week start), and last week from its "
                           f"start to the same moment (offset 1w). {COUNTED_WHEN_RECORDED}")
        for title, unit, expr, decimals in (
            ("Energy this week and last", KWH, energy_kwh(RANGE), 1),
            ("Cost this week and last", DOLLARS, net_cost(RANGE), 2),
            ("Sessions this week and last", COUNT, counted(f"{sessions}{week}", RANGE), 0))))
    board.row("Units").add(
        graph("Power per unit", WATT, q(f"charging:unit_power_watts{{{U}}}", site_legend("{{unit}}")), w=24,
              description="Fleet live_status; negative while power flows back to the home (Powershare)."),
        bars("Power now", WATT, q(f"charging:unit_power_watts{{{U}}}", site_legend("{{unit}}"))),
        single("State", NONE, q(f"tesla_wall_connector_state_code{{{U}}}", site_legend("{{unit}}")),
               mappings=FLEET_STATE, w=8, h=6, description="Fleet wall_connector_state (community-observed meanings)."),
        single("Vehicle plugged in", NONE, q(f"tesla_wall_connector_vehicle_connected{{{U}}}", site_legend("{{unit}}")),
               mappings=YES_NO, w=8, h=6),
        timeline("State over time", NONE, q(f"tesla_wall_connector_state_code{{{U}}}", site_legend("{{unit}}")),
                 mappings=FLEET_STATE),
        single("Fault state", NONE, q(f"tesla_wall_connector_fault_state_code{{{U}}}", site_legend("{{unit}}")),
               mappings=FAULT_STATE, thresholds=("orange",), w=8, h=6,
               description="wall_connector_fault_state as reported: 2 in every observation so far; other codes "
                           "are undocumented."),
        label_table("Plugged-in vehicle", f"tesla_wall_connector_vehicle_info{{{U}}}", ["unit", "vehicle", "vin"],
                    w=8),
        label_table("Units", f"tesla_wall_connector_info{{{U}}}",
                    ["unit", "din", "part_number", "serial_number", "device_id", "active"], w=8),
        bars("Energy of completed sessions", KWH,
             q(f"{counted(f'charging_session_energy_joules_total{{{U}}}', RANGE, by_site('unit'))} / {J_PER_KWH}",
               site_legend("{{unit}}")), w=12,
             description=f"Sessions completed in the time range. {COUNTED_WHEN_RECORDED}"),
        bars("Session in progress", KWH,
             q(f"charging_session_in_progress_energy_joules{{{U}}} / {J_PER_KWH}", site_legend("{{unit}}")), w=12),
    )
    return board


IN_CHOSEN_UNIT = ("In the unit of the Temperature variable (°C or °F, each series named with it): Grafana "
                  "interpolates neither a panel's unit nor its thresholds, so series named °F get the fahrenheit "
                  "unit and the thresholds converted.")
LIFETIME_COUNTERS = (("twc_charge_starts_total", "charge starts"), ("twc_contactor_cycles_total", "contactor cycles"),
                     ("twc_contactor_cycles_loaded_total", "under load"), ("twc_connector_cycles_total", "plug-ins"),
                     ("twc_alerts_total", "alerts"), ("twc_thermal_foldbacks_total", "thermal foldbacks"))


def wall_connector_diagnostics() -> Board:
    local = filter_variable("unit", "Wall Connector", "twc_power_watts", "charger")
    board = Board("wall-connector-diagnostics", "Wall Connector diagnostics",
                  "The local API of the Wall Connectors on the LAN (the power-sharing leader only): voltages, "
                  "currents, temperatures (in °C or °F), Wi-Fi and lifetime counters.",
                  variables=[local, temperature_variable()])
    board.row("Power and grid").add(
        graph("Power", WATT, q(f"twc_power_watts{{{C}}}", site_legend("{{charger}}"))),
        graph("Grid voltage", VOLT, q(f"twc_grid_voltage_volts{{{C}}}", site_legend("{{charger}}")), w=6),
        graph("Grid frequency", HERTZ, q(f"twc_grid_frequency_hertz{{{C}}}", site_legend("{{charger}}")), w=6),
        graph("Currents", AMPERE, q(f"twc_vehicle_current_amperes{{{C}}}", site_legend("{{charger}} vehicle")),
              q(f"twc_phase_current_amperes{{{C}}}", site_legend("{{charger}} {{phase}}"))),
        graph("Output voltage per phase", VOLT, q(f"twc_phase_voltage_volts{{{C}}}",
                                                  site_legend("{{charger}} {{phase}}")),
              description="A few volts while the contactor is open."),
    )
    board.row("State").add(
        timeline("EVSE state", NONE, q(f"twc_evse_state_code{{{C}}}", site_legend("{{charger}}")),
                 mappings=EVSE_STATE, h=5),
        single("Reachable", NONE, q('twc_up{target=~"$unit"}', site_legend("{{target}}")), mappings=UP,
               thresholds=GOOD_WHEN_ONE),
        single("Contactor closed", NONE, q(f"twc_contactor_closed{{{C}}}", site_legend("{{charger}}")),
               mappings=YES_NO),
        single("Vehicle plugged in", NONE, q(f"twc_vehicle_connected{{{C}}}", site_legend("{{charger}}")),
               mappings=YES_NO),
        single("Session energy (unit meter)", KWH, q(f"twc_session_energy_joules{{{C}}} / {J_PER_KWH}",
                                                     site_legend("{{charger}}")), decimals=2),
        single("Plugged in for", DURATION, q(f"twc_session_duration_seconds{{{C}}}", site_legend("{{charger}}"))),
        single("Uptime", DURATION, q(f"twc_uptime_seconds{{{C}}}", site_legend("{{charger}}"))),
        single("Active alerts", COUNT, q(f"twc_active_alerts{{{C}}}", site_legend("{{charger}}")),
               thresholds=BAD_WHEN_ANY),
        single("Not-ready reasons", COUNT, q(f"twc_not_ready_reasons{{{C}}}", site_legend("{{charger}}")),
               thresholds=BAD_WHEN_ANY, description="Newer firmware only."),
        single("Installation status", NONE, q(f"twc_config_status{{{C}}}", site_legend("{{charger}}")),
               mappings=CONFIG_STATUS,
               thresholds=("orange",)),
    )
    board.row("Temperatures and signals").add(
        graph("Temperatures", CELSIUS,
              q(temperature(f"twc_temperature_celsius{{{C}}}"),
                temperature_legend(site_legend("{{charger}} {{sensor}}"))),
              q(temperature("charging_threshold:temperature_high_celsius"), temperature_legend("alert level")),
              thresholds=TEMPERATURE, regexp_overrides=in_fahrenheit(*TEMPERATURE), description=IN_CHOSEN_UNIT),
        graph("Relay coil, pilot and thermopile", VOLT,
              q(f"twc_relay_coil_voltage_volts{{{C}}}", site_legend("{{charger}} relay {{relay}}")),
              q(f"twc_pilot_voltage_volts{{{C}}}", site_legend("{{charger}} pilot {{level}}")),
              q(f"twc_input_thermopile_volts{{{C}}}", site_legend("{{charger}} thermopile"))),
        single("Average start-up temperature", CELSIUS,
               q(temperature(f"twc_average_startup_temperature_celsius{{{C}}}"),
                 temperature_legend(site_legend("{{charger}}"))),
               thresholds=TEMPERATURE, regexp_overrides=in_fahrenheit(*TEMPERATURE),
               description=f"Absent while the unit reports nan. {IN_CHOSEN_UNIT}"),
    )
    board.row("Wi-Fi").add(
        graph("Wi-Fi signal", PERCENT, q(f"twc_wifi_signal_strength_percent{{{C}}}", site_legend("{{charger}}")),
              thresholds=("red", (30, "orange"), (50, "green")), min_value=0, max_value=100),
        single("RSSI", DBM, q(f"twc_wifi_rssi_dbm{{{C}}}", site_legend("{{charger}}")),
               thresholds=("red", (-80, "orange"), (-67, "green"))),
        single("SNR", DECIBEL, q(f"twc_wifi_snr_decibels{{{C}}}", site_legend("{{charger}}")),
               thresholds=("red", (10, "orange"), (20, "green"))),
        single("Wi-Fi connected", NONE, q(f"twc_wifi_connected{{{C}}}", site_legend("{{charger}}")), mappings=YES_NO,
               thresholds=GOOD_WHEN_ONE, w=2),
        single("Internet", NONE, q(f"twc_internet_connected{{{C}}}", site_legend("{{charger}}")), mappings=YES_NO,
               thresholds=GOOD_WHEN_ONE, w=2),
        label_table("Network", f"twc_wifi_info{{{C}}}", ["charger", "ssid", "ip", "mac"]),
        label_table("Firmware", f"twc_version_info{{{C}}}",
                    ["charger", "firmware_version", "part_number", "serial_number"]),
    )
    board.row("Lifetime counters").add(
        single("Lifetime energy", KWH, q(f"twc_lifetime_energy_joules_total{{{C}}} / {J_PER_KWH}",
                                         site_legend("{{charger}}")),
               decimals=0, description="The unit's own counter: it updates at session end and is known to jump."),
        single("Counts", COUNT, *(q(f"{name}{{{C}}}", site_legend(f"{{{{charger}}}} {label}"))
                                  for name, label in LIFETIME_COUNTERS),
               w=12),
        single("Charging time", DURATION, q(f"twc_charging_time_seconds_total{{{C}}}", site_legend("{{charger}}"))),
        single("Powered on", DURATION, q(f"twc_powered_on_time_seconds_total{{{C}}}", site_legend("{{charger}}"))),
    )
    return board


SESSION_UNITS = {"Duration": DURATION, "Energy": WATT_HOURS, "Peak power": WATT, "Average power": WATT,
                 "Supply price": CENTS_PER_KWH, "Effective price": CENTS_PER_KWH, "Supply": DOLLARS,
                 "Delivery": DOLLARS, "Cost": DOLLARS, "Savings": DOLLARS}


def sessions_query() -> Infinity:
    """Completed sessions in the time range, of the selected units and vehicles."""
    return (Infinity("/api/sessions", "sessions").time_range().param("limit", "1000").filtered()
            .column("start", "Start", "timestamp_epoch_s").column("end", "End", "timestamp_epoch_s")
            .column("unit", "Unit").column("vehicle", "Vehicle").column("vin", "VIN")
            .column("duration_s", "Duration", "number").column("energy_wh", "Energy", "number")
            .column("peak_w", "Peak power", "number").column("average_w", "Average power", "number")
            .column("supply_price_cents", "Supply price", "number")
            .column("effective_price_cents", "Effective price", "number").column("supply_cost", "Supply", "number")
            .column("delivery_cost", "Delivery", "number").column("full_cost", "Cost", "number")
            .column("savings", "Savings", "number").column("cost_final", "Final", "boolean")
            .column("source", "Source").column("reconciliation", "Reconciliation"))


def session_history() -> Board:
    board = Board("session-history", "Session History",
                  "Completed charging sessions from the session store: the sessions themselves (its API) with their "
                  "billed cost, effective price and savings, energy and cost per day, and how sessions were "
                  "reconciled or discarded.",
                  time_from="now-30d", variables=[*session_variables(), time_format_variable()])
    board.add(
        single("Sessions", NONE, q(counted(f"charging_sessions_completed_total{{{U},{V}}}", RANGE)), decimals=0),
        single("Energy", KWH, q(energy_kwh(RANGE)), decimals=1),
        single("Cost", DOLLARS, q(net_cost(RANGE)), decimals=2,
               description=f"Supply (net) and delivery as billed ({HOURLY_BILLING}); final costs only."),
        single("Average price paid", CENTS_PER_KWH, q(paid_cents_per_kwh(RANGE), site_legend()), thresholds=PRICE,
               decimals=2, description="Net supply cost over energy, per site; compare with Energy & Costs' average "
                                       "billed hourly price."),
        single("Last session", KWH, q(f"charging_session_last_energy_joules{{{U}}} / {J_PER_KWH}",
                                      site_legend("{{unit}}")),
               decimals=1),
        single("Last session ended", AGO, q(f"charging_session_last_end_timestamp_seconds{{{U}}} * 1000",
                                            site_legend("{{unit}}"))),
    )
    board.add(
        api_table("Sessions", sessions_query(), h=10, units=SESSION_UNITS, mappings={"Final": COST_FINAL},
                  description=f"From the session store's API (/api/sessions), newest first; the selected units and "
                              f"vehicles. "
                              f"Costs are the bill's: {HOURLY_BILLING}. Supply price: net supply over energy; "
                              f"effective price: supply and delivery over energy; savings: the fixed-price rate's "
                              f"cost minus the cost. Final: provisional while an hour the session touched is not "
                              f"complete (estimated, repriced when it closes)."),
        api_table("In progress", Infinity("/api/sessions/current", "sessions")
                  .column("start", "Start", "timestamp_epoch_s").column("unit", "Unit").column("vehicle", "Vehicle")
                  .column("energy_wh", "Energy so far", "number").column("power_w", "Power", "number")
                  .column("estimated_cost", "Estimated cost", "number"), h=5,
                  units={"Energy so far": WATT_HOURS, "Power": WATT, "Estimated cost": DOLLARS},
                  description="The session store's /api/sessions/current: every unit's open session (that route "
                              "takes no unit or vehicle filter)."),
        graph("Energy per day", KWH, q(energy_kwh(DAY, by_site("vehicle")), site_legend("{{vehicle}}")),
              bars=True, stacked=True, interval="1d", calcs=("sum",)),
        graph("Sessions per day", NONE,
              q(counted(f"charging_sessions_completed_total{{{U},{V}}}", DAY, by_site("unit")),
                site_legend("{{unit}}")),
              bars=True, stacked=True, interval="1d", calcs=("sum",)),
        bars("Discarded sessions", NONE,
             q(counted(f"charging_sessions_discarded_total{{{U}}}", RANGE, by_site("unit", "reason")),
               site_legend("{{unit}} {{reason}}")), w=12,
             description="Too short or too small (sessions.min_duration, sessions.min_energy_kwh)."),
        bars("Reconciled with Fleet charge history", NONE,
             q(counted("charging_session_reconciliations_total", RANGE, " by (outcome) "), "{{outcome}}"),
             w=12, description="matched: a live session confirmed by the meter; inserted: known only from the "
                               "history."),
    )
    return board


def summary_query(period: str, *fields: tuple[str, str]) -> Infinity:
    query = Infinity("/api/summary", "summaries").param("period", period).time_range().filtered().column(
        "period_start", "Period")
    for selector, text in fields:
        query.column(selector, text, "number")
    return query


THIS_YEAR, LAST_YEAR = "This year", "Last year"
MONTH = "Month"


def year_over_year(title: str, unit: str, field: str) -> barchart.Panel:
    """This year's calendar months beside last year's, from the session store's monthly summaries (Prometheus
    keeps 40 days by default). The panel's time is the last year, so `__from` falls in last year: last year
    is from its 1 January to this year's (the store reads dates in general.timezone). Grafana then turns
    each period start into its month ("03 Mar": parsed as a time, formatted as text), merges both years on
    it and sorts the months."""
    def months(start: str, end: str, text: str) -> Infinity:
        return (Infinity("/api/summary", "summaries").param("period", "month").param("from", start)
                .param("to", end).filtered().column("period_start", MONTH).column(field, text, "number"))
    steps = [step("convertFieldType", fields={}, conversions=[
                 {"targetField": MONTH, "destinationType": "time", "dateFormat": "YYYY-MM-DD"}]),
             step("convertFieldType", fields={}, conversions=[
                 {"targetField": MONTH, "destinationType": "string", "dateFormat": "MM MMM"}]),
             step("merge"), step("sortBy", fields={}, sort=[{"field": MONTH, "desc": False}])]
    return api_bars(title, unit, months("${__to:date:YYYY}-01-01", "${__to:date:seconds}", THIS_YEAR),
                    months("${__from:date:YYYY}-01-01", "${__to:date:YYYY}-01-01", LAST_YEAR),
                    x_field=MONTH, stacked=False, time_from="1y", transformations=steps,
                    description=f"{CALENDAR} This year from 1 January to now against last year's months, "
                                f"side by side; months without a session have no bar.")


def energy_costs() -> Board:
    board = Board("energy-costs", "Energy & Costs",
                  "Energy and cost of charging as billed per day, week and month, split into supply, delivery and "
                  "the fixed and capacity charges; the savings against the fixed-price rate, and the average price "
                  "paid against the average billed hourly price; charging time, energy per hour and over the "
                  "range, the best charging hours of the day, each unit's share, and this year against last.",
                  time_from="now-90d", variables=session_variables())
    # each site's own tariff, its charges added up over the selected sites
    fixed = f"sum({per_site('max', 'electricity_price_monthly_fixed_dollars')}) * $__range_s / {MONTH_S}"
    capacity = f"sum({per_site('max', 'electricity_price_monthly_capacity_dollars')}) * $__range_s / {MONTH_S}"
    board.row("Time range (filtered by unit and vehicle)").add(
        single("Energy", KWH, q(energy_kwh(RANGE)), decimals=1),
        single("Supply", DOLLARS, q(f'{cost(RANGE, "supply")} - {cost(RANGE, "supply_credit")}'),
               decimals=2, description=f"As billed ({HOURLY_BILLING}), net of credits from negative prices."),
        single("Delivery", DOLLARS, q(cost(RANGE, "delivery")), decimals=2,
               description="At the delivery rate in force during each interval (tariff.delivery_periods)."),
        single("Fixed charges", DOLLARS, q(fixed), decimals=2,
               description="The monthly fixed charge prorated over the time range (unfiltered; each selected "
                           "site's, added up)."),
        single("Capacity charges", DOLLARS, q(capacity), decimals=2,
               description="The monthly capacity charge (tariff.capacity_per_month) prorated over the time range "
                           "(unfiltered)."),
        single("Total", DOLLARS, q(f"{net_cost(RANGE)} + {fixed} + {capacity}"), decimals=2,
               description="Supply, delivery, and the fixed and capacity charges prorated."),
    )
    board.add(
        single("Fixed-rate cost", DOLLARS, q(reference_cost(RANGE)), decimals=2,
               description="What the same sessions would have cost on the fixed-price rate "
                           "(tariff.reference_supply_per_kwh, Rates below) with the same delivery."),
        single("Savings vs the fixed rate", DOLLARS, q(savings(RANGE)), decimals=2, thresholds=("red", (0, "green")),
               description="Fixed-rate cost minus the cost (supply - credits + delivery) of the sessions: what "
                           "hourly pricing and when you charged saved. Negative: the fixed rate would have been "
                           "cheaper. The capacity charge, which only hourly pricing bills on its own, is not "
                           "deducted here; the Months table deducts it."),
        single("Price paid vs billed hours", CENTS_PER_KWH, q(paid_cents_per_kwh(RANGE), site_legend("paid")),
               q(billed_cents_per_kwh(RANGE.selector), site_legend("billed hours")), thresholds=PRICE, decimals=2, w=8,
               description=f"Net supply cost per kWh of the sessions against the average billed hourly price over "
                           f"the range, every hour weighing once ({HOURLY_BILLING}): below it, charging went to "
                           f"cheaper hours."),
        single("Provisional sessions", COUNT, q(f"sum(charging_sessions_provisional{{{U},{V}}})"), decimals=0,
               thresholds=("green", (1, "blue")),
               description="Completed sessions whose cost waits for an hour to close (the hour's last 5-minute "
                           "price); they enter the totals above once final."),
        single("Sessions", COUNT, q(counted(f"charging_sessions_completed_total{{{U},{V}}}", RANGE)), decimals=0),
    )
    board.row("Charging time and energy drawn (the units' power; filtered by unit)").add(
        single("Charging time", DURATION,
               q(f"sum(sum_over_time(({UNIT_POWER} > bool {CHARGING_W})[$__range:1m])) * 60"),
               w=4, description=f"Unit-minutes above {CHARGING_W} W (sessions.power_threshold_w's default) in the "
                                f"time range, sampled every minute and added over the selected units (two units "
                                f"charging for an hour: 2 hours). The units' power has no vehicle: the vehicle "
                                f"filter does not apply."),
        graph("Energy per hour", KWH, q(hourly_kwh(), site_legend("{{unit}}")), bars=True, stacked=True,
              interval="1h", calcs=("sum", "max"), w=10,
              description="Energy each unit drew in each clock hour (bars start at the hour): its power sampled "
                          "every minute x a minute, from the Fleet API, else the local one; the hour in progress "
                          "so far (its next few minutes at the latest power). The vehicle filter does not apply."),
        graph("Cumulative energy", KWH, q(f"{counted(f'charging_session_energy_joules_total{{{U},{V}}}', CUMULATIVE)}"
                                          f" / {J_PER_KWH}", "energy"),
              calcs=("lastNotNull",), w=10,
              description=f"Energy of the sessions completed since the start of the time range, as it adds up "
                          f"(its last value is Energy above). {COUNTED_WHEN_RECORDED}"),
    )
    board.row("Hours of the day (local time: the browser's UTC offset now)").add(
        joined_table("Best charging hours", "hour",
                     (q(f"avg_over_time(({BILLED_BY_HOUR})[$__range:1h])"), "Average billed price"),
                     (q(ENERGY_BY_HOUR), "Your energy"),
                     (q(f"{ENERGY_BY_HOUR} / on(site) group_left() {per_site('sum', ENERGY_BY_HOUR)}"),
                      "Share of your energy"),
                     units={"Average billed price": CENTS_PER_KWH, "Your energy": KWH, "Share of your energy": RATIO},
                     sort=("Average billed price", False), w=10, h=10,
                     description=f"Each local hour of the day (0 = midnight to 1 am), cheapest first: the mean "
                                 f"billed price of that hour over the time range ({HOURLY_BILLING}), and the energy "
                                 f"the selected units drew in it (power sampled every minute, Fleet API else "
                                 f"local; the vehicle filter does not apply) with its share of all your energy; "
                                 f"per site, each with its own prices. {HOURS_OF_DAY}"),
        keyed_bars("Price by hour of day", CENTS_PER_KWH, "hour",
                   *((q(f"{fn}_over_time(({BILLED_BY_HOUR})[$__range:1h])"), name)
                     for fn, name in (("min", "lowest"), ("avg", "average"), ("max", "highest"))),
                   key_label="local hour of the day", w=14, h=10, thresholds=PRICE,
                   description=f"The billed prices of each local hour of the day over the time range: lowest, "
                               f"average and highest. {HOURS_OF_DAY}"),
    )
    board.row("Per unit (filtered by unit and vehicle)").add(
        joined_table("Energy and cost per unit", "unit",
                     (q(energy_kwh(RANGE, by_site("unit"))), "Energy"),
                     (q(net_cost(RANGE, by_site("unit"))), "Cost"),
                     (q(counted(f"charging_sessions_completed_total{{{U},{V}}}", RANGE, by_site("unit"))), "Sessions"),
                     (q(paid_cents_per_kwh(RANGE, by_site("unit"))), "Price paid"),
                     units={"Energy": KWH, "Cost": DOLLARS, "Sessions": COUNT, "Price paid": CENTS_PER_KWH},
                     sort=("Energy", True), w=24, h=6,
                     description=f"The sessions completed in the time range per unit: energy, cost (supply net of "
                                 f"credits, and delivery, as billed), sessions and the supply price paid per kWh. "
                                 f"{COUNTED_WHEN_RECORDED}"),
    )
    board.row("Per day").add(
        graph("Energy per day", KWH, q(energy_kwh(DAY), "energy"),
              bars=True, interval="1d", calcs=("sum",), w=6, description=COUNTED_WHEN_RECORDED),
        graph("Cost per day", DOLLARS,
              q(counted(f'charging_session_cost_dollars_total{{{U},{V},component!="supply_credit"}}', DAY,
                        " by (component) "), "{{component}}"),
              q(f"-{cost(DAY, 'supply_credit')}", "supply credit"),
              bars=True, stacked=True, interval="1d", calcs=("sum",), w=6, description=COUNTED_WHEN_RECORDED),
        graph("Savings per day", DOLLARS, q(savings(DAY), "savings"),
              bars=True, interval="1d", calcs=("sum",), w=6, thresholds=("red", (0, "green")),
              description=f"Fixed-rate cost minus the cost of the sessions. {COUNTED_WHEN_RECORDED}"),
        graph("Price paid vs billed hours per day", CENTS_PER_KWH,
              q(paid_cents_per_kwh(DAY), site_legend("paid")), q(billed_cents_per_kwh(BILLED_DAY),
                                                                 site_legend("billed hours")),
              thresholds=PRICE, interval="1d", calcs=("mean",), w=6,
              description="Net supply cost per kWh against the mean of the day's billed hourly prices."),
    )
    board.row("Calendar weeks and months (session store, filtered by unit and vehicle)").add(
        api_bars("Cost per week", DOLLARS, summary_query("week", ("supply_cost", "Supply"),
                                                        ("delivery_cost", "Delivery")), x_field="Period",
                 description=CALENDAR),
        api_bars("Cost per month", DOLLARS, summary_query("month", ("supply_cost", "Supply"),
                                                         ("delivery_cost", "Delivery"),
                                                         ("fixed_charge", "Fixed"),
                                                         ("capacity_charge", "Capacity")), x_field="Period",
                 description=f"{CALENDAR} A month is a bill: fixed and capacity charges on top."),
        api_table("Months", summary_query("month", ("sessions", "Sessions"), ("energy_kwh", "Energy"),
                                          ("supply_cost", "Supply"), ("delivery_cost", "Delivery"),
                                          ("fixed_charge", "Fixed"), ("capacity_charge", "Capacity"),
                                          ("total_cost", "Total"), ("supply_price_cents", "Supply price"),
                                          ("effective_price_cents", "Effective price"),
                                          ("reference_cost", "Fixed-rate cost"), ("savings", "Savings"))
                  .column("final", "Final", "boolean"),
                  units={"Sessions": NONE, "Energy": KWH, "Supply": DOLLARS, "Delivery": DOLLARS, "Fixed": DOLLARS,
                         "Capacity": DOLLARS, "Total": DOLLARS, "Supply price": CENTS_PER_KWH,
                         "Effective price": CENTS_PER_KWH, "Fixed-rate cost": DOLLARS, "Savings": DOLLARS},
                  mappings={"Final": COST_FINAL}, w=24, h=8,
                  description=f"{CALENDAR} Total: charging plus the fixed and capacity charges. Effective price: "
                              f"supply and delivery over energy. Fixed-rate cost: the same energy on the fixed-price "
                              f"rate with the same delivery and fixed charge (that rate has no separate capacity "
                              f"charge); savings: that minus the total. Final: no session in it is provisional."),
        api_table("Weeks", summary_query("week", ("sessions", "Sessions"), ("energy_kwh", "Energy"),
                                         ("supply_cost", "Supply"), ("delivery_cost", "Delivery"),
                                         ("charging_cost", "Cost"), ("supply_price_cents", "Supply price"),
                                         ("effective_price_cents", "Effective price"), ("savings", "Savings"))
                  .column("final", "Final", "boolean"),
                  units={"Sessions": NONE, "Energy": KWH, "Supply": DOLLARS, "Delivery": DOLLARS, "Cost": DOLLARS,
                         "Supply price": CENTS_PER_KWH, "Effective price": CENTS_PER_KWH, "Savings": DOLLARS},
                  mappings={"Final": COST_FINAL}, w=24, h=8, description=CALENDAR),
    )
    board.row("Year over year (session store, filtered by unit and vehicle)").add(
        year_over_year("Energy: this year against last", KWH, "energy_kwh"),
        year_over_year("Charging cost: this year against last", DOLLARS, "charging_cost"),
    )
    board.row("Rates").add(
        single("Delivery rate", CENTS_PER_KWH, q(per_site("max", "electricity_price_delivery_cents_per_kwh"),
                                                 site_legend()), decimals=2, w=6,
               description="The delivery rate in force now (tariff.delivery_periods by time of day, else "
                           "tariff.delivery_per_kwh)."),
        single("Fixed-rate supply price", CENTS_PER_KWH,
               q(per_site("max", "electricity_price_reference_supply_cents_per_kwh"), site_legend()),
               thresholds=PRICE, decimals=3, w=6,
               description="The fixed-price supply rate savings are measured against "
                           "(tariff.reference_supply_per_kwh)."),
        single("Fixed monthly charge", DOLLARS, q(per_site("max", "electricity_price_monthly_fixed_dollars"),
                                                  site_legend()), decimals=2, w=6),
        single("Capacity charge per month", DOLLARS,
               q(per_site("max", "electricity_price_monthly_capacity_dollars"), site_legend()),
               decimals=2, w=6, description="tariff.capacity_per_month: capacity PLC x scaling x the capacity rate; "
                                       "in month totals."),
    )
    return board


def vehicle_status() -> Board:
    board = Board("vehicle-status", "Vehicle Status",
                  "Each vehicle from Tessie's cached state (never woken): battery, range, charging, connectivity, "
                  "and smart charging: its state, the signal it decides on (this hour's projected price by default) "
                  "and the 5-minute price against the thresholds, and its action log; and the departure plan of "
                  "each car with a departure set: its hours over the price forecast, expected cost and finish; "
                  "and its own charging sessions from Tessie's charge history, at home and away.",
                  time_from="now-24h", variables=[vehicle_variable(), temperature_variable(), time_format_variable()])
    board.row("Battery").add(
        dial("State of charge", PERCENT, q(f"tesla_vehicle_battery_level_percent{{{V}}}", site_legend("{{vehicle}}")),
             thresholds=SOC),
        single("Charge limit", PERCENT, q(f"tesla_vehicle_charge_limit_percent{{{V}}}", site_legend("{{vehicle}}")),
               h=6),
        single("Range", MILES, q(f"tesla_vehicle_battery_range_meters{{{V}}} / {METERS_PER_MILE}",
                                 site_legend("{{vehicle}} rated")),
               q(f"tesla_vehicle_estimated_battery_range_meters{{{V}}} / {METERS_PER_MILE}",
                 site_legend("{{vehicle}} estimated")),
               w=6, h=6,
               thresholds=("red", (50000, "orange"), (100000, "green"))),
        graph("State of charge over time", PERCENT,
              q(f"tesla_vehicle_battery_level_percent{{{V}}}", site_legend("{{vehicle}}")),
              q(f"tesla_vehicle_usable_battery_level_percent{{{V}}}", site_legend("{{vehicle}} usable")),
              q(f"tesla_vehicle_charge_limit_percent{{{V}}}", site_legend("{{vehicle}} limit")),
              thresholds=SOC, w=8, h=6, min_value=0, max_value=100),
    )
    board.row("Charging").add(
        timeline("Charging state", NONE, q(f"tesla_vehicle_charging_state_code{{{V}}}", site_legend("{{vehicle}}")),
                 mappings=VEHICLE_CHARGING, h=5),
        graph("Charger power", WATT, q(f"tesla_vehicle_charger_power_watts{{{V}}}", site_legend("{{vehicle}}")), w=8),
        graph("Charger voltage", VOLT, q(f"tesla_vehicle_charger_voltage_volts{{{V}}}", site_legend("{{vehicle}}")),
              w=8),
        graph("Charger current", AMPERE, q(f"tesla_vehicle_charger_current_amperes{{{V}}}",
                                           site_legend("{{vehicle}}")), w=8),
        single("Energy added", KWH, q(f"tesla_vehicle_charge_energy_added_joules{{{V}}} / {J_PER_KWH}",
                                      site_legend("{{vehicle}}")), decimals=1, w=6),
        single("Time to full", DURATION, q(f"tesla_vehicle_time_to_full_charge_seconds{{{V}}}",
                                           site_legend("{{vehicle}}")), w=6),
        single("Charge port door", NONE, q(f"tesla_vehicle_charge_port_door_open{{{V}}}", site_legend("{{vehicle}}")),
               mappings=states({0: ("closed", "text"), 1: ("open", "blue")}), w=6),
        label_table("Charge cable", f"tesla_vehicle_charge_cable_info{{{V}}}", ["vehicle", "cable"], w=6, h=5),
    )
    board.row("Car").add(
        timeline("Connectivity", NONE, q(f"tesla_vehicle_connectivity_code{{{V}}}", site_legend("{{vehicle}}")),
                 mappings=CONNECTIVITY, h=5, description="Asleep cars are never woken; their data is from when "
                                                          "they fell asleep."),
        single("Data age", SECONDS, q(f"time() - tesla_vehicle_data_timestamp_seconds{{{V}}}",
                                      site_legend("{{vehicle}}")),
               thresholds=("green", (900, "yellow"), (3600, "orange")), w=6),
        graph("Temperatures", CELSIUS,
              q(temperature(f"tesla_vehicle_temperature_celsius{{{V}}}"),
                temperature_legend(site_legend("{{vehicle}} {{location}}"))),
              w=6, h=5, regexp_overrides=in_fahrenheit(*NEUTRAL), description=IN_CHOSEN_UNIT),
        single("Odometer", MILES, q(f"tesla_vehicle_odometer_meters{{{V}}} / {METERS_PER_MILE}",
                                    site_legend("{{vehicle}}")), w=4),
        single("Locked / Sentry", NONE, q(f"tesla_vehicle_locked{{{V}}}", site_legend("{{vehicle}} locked")),
               q(f"tesla_vehicle_sentry_mode{{{V}}}", site_legend("{{vehicle}} sentry")), mappings=YES_NO, w=4),
        label_table("Software", f"tesla_vehicle_software_info{{{V}}}", ["vehicle", "vin", "version"], w=4, h=5),
    )
    board.row("Smart charging").add(
        timeline("Smart-charging status", NONE, q(f"smart_charging_status_code{{{V}}}", site_legend("{{vehicle}}")),
                 mappings=SMART_STATUS, h=5),
        graph("Price against the thresholds", CENTS_PER_KWH,
              q("smart_charging_price_cents_per_kwh", site_legend("decided on")),
              q("smart_charging_hour_projected_cents_per_kwh", site_legend("this hour (projected)")),
              q("smart_charging_five_minute_price_cents_per_kwh", site_legend("5-minute price")),
              q("smart_charging_stop_threshold_cents_per_kwh", site_legend("stop above")),
              q("smart_charging_resume_threshold_cents_per_kwh", site_legend("resume below")), thresholds=PRICE, w=12,
              calcs=("lastNotNull",),
              description=f"What each evaluation saw: the price it decided on (its signal), this hour's projected "
                          f"price and the latest 5-minute price, against the stop and resume thresholds "
                          f"(percentiles of the signal's own history over the lookback). With signal billed "
                          f"(default) it decides on the projected hour price: {HOURLY_BILLING}."),
        label_table("Signal", "smart_charging_signal_info", ["signal"], w=3, h=8,
                    description="smart_charging.signal: billed = this hour's projected price against percentiles "
                                "of the billed hours; five_minute = the latest 5-minute price against percentiles "
                                "of the 5-minute prices."),
        single("Mode", NONE, q("smart_charging_dry_run", site_legend()), mappings=MODE, w=3, h=8),
        single("Price percentile", PERCENT, q("smart_charging_price_percentile_rank_percent", site_legend()),
               thresholds=PERCENTILE, decimals=0, w=3, h=8,
               description="Where the price decided on ranks within its history over the lookback."),
        single("Price history behind the thresholds", DURATION, q("smart_charging_history_seconds", site_legend()),
               w=3, h=8,
               thresholds=("red", (604800, "green")),
               description="Fewer than 7 days (smart_charging.min_history_days): never stops a car."),
        single("Last evaluation", SECONDS, q("time() - smart_charging_last_evaluation_timestamp_seconds",
                                             site_legend()), w=3,
               h=8, thresholds=("green", (120, "orange"), (600, "red"))),
        single("Price age", SECONDS, q("smart_charging_price_age_seconds", site_legend()), w=3, h=8, thresholds=AGE,
               description="Since the end of the latest 5-minute price's interval; older than "
                           "smart_charging.max_price_age (15 minutes): never stops a car."),
        bars("Actions", NONE, q("sum by (action, outcome) (increase(smart_charging_actions_total[$__range]))",
                                "{{action}} ({{outcome}})"), w=9, h=8),
        bars("Fail-safe decisions", NONE,
             q("sum by (reason) (increase(smart_charging_fail_safe_decisions_total[$__range]))", "{{reason}}"),
             thresholds=BAD_WHEN_ANY, w=9, h=8,
             description="Evaluations that left a car charging (or resumed it) because the market could not be "
                         "trusted: stale price, no thresholds, too little history, Prometheus unreachable."),
        api_table("Vehicles", Infinity("/api/smart-charging", "vehicles")
                  .column("vehicle", "Vehicle").column("vin", "VIN").column("unit", "Unit")
                  .column("plugged", "Plugged in")
                  .column("charging", "Charging").column("paused_by_us", "Paused by us")
                  .column("last_decision", "Last decision")
                  .column("last_command_at", "Last command", "timestamp_epoch_s")
                  .column("override_until", "Override until", "timestamp_epoch_s"), w=24, h=6),
        api_table("Action log", Infinity("/api/smart-charging/actions", "actions").param("limit", "200")
                  .column("t", "Time", "timestamp_epoch_s").column("vehicle", "Vehicle").column("vin", "VIN")
                  .column("action", "Action").column("reason", "Reason").column("outcome", "Outcome")
                  .column("price", "Price decided on", "number").column("stop_threshold", "Stop above", "number")
                  .column("resume_threshold", "Resume below", "number").column("detail", "Detail"),
                  units={"Price decided on": CENTS_PER_KWH, "Stop above": CENTS_PER_KWH,
                         "Resume below": CENTS_PER_KWH},
                  h=10, description="Every decision of the smart-charging loop, newest first (dry run records "
                                    "stop_simulated/start_simulated); the price is the signal's (with signal billed, "
                                    "the projected hour price)."),
    )
    board.row("Departure plan").add(*departure_plan_panels())
    board.row("Charging at home and away (Tessie charge history)").add(*charge_history_panels())
    return board


def charges_query(away: str | None = None) -> Infinity:
    """The car's charges in the time range from the session store's /api/charges (Tessie's charge history)."""
    query = Infinity("/api/charges", "charges").time_range().filtered("vehicle").param("limit", "1000")
    return query.param("away", away) if away else query


AWAY = flags(("away", "orange"), ("home", "green"))
HOME_AND_AWAY = ("Summed over the charges of the selected vehicles in the time range (/api/charges with "
                 "away=false and away=true).")


def charge_history_panels() -> list:
    return [
        single("Energy added: home and away", WATT_HOURS,
               charges_query("false").column("energy_added_wh", "home", "number"),
               charges_query("true").column("energy_added_wh", "away", "number"), calc="sum", decimals=0, w=6,
               h=6, description=f"Energy the battery took, as the car reports it. {HOME_AND_AWAY}"),
        single("Cost: home and away", DOLLARS, charges_query("false").column("cost", "home", "number"),
               charges_query("true").column("cost", "away", "number"), calc="sum", decimals=2, w=6, h=6,
               description=f"Tessie's cost of each charge (away: what the charger billed, as Tessie knows it; "
                           f"home: Tessie's estimate, the billed cost of the Wall Connector sessions is on Energy & "
                           f"Costs). {HOME_AND_AWAY}"),
        single("Charges: home and away", COUNT, charges_query("false").column("id", "home", "number"),
               charges_query("true").column("id", "away", "number"), calc="count", decimals=0, w=4, h=6,
               description=HOME_AND_AWAY),
        single("Charging efficiency at home", RATIO, charges_query("false").column("efficiency", "home", "number"),
               calc="mean", decimals=1, w=8, h=6, thresholds=("orange", (0.85, "green")),
               description="Mean over the home charges matched to a Wall Connector session: the energy the battery "
                           "took over the energy the Wall Connector delivered."),
        api_table("Charges", charges_query()
                  .column("start", "Start", "timestamp_epoch_s").column("end", "End", "timestamp_epoch_s")
                  .column("vehicle", "Vehicle").column("location", "Location").column("away", "Away", "boolean")
                  .column("supercharger", "Supercharger", "boolean")
                  .column("energy_added_wh", "Energy added", "number").column("energy_used_wh", "Energy used", "number")
                  .column("starting_battery", "From", "number").column("ending_battery", "To", "number")
                  .column("cost", "Cost", "number").column("wall_energy_wh", "Wall energy", "number")
                  .column("efficiency", "Efficiency", "number").column("session_id", "Wall session", "number"),
                  units={"Energy added": WATT_HOURS, "Energy used": WATT_HOURS, "From": PERCENT, "To": PERCENT,
                         "Cost": DOLLARS, "Wall energy": WATT_HOURS, "Efficiency": RATIO, "Wall session": NONE},
                  mappings={"Away": AWAY, "Supercharger": YES_NO_FLAG}, h=9,
                  description="Every charge of the selected vehicles in the time range from Tessie's charge history, "
                              "newest first, home and away: where (home, or the place Tessie names), the energy "
                              "added and the state of charge before and after, Tessie's cost, and for home charges "
                              "the Wall Connector session it matched (wall energy, and efficiency: energy added over "
                              "wall energy)."),
    ]


YES_NO_FLAG = flags(("yes", "blue"), ("no", "text"))


PLAN_ENERGY, PLAN_PRICE, FORECAST_PRICE = "planned energy", "planner's price (with delivery)", "forecast supply price"
ON_TRACK = states({0: ("on track", "green"), 1: ("at risk", "red")})
PLANS_TRUSTED = states({0: ("fail-safe: charging now", "red"), 1: ("trusted", "green")})
PLANNED_ONLY = ("Only for a car with a departure set (the session store's /plans page or PUT /api/plans/<vin>) "
                "that is plugged in and planned; empty otherwise.")


def departure_plan_panels() -> list:
    """The departure planner: a car's plan over the priced hours ahead, and what it expects."""
    price_axis = [setting("unit", CENTS_PER_KWH), setting("custom.axisPlacement", "right")]
    return [
        keyed_bars("Departure plan over the price forecast", KWH, "hours_ahead",
                   (q(f"{per_site('sum', f'smart_charging_plan_hour_energy_joules{{{V}}}', 'hours_ahead')} "
                      f"/ {J_PER_KWH}"), PLAN_ENERGY),
                   (q(per_site("max", "smart_charging_plan_hour_price_cents_per_kwh", "hours_ahead")), PLAN_PRICE),
                   (q(per_site("max", "electricity_price_forecast_cents_per_kwh", "hours_ahead")), FORECAST_PRICE),
                   key_label="clock hours ahead (0 = the hour in progress)",
                   overrides=[(PLAN_ENERGY, [fixed_colour("blue")]),
                              (PLAN_PRICE, [*price_axis, fixed_colour("orange")]),
                              (FORECAST_PRICE, [*price_axis, fixed_colour("yellow"),
                                                setting("custom.fillOpacity", 30)])],
                   description=f"Bars: the wall energy the plan draws in each clock hour ahead (0 is the hour in "
                               f"progress), of the selected vehicles together (one vehicle: its plan), per site. "
                               f"Right axis: what the planner expects a kWh of each hour to cost ({HOURLY_BILLING}: the hour "
                               f"in progress from its published prices, later hours from the forecast, plus "
                               f"delivery), and the price exporter's forecast of the billed supply price (ComEd's "
                               f"day-ahead prices for the first hours, an hour-of-week profile of the billed "
                               f"hours after them). The planner picks the cheapest hours that still reach the "
                               f"target by the departure. {PLANNED_ONLY}"),
        single("Next departure", LOCAL_TIME,
               q(f"smart_charging_plan_departure_timestamp_seconds{{{V}}} * 1000", site_legend("{{vehicle}}")), w=4,
               description="The next one-off or weekly departure set for the car (its date only when it is not "
                           "today)."),
        single("State of charge: now, reachable, target", PERCENT,
               q(f"smart_charging_plan_state_of_charge_percent{{{V}}}", site_legend("{{vehicle}} now")),
               q(f"smart_charging_plan_reachable_percent{{{V}}}", site_legend("{{vehicle}} reachable")),
               q(f"smart_charging_plan_target_percent{{{V}}}", site_legend("{{vehicle}} target")), thresholds=SOC,
               decimals=0,
               w=6, description="Now: what the plan starts from, the car's cached reading, or that reading plus "
                                "the wall energy since when it is stale (smart_charging_plan_state_of_charge_"
                                "estimated). Reachable: what the plan reaches by the departure; below the target, "
                                "the deadline is at risk (DepartureTargetAtRisk)."),
        single("Expected cost", DOLLARS, q(f"smart_charging_plan_expected_cost_dollars{{{V}}}",
                                           site_legend("{{vehicle}}")),
               decimals=2, w=3,
               description=f"What the planned energy (smart_charging_plan_energy_joules) costs at the planner's "
                           f"prices: billed supply plus delivery, before the fixed and capacity charges. "
                           f"{PLANNED_ONLY}"),
        single("Expected finish", LOCAL_TIME,
               q(f"smart_charging_plan_expected_finish_timestamp_seconds{{{V}}} * 1000", site_legend("{{vehicle}}")),
               w=4,
               description=f"When the plan expects charging to end: before the departure by at least "
                           f"planner.margin (30 minutes) when the target is reachable. {PLANNED_ONLY}"),
        single("Deadline", NONE, q(f"smart_charging_plan_deadline_at_risk{{{V}}}", site_legend("{{vehicle}}")),
               mappings=ON_TRACK, thresholds=BAD_WHEN_ANY, w=3,
               description=f"At risk: the target cannot be reached by the departure with the planner's margin; "
                           f"the car charges at every chance (DepartureTargetAtRisk after 10 minutes). "
                           f"{PLANNED_ONLY}"),
        single("Day-ahead hours", COUNT,
               q(per_site("max", "electricity_price_forecast_day_ahead_prices"), site_legend("day-ahead")),
               q(per_site("count", per_site("max", "electricity_price_forecast_cents_per_kwh", "hours_ahead")),
                 site_legend("forecast")),
               thresholds=("orange", (1, "green")), decimals=0, w=2,
               description="Day-ahead: how many leading hours of the price forecast are ComEd's day-ahead prices "
                           "(published for the next day in the afternoon); the rest of the forecast hours are "
                           "the hour-of-week profile of the billed hours. 0: the whole forecast is the profile."),
        single("Plans", NONE, q(per_site("max", "smart_charging_plan_trusted"), site_legend()), mappings=PLANS_TRUSTED,
               thresholds=GOOD_WHEN_ONE, w=2,
               description="Trusted, or fail-safe when Prometheus, the price or the forecast cannot be trusted: "
                           "every plugged-in car with a departure set then charges now (DeparturePlanUntrusted "
                           "after 30 minutes)."),
    ]


def electricity_prices() -> Board:
    board = Board("electricity-prices", "Electricity Prices",
                  f"ComEd prices as billed and as published: {HOURLY_BILLING}. This hour's projected price (what "
                  f"charging now pays) beside the 5-minute price, the billed hourly prices with their 30-day "
                  f"percentiles (what smart charging and the percentile alerts compare with), the 5-minute prices "
                  f"with theirs, and the price history behind them.", time_from="now-24h", refresh="1m")
    board.add(
        single("Price now", CENTS_PER_KWH, q(PRICE_NOW, site_legend()), thresholds=PRICE, background=True, decimals=1,
               w=3,
               description="The latest 5-minute price (it covers the 5 minutes ending at its timestamp)."),
        single("This hour (projected)", CENTS_PER_KWH, q(HOUR_NOW, site_legend()), thresholds=PRICE, background=True,
               decimals=2,
               w=3, description=f"{PROJECTED[0].upper()}{PROJECTED[1:]}. {HOURLY_BILLING}: energy drawn now pays "
                                f"this, final once the hour's twelfth price is published."),
        single("Published this hour", COUNT, q(per_site("max", "electricity_price_hour_published_prices"),
                                               site_legend()), decimals=0, w=3,
               thresholds=("blue", (12, "green")),
               description="5-minute prices of the hour in progress published so far, of 12; the rest of the "
                           "projection is at the latest price."),
        single("Last billed hour", CENTS_PER_KWH, q(LAST_BILLED, site_legend()), thresholds=PRICE, decimals=2, w=3,
               description="The billed price of the newest complete clock hour (the mean of its twelve 5-minute "
                           "prices)."),
        single("Percentile (30 days)", PERCENT,
               q(per_site("max", "electricity_price_hour_projected_percentile_rank_percent"), site_legend("this hour")),
               q(per_site("max", "electricity_price_percentile_rank_percent"), site_legend("5-minute")),
               thresholds=PERCENTILE, decimals=0,
               w=3, description="This hour: where the projected hour price ranks among the billed hours of the "
                                "last 30 days (smart charging's default signal). 5-minute: where the latest "
                                "5-minute price ranks among the 5-minute prices."),
        single("Price age", SECONDS,
               q(f"time() - {per_site('max', 'electricity_price_interval_end_timestamp_seconds')}", site_legend()), w=3,
               thresholds=("green", (600, "orange"), (900, "red")),
               description="Since the end of the interval the newest price covers."),
        single("With delivery", CENTS_PER_KWH,
               q(f"{HOUR_NOW} + on(site) {per_site('max', 'electricity_price_delivery_cents_per_kwh')}",
                 site_legend()), decimals=1, w=3,
               description="This hour's projected price plus the delivery rate in force: what a kWh drawn now "
                           "costs, before the fixed and capacity charges."),
        single("Alert levels", CENTS_PER_KWH, q("charging_threshold:price_low_cents_per_kwh", "low"),
               q("charging_threshold:price_high_cents_per_kwh", "high"),
               q("charging_threshold:price_spike_cents_per_kwh", "spike"), thresholds=PRICE, w=3,
               description="rules/thresholds.yml: ElectricityPriceLow and ElectricityPriceHigh compare this hour's "
                           "projected price with them, ElectricityPriceSpike the 5-minute prices."),
    )
    board.add(
        per_site_panel(graph(
              "This hour, the billed hours and their 30-day percentiles · $site", CENTS_PER_KWH,
              q(HOUR_NOW, "this hour (projected)"),
              q(LAST_BILLED, "last billed hour"),
              q(per_site("max", "electricity_price_5m_cents_per_kwh"), "5-minute price"),
              q(per_site("max", "electricity_price:billed_lookback_percentile_cents_per_kwh", "percentile"),
                "billed p{{percentile}}"),
              thresholds=PRICE, threshold_lines=True, w=24, h=10, overrides=[fill_between("billed p75", "billed p25")],
              description=f"{HOURLY_BILLING}. This hour (projected): {PROJECTED}; it settles on the hour's billed "
                          f"price as the hour's prices are published, and the last billed hour steps to it when the "
                          f"hour closes. The band is the 25th to 75th percentile of the billed hours of the last 30 "
                          f"days (recording rules over electricity_price_billed_cents_per_kwh, every hour weighing "
                          f"once); smart charging stops above the 90th and the percentile alerts compare with them. "
                          f"One panel per selected site: each zone has its own prices."), w=24),
    )
    board.add(
        graph("Billed price per hour", CENTS_PER_KWH,
              q(BILLED_HOUR, site_legend("billed")),
              q(f"{per_site('max', 'last_over_time(electricity_price_hour_projected_cents_per_kwh[1h] offset -1h)')} "
                f"unless on(site) {BILLED_HOUR}", site_legend("this hour (projected)")),
              thresholds=PRICE, bars=True, interval="1h", calcs=("mean", "max"), w=12,
              description=f"{HOURLY_BILLING}; each bar is the hour starting at it, the hour in progress at its "
                          f"projected price."),
        per_site_panel(graph(
              "5-minute price and its 30-day percentiles · $site", CENTS_PER_KWH,
              q(per_site("max", "electricity_price_5m_cents_per_kwh"), "5-minute price"),
              q(per_site("max", "electricity_price:lookback_percentile_cents_per_kwh", "percentile"),
                "p{{percentile}}"),
              thresholds=PRICE, w=12, overrides=[fill_between("p75", "p25")],
              description="Each price is stamped with the end of its 5-minute interval; the band is the 25th to "
                          "75th percentile of the 5-minute prices of the last 30 days (recording rules): what the "
                          "spike alert and smart charging's five_minute signal use. Short spikes lift these "
                          "percentiles far more than the billed hours'. One panel per selected site."), w=12),
    )
    board.add(
        bars("30-day percentiles", CENTS_PER_KWH,
             q(per_site("max", "electricity_price_billed_lookback_percentile_cents_per_kwh", "percentile"),
               site_legend("billed hours p{{percentile}}")),
             q(per_site("max", "electricity_price_lookback_percentile_cents_per_kwh", "percentile"),
               site_legend("5-minute p{{percentile}}")),
             thresholds=PRICE, w=12, h=8,
             description="The exporter's numpy statistics over the lookback: of the billed hourly prices (every "
                         "hour once) and of the 5-minute prices."),
        single("30-day statistics", CENTS_PER_KWH, q(per_site("max", "electricity_price_lookback_mean_cents_per_kwh"),
                                                     site_legend("mean")),
               q(per_site("max", "electricity_price_lookback_median_cents_per_kwh"), site_legend("median")),
               q(per_site("max", "electricity_price_lookback_stddev_cents_per_kwh"), site_legend("standard deviation")),
               thresholds=PRICE, decimals=2, w=6, h=8, description="Of the 5-minute prices over the lookback."),
        single("Delivery rate", CENTS_PER_KWH, q(per_site("max", "electricity_price_delivery_cents_per_kwh"),
                                                 site_legend()), decimals=2, w=6,
               h=8, description="The delivery rate in force now (tariff.delivery_periods by time of day, else "
                                "tariff.delivery_per_kwh), added to the supply price."),
    )
    board.row("History").add(
        graph("Price history (30 days)", CENTS_PER_KWH,
              q(BILLED_HOUR, site_legend("billed hour")),
              q(billed_cents_per_kwh("[1d]"), site_legend("24-hour average")),
              thresholds=PRICE, interval="1h", time_from="30d", calcs=("mean", "min", "max"), w=12,
              description="The billed price of every hour and the mean of the 24 billed hours before each moment."),
        single("History covered", DURATION, q(per_site("max", "electricity_price_history_covered_seconds"),
                                              site_legend()),
               thresholds=("red", (604800, "orange"), (2592000, "green")), w=3, h=8,
               description="5-minute prices the exporter holds. Fewer than 7 days: smart charging never stops a car "
                           "(run price-backfill)."),
        single("Oldest price", AGO,
               q(f"{per_site('max', 'electricity_price_history_oldest_timestamp_seconds')} * 1000", site_legend()),
               w=3, h=8),
        single("Prices in 30 days", COUNT, q(per_site("max", "electricity_price:lookback_prices"),
                                             site_legend("Prometheus")),
               q(per_site("max", "electricity_price_lookback_prices"), site_legend("exporter")),
               thresholds=("red", (2016, "green")), w=3, h=8,
               description="5-minute prices over the lookback as Prometheus and the exporter count them; "
                           "8,640 is 30 full days."),
        single("Billed hours in 30 days", COUNT, q(per_site("max", "electricity_price:billed_lookback_hours"),
                                                   site_legend()),
               thresholds=("red", (168, "green")), w=3, h=8,
               description="Complete hours Prometheus holds a billed price for (electricity_price_billed_cents_per_kwh)"
                           "; 720 is 30 full days. Fewer than 168 (7 days, charging_threshold:min_history_hours): "
                           "the percentile alerts stay silent (run price-backfill)."),
    )
    return board


def suite_health() -> Board:
    board = Board("suite-health", "Suite health",
                  "Every exporter and the session store: scrape status, upstream polling, last success, errors, "
                  "request and scrape durations.", time_from="now-1h", refresh="30s")
    requests = f"rate({REQUESTS_TOTAL}[$__rate_interval])"
    failed = f'rate({REQUESTS_TOTAL[:-1]}, outcome!="success"}}[$__rate_interval])'
    durations = f"rate({DURATION_BUCKETS}[$__rate_interval])"
    board.add(
        timeline("Scrape targets", NONE, q(f"up{{{EXPORTER_JOBS}}}", site_legend("{{job}} {{instance}}")), mappings=UP,
                 thresholds=GOOD_WHEN_ONE, description="Prometheus scraping each component (ExporterDown)."),
        single("Upstreams", NONE, q(f'{{__name__=~"({HEALTH_PREFIXES})_up"}}', site_legend("{{job}} {{target}}")),
               q("charging_session_store_up", site_legend("session store -> Prometheus")), mappings=UP,
               thresholds=GOOD_WHEN_ONE, w=12, h=6,
               description="1 if the exporter's last poll of the target succeeded and its data is fresh."),
        bars("Since last success", SECONDS,
             q(f'time() - {{__name__=~"({HEALTH_PREFIXES})_last_success_timestamp_seconds"}}',
               site_legend("{{job}} {{target}}")),
             q("time() - charging_session_store_last_success_timestamp_seconds", site_legend("session store")),
             thresholds=AGE, w=12, h=6, description="UpstreamDataStale fires above 15 minutes."),
        graph("Upstream requests", REQUESTS,
              q(f"sum by (job, endpoint, outcome) ({requests})",
                "{{job}} {{endpoint}} {{outcome}}"), calcs=("mean",)),
        graph("Upstream error ratio", RATIO,
              q(f"({per_site('sum', failed, 'job')} or {per_site('sum', requests, 'job')} * 0)"
                f" / {per_site('sum', requests, 'job')}", site_legend("{{job}}")),
              thresholds=("green", (0.05, "orange"), (0.2, "red")), threshold_lines=True, min_value=0,
              description="Failed requests (timeout, unreachable, auth_failed, ...) over all requests."),
        graph("Upstream request duration (p95)", SECONDS,
              q(f"histogram_quantile(0.95, {per_site('sum', durations, 'job', 'endpoint', 'le')})",
                site_legend("{{job}} {{endpoint}}")), thresholds=("green", (1, "orange"), (5, "red"))),
        graph("Scrape duration", SECONDS, q(f"scrape_duration_seconds{{{EXPORTER_JOBS}}}", site_legend("{{job}}")),
              thresholds=("green", (0.5, "orange"), (1, "red"))),
        graph("Samples per scrape", COUNT, q(f"scrape_samples_scraped{{{EXPORTER_JOBS}}}", site_legend("{{job}}")),
              w=8),
        single("Sessions behind", SECONDS, q("time() - charging_session_watermark_timestamp_seconds", site_legend()),
               thresholds=AGE,
               w=4, description="Power samples newer than the watermark are not yet turned into sessions."),
        single("Smart charging last evaluated", SECONDS,
               q("time() - smart_charging_last_evaluation_timestamp_seconds", site_legend()),
               thresholds=("green", (120, "orange"), (600, "red")), w=4),
        single("Alerts firing", NONE, q('count by (severity) (ALERTS{alertstate="firing"})', "{{severity}}"),
               thresholds=BAD_WHEN_ANY, w=8, description="By severity; the list is on Charging Overview."),
    )
    return board


# ---------------------------------------------------------------------------------------- meter & bills

METER_LAG = ("The utility's portal publishes meter reads 24-48 hours late: today and yesterday fill in as they "
             "arrive (charging-meter places each read at its real time).")
EV_COST, COMPUTED, UTILITY = "utility_meter_read_ev_cost_dollars", 'source="computed"', 'source="utility"'
LOGIN = states({0: ("expired: run charging-meter --setup", "red"), 1: ("ok", "green")})


def meter_day(series: str, labels: str = "", by: str = "") -> str:
    """A per-day total of a meter series (increments at each read's end; corrections included): of the selected
    sites added up, or per site (`by_site()`, the parts of a ratio)."""
    return f"sum{by}(sum_over_time({series}{{{labels}}}[1d] offset -1d))"


def site_period(metric: str, period: str) -> str:
    """A period's total of each site's meter."""
    return per_site("max", f'utility_meter_period_{metric}{{period="{period}"}}')


def meter_period(metric: str, period: str, scale: str = "") -> str:
    """A period's total, the selected sites' meters added up."""
    return f"sum({site_period(metric, period)}){scale}"


def meter_query() -> Infinity:
    return (Infinity("/api/meter", "days").time_range()
            .column("day", "Day").column("effective_cents_per_kwh", "Effective rate", "number")
            .column("home_kwh", "Home", "number").column("home_cost", "Cost", "number")
            .column("ev_kwh", "EV", "number").column("ev_share", "EV share", "number")
            .column("ev_cost_computed", "EV cost (ours)", "number")
            .column("ev_cost_utility", "EV cost (utility)", "number").column("reads", "Reads", "number")
            .column("corrected_reads", "Corrected", "number"))


def bills_query() -> Infinity:
    return (Infinity("/api/meter", "bills").time_range()
            .column("period_start", "Period start").column("period_end", "Period end")
            .column("bill_date", "Bill date").column("estimated", "Estimated", "boolean")
            .column("kwh", "Energy", "number").column("amount", "Amount", "number")
            .column("usage_charges", "Usage charges", "number").column("other_charges", "Other charges", "number")
            .column("ev_share", "EV share", "number").column("ev_cost_utility", "EV part (utility)", "number")
            .column("ev_cost_computed", "EV cost (ours)", "number").column("discrepancy", "Discrepancy", "number"))


def meter_bills() -> Board:
    board = Board("meter-bills", "Meter & Bills",
                  "The home's smart-meter data and bills from the utility's portal (charging-meter): usage and cost "
                  "per day, the EV's share of the home's energy, our computed EV cost against the utility's, and "
                  "the bills.", time_from="now-30d", refresh="5m")
    home, cost = "utility_meter_read_energy_joules", "utility_meter_read_cost_dollars"
    ev = "utility_meter_read_ev_energy_joules"
    bill_amount = 'utility_meter_bill_amount_dollars{estimated="false"}'
    bill_energy = 'utility_meter_bill_energy_joules{estimated="false"}'
    board.row("Status").add(
        single("Login", NONE, q(per_site("max", "utility_meter_login_ok"), site_legend()), mappings=LOGIN,
               thresholds=GOOD_WHEN_ONE,
               w=6, description="The stored utility login (UtilityLoginExpired fires after 15 minutes at 0)."),
        single("Portal", NONE, q(per_site("max", "utility_meter_up"), site_legend()), mappings=UP,
               thresholds=GOOD_WHEN_ONE,
               description="1 while the last attempt to reach the portal succeeded."),
        single("Newest read", AGO, q(f"{per_site('max', 'utility_meter_newest_read_end_timestamp_seconds')} * 1000",
                                     site_legend()), w=5,
               description=METER_LAG),
        single("Reads", COUNT, q(per_site("max", "utility_meter_reads"), site_legend()), decimals=0, w=4),
        single("Corrections", COUNT, q(per_site("max", "utility_meter_corrections_total"), site_legend()), decimals=0,
               w=5,
               description="Reads the portal corrected after first publishing them; each replaced the old values."),
    )
    board.row("Usage and cost").add(
        single("Today", KWH, q(meter_period("energy_joules", "today", f" / {J_PER_KWH}")), decimals=1,
               description=METER_LAG),
        single("Today's cost", DOLLARS, q(meter_period("cost_dollars", "today")), decimals=2),
        single("Yesterday", KWH, q(meter_period("energy_joules", "yesterday", f" / {J_PER_KWH}")), decimals=1),
        single("Yesterday's cost", DOLLARS, q(meter_period("cost_dollars", "yesterday")), decimals=2),
        single("Month to date", KWH, q(meter_period("energy_joules", "month_to_date", f" / {J_PER_KWH}")),
               decimals=1),
        single("Month to date cost", DOLLARS, q(meter_period("cost_dollars", "month_to_date")), decimals=2,
               description="Usage charges as the utility computed them; monthly charges come with the bill."),
        single("Effective rate (month to date)", CENTS_PER_KWH,
               q(f'{site_period("cost_dollars", "month_to_date")} / on(site) '
                 f'{site_period("energy_joules", "month_to_date")} * {J_PER_KWH} * 100', site_legend()), decimals=2,
               w=6,
               description="The utility's cost of the home's energy over that energy (supply and delivery)."),
        single("EV share (month to date)", RATIO, q(per_site("max",
                                                             'utility_meter_ev_share_ratio{period="month_to_date"}'),
                                                    site_legend()),
               decimals=1, w=6, description="EV charging energy (our sessions) over the home's metered energy."),
        single("Cost discrepancy (last bill)", RATIO,
               q(per_site("max", 'utility_meter_cost_discrepancy_ratio{period="last_bill"}'), site_legend()),
               decimals=1, w=6,
               thresholds=("green", (0.05, "orange")), description="Our EV cost over the utility's minus 1 for the "
               "last bill's period (UtilityCostDiscrepancy above 5 %)."),
        single("Cost discrepancy (month to date)", RATIO,
               q(per_site("max", 'utility_meter_cost_discrepancy_ratio{period="month_to_date"}'), site_legend()),
               decimals=1, w=6,
               thresholds=("green", (0.05, "orange"))),
        graph("Daily usage", KWH, q(f"{meter_day(home)} / {J_PER_KWH}", "home"), bars=True, interval="1d",
              calcs=("sum", "mean"), description=METER_LAG),
        graph("Daily cost", DOLLARS, q(meter_day(cost), "cost"), bars=True, interval="1d", calcs=("sum", "mean")),
        graph("EV, home and non-EV energy", KWH,
              q(f"{meter_day(ev)} / {J_PER_KWH}", "EV"),
              q(f"({meter_day(home)} - {meter_day(ev)}) / {J_PER_KWH}", "non-EV"),
              q(f"{meter_day(home)} / {J_PER_KWH}", "home"), bars=True, interval="1d", calcs=("sum",),
              description="Per day: the home's metered energy, the EV's part (our sessions) and the rest."),
        graph("EV share per day", RATIO, q(f"{meter_day(ev, by=by_site())} / on(site) {meter_day(home, by=by_site())}",
                                           site_legend("EV share")), bars=True,
              interval="1d", calcs=("mean",), min_value=0),
        graph("Calculated vs actual EV cost", DOLLARS,
              q(meter_day(EV_COST, COMPUTED), "ours (tariff)"), q(meter_day(EV_COST, UTILITY), "utility (metered)"),
              bars=True, interval="1d", calcs=("sum",),
              description="The EV energy's cost per day: ours from the tariff, the utility's as the read's cost "
                          "times the EV share of the read."),
        graph("Discrepancy per day", RATIO,
              q(f"{meter_day(EV_COST, COMPUTED, by_site())} / on(site) {meter_day(EV_COST, UTILITY, by_site())} - 1",
                site_legend("ours / utility - 1")), bars=True, interval="1d", calcs=("mean",),
              thresholds=("green", (0.05, "orange")), threshold_lines=True),
        label_table("Tuning hint", "utility_meter_tuning_hint_info", ["hint"], w=24, h=4,
                    description="A tariff setting to change so computed costs match the bills (empty: they agree)."),
    )
    board.row("Bills").add(
        api_table("Bills", bills_query(), h=8,
                  units={"Energy": KWH, "Amount": DOLLARS, "Usage charges": DOLLARS, "Other charges": DOLLARS,
                         "EV share": RATIO, "EV part (utility)": DOLLARS, "EV cost (ours)": DOLLARS,
                         "Discrepancy": RATIO},
                  mappings={"Estimated": flags(("bill to date", "orange"), ("issued", "green"))},
                  description="Issued bills, and the bill in progress (estimated) from the portal's forecast."),
        api_bars("Bill trend", DOLLARS, Infinity("/api/meter", "bills").time_range()
                 .column("period_start", "Period").column("usage_charges", "Usage", "number")
                 .column("other_charges", "Monthly charges", "number"), x_field="Period", w=12),
        single("12-month average bill", DOLLARS,
               q(per_site("avg", f"avg_over_time({bill_amount}[1h])"), site_legend()), decimals=2, w=4),
        single("12-month average energy", KWH,
               q(f"{per_site('avg', f'avg_over_time({bill_energy}[1h])')} / {J_PER_KWH}", site_legend()),
               decimals=0, w=4),
        single("12-month effective rate", CENTS_PER_KWH,
               q(f"{per_site('sum', f'avg_over_time({bill_amount}[1h])')} / on(site) "
                 f"{per_site('sum', f'avg_over_time({bill_energy}[1h])')} * {J_PER_KWH} * 100", site_legend()),
               decimals=2, w=4, description="All bills' amounts (monthly charges included) over "
                                                             "their energy."),
        graph("Effective rate history", CENTS_PER_KWH,
              q(f"{meter_day(cost, by=by_site())} / on(site) {meter_day(home, by=by_site())} * {J_PER_KWH} * 100",
                site_legend("per day")), bars=True, interval="1d",
              calcs=("mean", "min", "max")),
        histogram("Effective rate distribution", CENTS_PER_KWH,
                  q(f"{meter_day(cost, by=by_site())} / on(site) {meter_day(home, by=by_site())} * {J_PER_KWH} * 100",
                site_legend("per day")), interval="1d",
                  description="How the days' effective rates spread over the time range."),
        api_table("Best and worst days", meter_query(), h=9, sort_ascending=True,
                  units={"Effective rate": CENTS_PER_KWH, "Home": KWH, "Cost": DOLLARS, "EV": KWH,
                         "EV share": RATIO, "EV cost (ours)": DOLLARS, "EV cost (utility)": DOLLARS},
                  description="Every day with meter data, cheapest effective rate first (click a header to sort)."),
    )
    return board


DASHBOARDS: tuple[Callable[[], Board], ...] = (
    overview, wall_connectors, wall_connector_diagnostics, session_history, energy_costs, vehicle_status,
    electricity_prices, suite_health, meter_bills,
)
