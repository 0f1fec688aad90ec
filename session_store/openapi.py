"""OpenAPI 3 description of the session store's HTTP API (served at /api/openapi.json and tested
against real responses)."""
from __future__ import annotations

NUMBER_OR_NULL = {"type": ["number", "null"]}
STRING_OR_NULL = {"type": ["string", "null"]}

SESSION = {
    "type": "object",
    "required": ["id", "unit", "start", "end", "duration_s", "energy_wh", "peak_w", "average_w", "supply_cost",
                 "supply_credit", "delivery_cost", "full_cost", "cost_final", "source", "reconciliation",
                 "energy_of_record_wh"],
    "properties": {
        "id": {"type": "integer"}, "unit": {"type": "string"}, "din": STRING_OR_NULL, "vin": STRING_OR_NULL,
        "vehicle": STRING_OR_NULL, "start": {"type": "number", "description": "Unix seconds"},
        "end": {"type": "number", "description": "Unix seconds"}, "duration_s": {"type": "number"},
        "energy_wh": {"type": "number", "description": "trapezoid integral of the unit's power"},
        "peak_w": {"type": "number"}, "average_w": {"type": "number"},
        "meter_energy_wh": {**NUMBER_OR_NULL, "description": "the unit's own session meter, when it has one"},
        "supply_cost": {"type": "number", "description": "dollars as billed (ComEd: each clock hour's kWh at the "
                        "mean of its 5-minute prices), net of credits from negative prices"},
        "supply_credit": {"type": "number"}, "delivery_cost": {"type": "number", "description": "by delivery period"},
        "full_cost": {"type": "number", "description": "supply + delivery, dollars"},
        "supply_price_cents": {**NUMBER_OR_NULL, "description": "supply cost over energy, cents per kWh"},
        "effective_price_cents": {**NUMBER_OR_NULL, "description": "full cost over energy, cents per kWh"},
        "reference_cost": {**NUMBER_OR_NULL, "description": "the same energy on the fixed-price rate, same delivery"},
        "savings": {**NUMBER_OR_NULL, "description": "reference_cost - full_cost"},
        "cost_final": {"type": "boolean", "description": "false while an hour the session touched is not complete "
                       "(provisional: estimated, repriced when it closes)"},
        "gap_s": {"type": "number"},
        "source": {"type": "string", "enum": ["live_status", "local", "telemetry_history"]},
        "reconciliation": {"type": "string", "enum": ["pending", "matched", "unmatched", "inserted"]},
        "metered_energy_wh": {**NUMBER_OR_NULL, "description": "energy_added_wh of the matching Fleet charge record"},
        "energy_of_record_wh": {"type": "number", "description": "metered energy once reconciled, else energy_wh"},
        "target_id": STRING_OR_NULL,
        "energy_site_id": {**STRING_OR_NULL, "description": "the Fleet energy site of the unit, once known"},
    },
}

BILL_LINE = {
    "type": "object", "required": ["end", "energy_wh", "price_cents", "supply", "delivery", "final"],
    "properties": {"end": {"type": "number", "description": "end of the billed hour (or interval), Unix seconds"},
                   "energy_wh": {"type": "number"},
                   "price_cents": {"type": "number", "description": "its billed supply price"},
                   "supply": {"type": "number"}, "delivery": {"type": "number"}, "final": {"type": "boolean"}},
}
SESSION_WITH_LINES = {**SESSION, "required": [*SESSION["required"], "bill_lines"],
                      "properties": {**SESSION["properties"], "bill_lines": {"type": "array", "items": BILL_LINE}}}

RECONCILED = {
    "home_kwh": {"type": "number", "description": "the home's metered energy"},
    "home_cost": {**NUMBER_OR_NULL, "description": "the utility's cost of it (usage charges), dollars"},
    "ev_kwh": {"type": "number", "description": "EV charging energy (sessions) inside the reads"},
    "non_ev_kwh": {"type": "number"}, "ev_share": {**NUMBER_OR_NULL, "description": "ev_kwh / home_kwh"},
    "ev_cost_computed": {"type": "number", "description": "our tariff's cost of the EV energy"},
    "ev_cost_utility": {**NUMBER_OR_NULL, "description": "the reads' costs times their EV share"},
    "discrepancy": {**NUMBER_OR_NULL, "description": "ev_cost_computed / ev_cost_utility - 1"},
    "effective_cents_per_kwh": {**NUMBER_OR_NULL, "description": "home_cost / home_kwh, cents"},
    "hint": {**STRING_OR_NULL, "description": "the tariff setting to tune when the costs disagree"},
}
METER_DAY = {"type": "object", "required": ["day", "reads", "corrected_reads", "home_kwh", "ev_kwh", "ev_cost_computed"],
             "properties": {"day": {"type": "string", "format": "date"}, "reads": {"type": "integer"},
                            "corrected_reads": {"type": "integer"}, **RECONCILED}}
METER_BILL = {"type": "object", "required": ["start", "end", "period_start", "period_end", "bill_date", "estimated",
                                             "kwh", "amount"],
              "properties": {"start": {"type": "number"}, "end": {"type": "number"},
                             "period_start": {"type": "string", "format": "date"},
                             "period_end": {"type": "string", "format": "date"}, "bill_date": {"type": "string"},
                             "estimated": {"type": "boolean", "description": "the bill in progress (so far)"},
                             "kwh": {"type": "number"}, "amount": {"type": "number"},
                             "usage_charges": NUMBER_OR_NULL, "other_charges": NUMBER_OR_NULL,
                             **{key: RECONCILED[key] for key in ("ev_kwh", "ev_share", "ev_cost_computed",
                                                                 "ev_cost_utility", "discrepancy")}}}

IN_PROGRESS = {
    "type": "object",
    "required": ["unit", "start", "energy_wh", "estimated_cost"],
    "properties": {"unit": {"type": "string"}, "start": {"type": "number"}, "vin": STRING_OR_NULL,
                   "vehicle": STRING_OR_NULL, "energy_wh": {"type": "number"}, "peak_w": {"type": "number"},
                   "power_w": NUMBER_OR_NULL, "estimated_cost": {"type": "number"},
                   "estimated_supply_cost": {"type": "number"}, "estimated_delivery_cost": {"type": "number"}},
}

SUMMARY = {
    "type": "object",
    "required": ["period_start", "sessions", "energy_kwh", "supply_cost", "delivery_cost", "charging_cost",
                 "total_cost"],
    "properties": {"period_start": {"type": "string", "format": "date"}, "sessions": {"type": "integer"},
                   "energy_kwh": {"type": "number"}, "supply_cost": {"type": "number"},
                   "delivery_cost": {"type": "number"}, "charging_cost": {"type": "number"},
                   "fixed_charge": NUMBER_OR_NULL, "capacity_charge": NUMBER_OR_NULL,
                   "total_cost": {"type": "number", "description": "charging cost, plus fixed and capacity charges "
                                  "for a month"},
                   "supply_price_cents": NUMBER_OR_NULL, "effective_price_cents": NUMBER_OR_NULL,
                   "reference_cost": {**NUMBER_OR_NULL, "description": "on the fixed-price rate (a month: with the "
                                      "fixed charge, without capacity)"},
                   "savings": NUMBER_OR_NULL,
                   "final": {"type": "boolean", "description": "false while a session in it is provisional"},
                   "away_charges": {"type": "integer", "description": "charges away from home that started in "
                                    "the period (the cars' own charge history; not on the bill, not in the totals)"},
                   "away_energy_kwh": {"type": "number", "description": "energy added to the batteries away"},
                   "away_cost": {"type": "number", "description": "what away charging cost, as Tessie reports it"}},
}

ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}

FILTERS = [
    {"name": "from", "in": "query", "schema": {"type": "string"},
     "description": "Unix seconds or ISO 8601; sessions ending at or after it"},
    {"name": "to", "in": "query", "schema": {"type": "string"},
     "description": "Unix seconds or ISO 8601; sessions starting before it"},
    {"name": "unit", "in": "query", "schema": {"type": "array", "items": {"type": "string"}},
     "style": "form", "explode": True,
     "description": "units, any of which matches: repeated (unit=a&unit=b) or comma-separated (unit=a,b, "
                    "Grafana's ${unit:csv}); empty, All or $__all: every unit"},
    {"name": "vehicle", "in": "query", "schema": {"type": "array", "items": {"type": "string"}},
     "style": "form", "explode": True,
     "description": "vehicles by name or VIN, any of which matches: repeated or comma-separated, as unit"},
]


MARKET = {
    "type": ["object", "null"],
    "required": ["price", "price_age_s", "stop_threshold", "resume_threshold", "history_days", "prometheus_ok"],
    "properties": {"price": {**NUMBER_OR_NULL, "description": "the signal decided on, cents per kWh"},
                   "signal": {"type": "string", "enum": ["billed", "five_minute"],
                              "description": "billed: the projected hour price; five_minute: the 5-minute price"},
                   "five_minute_price": {**NUMBER_OR_NULL, "description": "the latest 5-minute price"},
                   "hour_projected": {**NUMBER_OR_NULL, "description": "the projected billed price of the hour in "
                                      "progress: its published prices, the rest at the latest one"},
                   "price_age_s": {**NUMBER_OR_NULL, "description": "seconds since the end of the latest 5-minute "
                                   "price's interval"},
                   "stop_threshold": NUMBER_OR_NULL, "resume_threshold": NUMBER_OR_NULL,
                   "history_days": {"type": "number"}, "prometheus_ok": {"type": "boolean"},
                   "price_rank": {**NUMBER_OR_NULL, "description": "percent of the lookback's prices below it"}},
}

SMART_VEHICLE = {
    "type": "object",
    "required": ["vin", "plugged", "charging", "paused_by_us", "last_decision"],
    "properties": {"vin": {"type": "string"}, "vehicle": STRING_OR_NULL, "unit": STRING_OR_NULL,
                   "plugged": {"type": "boolean"}, "charging": {"type": "boolean"},
                   "paused_by_us": {"type": "boolean"}, "last_decision": STRING_OR_NULL,
                   "last_command_at": NUMBER_OR_NULL, "override_until": NUMBER_OR_NULL},
}

ACTION = {
    "type": "object",
    "required": ["t", "vin", "action", "reason", "outcome"],
    "properties": {"t": {"type": "number", "description": "Unix seconds"}, "vin": {"type": "string"},
                   "vehicle": STRING_OR_NULL,
                   "action": {"type": ["string", "null"],
                              "enum": ["stop", "start", "stop_simulated", "start_simulated", None]},
                   "reason": {"type": "string"},
                   "outcome": {"type": "string", "enum": ["sent", "failed", "simulated", "skipped", "recorded"]},
                   "price": NUMBER_OR_NULL, "stop_threshold": NUMBER_OR_NULL, "resume_threshold": NUMBER_OR_NULL,
                   "detail": STRING_OR_NULL},
}


CHARGER = {
    "type": "object", "required": ["unit", "din", "state", "power_w", "vin", "vehicle", "session"],
    "properties": {
        "unit": {"type": "string"}, "din": STRING_OR_NULL,
        "state": {"type": "string", "enum": ["charging", "plugged_in", "idle", "unknown"],
                  "description": "as the session state machine sees it: power above the session threshold is "
                                 "charging; a session in its grace period or a car connected is plugged_in; "
                                 "unknown without recent data"},
        "power_w": {**NUMBER_OR_NULL, "description": "the unit's latest power (null when older than 5 minutes)"},
        "vin": STRING_OR_NULL, "vehicle": STRING_OR_NULL,
        "session": {"type": ["object", "null"], "required": ["start", "duration_s", "energy_wh", "cost"],
                    "description": "the session in progress",
                    "properties": {"start": {"type": "number", "description": "Unix seconds"},
                                   "duration_s": {"type": "number"}, "energy_wh": {"type": "number"},
                                   "cost": {"type": "number", "description": "running billed cost so far, "
                                            "dollars (supply + delivery; its hour in progress estimated)"}}}},
}
CHARGE = {   # a car's own charge (Tessie), as /api/charges serves it
    "type": "object",
    "required": ["id", "vin", "vehicle", "start", "end", "location", "away", "supercharger", "energy_added_wh",
                 "cost", "session_id", "efficiency"],
    "properties": {
        "id": {"type": "integer"}, "vin": {"type": "string"}, "vehicle": {"type": "string"},
        "charge_id": {"type": "string", "description": "Tessie's id of the charge"},
        "start": {"type": "number", "description": "Unix seconds, as the car recorded it"},
        "end": {"type": "number", "description": "Unix seconds"},
        "location": {"type": "string", "description": "\"home\", or the place Tessie names for an away charge"},
        "away": {"type": "boolean", "description": "no Wall Connector session explains it (and not within the "
                 "configured home radius)"},
        "supercharger": {"type": "boolean"},
        "energy_added_wh": {**NUMBER_OR_NULL, "description": "into the battery"},
        "energy_used_wh": {**NUMBER_OR_NULL, "description": "drawn from the charger, as Tessie estimates it"},
        "starting_battery": {**NUMBER_OR_NULL, "description": "percent"},
        "ending_battery": {**NUMBER_OR_NULL, "description": "percent"},
        "cost": {**NUMBER_OR_NULL, "description": "Tessie's cost in dollars: for away charging what the operator "
                 "charged; at home Tessie's own rate, not the bill (the matched session has the bill's cost)"},
        "session_id": {"type": ["integer", "null"], "description": "the matched Wall Connector session"},
        "wall_energy_wh": {**NUMBER_OR_NULL, "description": "energy of record of the matched session"},
        "efficiency": {**NUMBER_OR_NULL, "description": "energy added over the wall energy (plausible values "
                       "only, 0.5 to 1.05)"},
    },
}
VEHICLE = {
    "type": "object",
    "required": ["vin", "vehicle", "battery_level", "charging_state", "connectivity", "charge_limit", "data_age_s",
                 "unit", "sessions", "away_charges"],
    "properties": {
        "vin": {"type": "string"}, "vehicle": {"type": "string"},
        "battery_level": {**NUMBER_OR_NULL, "description": "state of charge, percent"},
        "charging_state": {**STRING_OR_NULL, "description": "as the car reports it: Disconnected, NoPower, "
                           "Starting, Charging, Stopped, Complete"},
        "connectivity": {"type": ["string", "null"], "enum": ["online", "asleep", "offline", None]},
        "charge_limit": {**NUMBER_OR_NULL, "description": "percent"},
        "data_age_s": {**NUMBER_OR_NULL, "description": "seconds since the car reported this state (an asleep "
                       "car is never woken: its state is from when it fell asleep)"},
        "plugged_in": {"type": "boolean", "description": "a unit reports this car, or it says it is connected"},
        "unit": {**STRING_OR_NULL, "description": "the unit it is plugged into, when a unit reports it"},
        "sessions": {"type": "array", "items": SESSION, "description": "its last wall sessions, newest first"},
        "away_charges": {"type": "array", "items": CHARGE,
                         "description": "its charges away from home (the cars' own charge history)"}},
}
FORECAST_HOUR = {
    "type": "object", "required": ["start", "cents", "source"],
    "properties": {"start": {"type": "number", "description": "the clock hour's start, Unix seconds"},
                   "cents": {"type": "number", "description": "predicted billed supply price, cents per kWh"},
                   "source": {"type": "string", "enum": ["day_ahead", "profile"],
                              "description": "the utility's day-ahead price, or the lookback's mean for that "
                                             "weekday and hour"}},
}
ERRORS = {"type": "array", "items": {"type": "string"},
          "description": "why a part is missing or old (Prometheus unreachable, an exporter not running, smart "
                         "charging off); empty when everything is current"}


def _json_response(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


BAD_REQUEST = {"400": _json_response(ERROR, "A query parameter is invalid; the message names it.")}

PLAN_HOUR = {
    "type": "object", "required": ["start", "end", "energy_wh", "cost", "price_cents", "seconds", "source"],
    "properties": {"start": {"type": "number", "description": "the clock hour's start, Unix seconds"},
                   "end": {"type": "number", "description": "the end of its usable part (the departure less the "
                                                           "margin in the last hour)"},
                   "energy_wh": {"type": "number", "description": "planned wall energy"},
                   "cost": {"type": "number", "description": "dollars: supply + delivery"},
                   "price_cents": {"type": "number", "description": "the hour's expected price, supply + delivery"},
                   "seconds": {"type": "number", "description": "charging time at the car's full power"},
                   "source": {"type": "string", "enum": ["realized", "day_ahead", "profile"]}},
}
PLAN = {
    "type": ["object", "null"],
    "required": ["energy_wh", "need_wh", "cost", "finish", "reachable_percent", "feasible", "hours"],
    "properties": {"energy_wh": {"type": "number"}, "need_wh": {"type": "number", "description": "(target - state "
                                                                                                  "of charge) x battery / efficiency"},
                   "cost": {"type": "number"}, "finish": NUMBER_OR_NULL,
                   "reachable_percent": {"type": "number"},
                   "feasible": {"type": "boolean", "description": "the target is reached by the departure"},
                   "hours": {"type": "array", "items": PLAN_HOUR}},
}
DEPARTURE_SETTING = {
    "type": "object", "required": ["target_percent", "departure", "weekly"],
    "properties": {"target_percent": {"type": "number", "minimum": 1, "maximum": 100},
                   "departure": {**NUMBER_OR_NULL, "description": "a one-off departure, Unix seconds"},
                   "weekly": {"type": "object", "additionalProperties": {"type": "string"},
                              "description": "weekday (mon..sun) -> local time HH:MM"},
                   "battery_kwh": NUMBER_OR_NULL, "updated_at": {"type": "number"}},
}
PLAN_STATUS = {
    "type": "object",
    "required": ["vin", "setting", "next_departure", "plugged_in", "state_of_charge", "decision", "charge_now",
                 "deadline_at_risk", "plan"],
    "properties": {"vin": {"type": "string"}, "vehicle": STRING_OR_NULL, "setting": DEPARTURE_SETTING,
                   "next_departure": NUMBER_OR_NULL, "plugged_in": {"type": "boolean"},
                   "state_of_charge": {"type": ["object", "null"], "required": ["percent", "source"],
                                       "properties": {"percent": {"type": "number"},
                                                      "source": {"type": "string", "enum": ["reported", "estimated"]},
                                                      "reading_percent": {"type": "number"},
                                                      "reading_at": {"type": "number"}}},
                   "efficiency": {"type": "number"}, "battery_kwh": {"type": "number"},
                   "decision": {"type": "string", "description": "plan_charge, plan_wait, plan_must_charge, "
                                "fail_safe_..., not_plugged_in or no_departure_ahead"},
                   "charge_now": {"type": "boolean"}, "deadline_at_risk": {"type": "boolean"}, "plan": PLAN},
}
PRICED_HOUR = {
    "type": "object", "required": ["start", "supply_cents", "delivery_cents", "price_cents", "source", "peak_risk"],
    "properties": {"start": {"type": "number"}, "supply_cents": {"type": "number"},
                   "delivery_cents": {"type": "number"}, "price_cents": {"type": "number"},
                   "source": {"type": "string", "enum": ["realized", "day_ahead", "profile"]},
                   "peak_risk": {"type": "boolean"}},
}
VIN_PATH = {"name": "vin", "in": "path", "required": True, "schema": {"type": "string", "minLength": 17,
                                                                        "maxLength": 17}}
WRITE_ERRORS = {"400": _json_response(ERROR, "The body is invalid; the message names the field"),
                "401": _json_response(ERROR, "No or the wrong bearer token"),
                "403": _json_response(ERROR, "Writes are disabled (no token configured)")}

OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "Charging session store", "version": "1",
             "description": "Completed charging sessions with energy and cost, derived from Prometheus, and "
                            "smart charging. This description is rendered, with \"Try it out\", at /api/docs."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                  "description": "SMART_CHARGING_API_TOKEN from .secrets"}}},
    "paths": {
        "/api/sessions": {"get": {
            "summary": "Sessions, newest first, filtered and paged",
            "parameters": [*FILTERS,
                           {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                       "maximum": 1000}},
                           {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                           {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}}],
            "responses": {"200": {"description": "A page of sessions (format=csv: the page as CSV)", "content": {
                "application/json": {"schema": {"type": "object", "required": ["total", "limit", "offset", "sessions"],
                                                "properties": {"total": {"type": "integer"},
                                                               "limit": {"type": "integer"},
                                                               "offset": {"type": "integer"},
                                                               "sessions": {"type": "array", "items": SESSION}}}},
                "text/csv": {"schema": {"type": "string"}}}}, **BAD_REQUEST}}},
        "/api/sessions/current": {"get": {
            "summary": "Sessions in progress",
            "responses": {"200": _json_response({"type": "object", "required": ["sessions"],
                                                 "properties": {"sessions": {"type": "array", "items": IN_PROGRESS}}},
                                                "Open sessions")}}},
        "/api/sessions/{id}": {"get": {
            "summary": "One session",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"200": _json_response(SESSION_WITH_LINES, "The session with its bill lines"),
                          "404": _json_response(ERROR, "No such session"), **BAD_REQUEST}}},
        "/api/export": {"get": {
            "summary": "Every matching session as CSV (default) or JSON",
            "parameters": [*FILTERS, {"name": "format", "in": "query",
                                      "schema": {"type": "string", "enum": ["csv", "json"]}}],
            "responses": {"200": {"description": "The sessions",
                                  "content": {"text/csv": {"schema": {"type": "string"}},
                                              "application/json": {"schema": {"type": "array", "items": SESSION}}}},
                          **BAD_REQUEST}}},
        "/api/summary": {"get": {
            "summary": "Totals per day, week or month (months are bills: fixed and capacity charges included)",
            "parameters": [*FILTERS, {"name": "period", "in": "query",
                                      "schema": {"type": "string", "enum": ["day", "week", "month"]}}],
            "responses": {"200": _json_response({"type": "object", "required": ["period", "time_zone", "summaries"],
                                                 "properties": {"period": {"type": "string"},
                                                                "time_zone": {"type": "string"},
                                                                "summaries": {"type": "array", "items": SUMMARY}}},
                                                "Summaries"), **BAD_REQUEST}}},
        "/api/meter": {"get": {
            "summary": "The utility's meter data per local day and per bill, with the EV's share and both costs of "
                       "the EV energy (written by charging-meter; empty until it has pulled)",
            "parameters": [p for p in FILTERS if p["name"] in ("from", "to")],
            "responses": {"200": _json_response({"type": "object", "required": ["days", "bills", "hints"],
                                                 "properties": {"days": {"type": "array", "items": METER_DAY},
                                                                "bills": {"type": "array", "items": METER_BILL},
                                                                "hints": {"type": "array",
                                                                          "items": {"type": "string"}}}},
                                                "Days, bills and tuning hints"), **BAD_REQUEST}}},
        "/api/reports/{period}": {"get": {
            "summary": "A month's (2026-10) or a year's (2026) charging report: every figure as JSON, the HTML page "
                       "or the PDF (attachment charging-report-<period>.pdf)",
            "parameters": [{"name": "period", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9]{4}(-(0[1-9]|1[0-2]))?$"}},
                           {"name": "format", "in": "query",
                            "schema": {"type": "string", "enum": ["json", "html", "pdf"], "default": "json"}}],
            "responses": {"200": {"description": "The report", "content": {
                "application/json": {"schema": {"type": "object", "required": [
                    "period", "totals", "bars", "breakdown", "price_trend", "vehicles", "units", "best", "worst",
                    "fixed_rate", "smart", "ev_share"]}},
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
                **BAD_REQUEST}}},
        "/api/chargers": {"get": {
            "summary": "Every Wall Connector unit now (idle ones too): its state, power, car and session in progress",
            "parameters": [p for p in FILTERS if p["name"] == "unit"],
            "responses": {"200": _json_response({
                "type": "object", "required": ["chargers", "as_of"],
                "properties": {"chargers": {"type": "array", "items": CHARGER},
                               "as_of": {"type": "number", "description": "Unix seconds"}}}, "The units"),
                **BAD_REQUEST}}},
        "/api/vehicles": {"get": {
            "summary": "Every car: its state from the vehicle exporter (last known, with its age) and its last "
                       "sessions; what is unknown is null, with the reason in errors",
            "parameters": [p for p in FILTERS if p["name"] == "vehicle"] + [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 100,
                                                            "default": 5},
                 "description": "last sessions per car"}],
            "responses": {"200": _json_response({
                "type": "object", "required": ["vehicles", "as_of", "errors"],
                "properties": {"vehicles": {"type": "array", "items": VEHICLE},
                               "as_of": {"type": "number", "description": "Unix seconds"}, "errors": ERRORS}},
                "The cars"), **BAD_REQUEST}}},
        "/api/charges": {"get": {
            "summary": "Each car's own charges (Tessie charge history): home, matched to a session, and away",
            "parameters": [
                {"name": "vehicle", "in": "query", "schema": {"type": "string"}, "description":
                 "vehicle names or VINs, repeated or comma-separated; empty, All or .* = every car"},
                {"name": "away", "in": "query", "schema": {"type": "string", "enum": ["true", "false", "all"]}},
                {"name": "from", "in": "query", "schema": {"type": "string"}, "description": "Unix seconds or ISO 8601"},
                {"name": "to", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
            "responses": {"200": _json_response({
                "type": "object", "required": ["charges", "count"],
                "properties": {"charges": {"type": "array", "items": CHARGE}, "count": {"type": "integer"}}},
                "Charges overlapping the range, newest first"), **BAD_REQUEST}}},
        "/api/prices": {"get": {
            "summary": "Prices now (5-minute, the hour's average and projection), smart charging's percentiles "
                       "and thresholds, and the forecast per clock hour; missing parts null with the reason",
            "responses": {"200": _json_response({
                "type": "object",
                "required": ["as_of", "price_5m_cents", "hour_average_cents", "projected_hour_cents",
                             "percentiles", "thresholds", "forecast", "errors"],
                "properties": {
                    "as_of": {"type": "number"},
                    "price_5m_cents": {**NUMBER_OR_NULL, "description": "the latest 5-minute supply price"},
                    "hour_average_cents": {**NUMBER_OR_NULL, "description": "the provider's average of the hour "
                                           "in progress so far"},
                    "projected_hour_cents": {**NUMBER_OR_NULL, "description": "the projected billed price of the "
                                             "hour in progress: its published prices, the rest at the latest"},
                    "percentiles": {"type": ["object", "null"], "description": "smart charging's (null when it "
                                    "is off): stop and resume percentiles of the lookback's prices",
                                    "properties": {"stop": {"type": "number"}, "resume": {"type": "number"},
                                                   "lookback_days": {"type": "number"},
                                                   "signal": {"type": "string", "enum": ["billed", "five_minute"]},
                                                   "price_rank": NUMBER_OR_NULL}},
                    "thresholds": {"type": ["object", "null"], "required": ["stop_cents", "resume_cents"],
                                   "properties": {"stop_cents": {"type": "number"},
                                                  "resume_cents": {"type": "number"}}},
                    "forecast": {"type": ["array", "null"], "items": FORECAST_HOUR},
                    "errors": ERRORS}}, "The prices")}}},
        "/api/events": {"get": {"summary": "WebSocket: session_started, session_completed, power and vehicle events",
                                "description": "First a hello ({type: hello, in_progress: [...], vehicles: [...]}), "
                                               "then: session_started {unit, start}; session_completed {session}; "
                                               "power {unit, t, watts} per evaluation; vehicle {t, changed: [names], "
                                               "vin, vehicle, battery_level, charging_state, connectivity, "
                                               "charge_limit, plugged_in, unit, data_age_s} when a car's battery "
                                               "level, charging state, connectivity or plug changes.",
                                "responses": {"101": {"description": "Switching to WebSocket"},
                                              "400": {"description": "Not a WebSocket upgrade request"}}}},
        "/api/smart-charging": {"get": {
            "summary": "Smart charging: the market of the last evaluation and each vehicle's state",
            "responses": {"200": _json_response({"type": "object", "required": ["dry_run", "last_evaluation", "market",
                                                                                "vehicles"],
                                                 "properties": {"dry_run": {"type": "boolean"},
                                                                "last_evaluation": NUMBER_OR_NULL,
                                                                "market": MARKET,
                                                                "vehicles": {"type": "array",
                                                                             "items": SMART_VEHICLE}}},
                                                "The state")}}},
        "/api/smart-charging/actions": {"get": {
            "summary": "The action log, newest first: commands, simulated commands and changes of decision",
            "parameters": [{"name": "vin", "in": "query", "schema": {"type": "string"}},
                           {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                       "maximum": 1000}}],
            "responses": {"200": _json_response({"type": "object", "required": ["actions"],
                                                 "properties": {"actions": {"type": "array", "items": ACTION}}},
                                                "Actions"), **BAD_REQUEST}}},
        "/api/smart-charging/override": {"post": {
            "summary": "Leave a vehicle alone until a time (resuming it first if paused); needs the API token",
            "security": [{"bearer": []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["vin", "until"],
                "properties": {"vin": {"type": "string", "minLength": 17, "maxLength": 17},
                               "until": {"type": ["string", "number"],
                                         "description": "ISO 8601 or Unix seconds, within 30 days"}}}}}},
            "responses": {"200": _json_response({"type": "object", "required": ["vin", "override_until"],
                                                 "properties": {"vin": {"type": "string"},
                                                                "override_until": {"type": "number"}}},
                                                "The override is recorded"),
                          "400": _json_response(ERROR, "The body is invalid; the message names the field"),
                          "401": _json_response(ERROR, "No or the wrong bearer token"),
                          "403": _json_response(ERROR, "Overrides are disabled (no token configured)")}}},
        "/api/plans": {"get": {
            "summary": "Departure plans: the priced hours ahead and every car with a departure set",
            "responses": {"200": _json_response({
                "type": "object", "required": ["evaluated_at", "trusted", "day_ahead_hours", "hours", "cars"],
                "properties": {"evaluated_at": NUMBER_OR_NULL, "trusted": {"type": "boolean"},
                               "untrusted_reason": STRING_OR_NULL,
                               "day_ahead_hours": {"type": ["integer", "null"]},
                               "hours": {"type": "array", "items": PRICED_HOUR},
                               "cars": {"type": "array", "items": PLAN_STATUS}}}, "The plans")}}},
        "/api/plans/{vin}": {
            "get": {"summary": "One car's departure, plan, revisions and outcomes (met or missed, actual cost)",
                    "parameters": [VIN_PATH],
                    "responses": {"200": _json_response({
                        "type": "object", "required": ["vin", "setting", "status", "revisions", "outcomes"],
                        "properties": {"vin": {"type": "string"},
                                       "setting": {"anyOf": [DEPARTURE_SETTING, {"type": "null"}]},
                                       "status": {"anyOf": [PLAN_STATUS, {"type": "null"}]},
                                       "revisions": {"type": "array", "items": {"type": "object"}},
                                       "outcomes": {"type": "array", "items": {"type": "object"}}}}, "The car"),
                        "404": _json_response(ERROR, "No departure is set for this car"), **BAD_REQUEST}},
            "put": {"summary": "Set a car's departure: one-off or weekly, and its target; needs the API token",
                    "security": [{"bearer": []}], "parameters": [VIN_PATH],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["target_percent"],
                        "properties": {"target_percent": {"type": "number", "minimum": 1, "maximum": 100},
                                       "departure": {"type": ["string", "number"],
                                                     "description": "ISO 8601 or Unix seconds, within 30 days"},
                                       "weekly": {"type": "object", "additionalProperties": {"type": "string"},
                                                  "description": "{\"mon\": \"07:00\", ...}"},
                                       "battery_kwh": {"type": "number", "minimum": 10, "maximum": 250}}}}}},
                    "responses": {"200": _json_response({"type": "object", "required": ["vin", "setting"],
                                                         "properties": {"vin": {"type": "string"},
                                                                        "setting": DEPARTURE_SETTING}}, "Saved"),
                                  **WRITE_ERRORS}},
            "delete": {"summary": "Clear a car's departure (it goes back to the threshold rule); needs the token",
                       "security": [{"bearer": []}], "parameters": [VIN_PATH],
                       "responses": {"200": _json_response({"type": "object"}, "Cleared"),
                                     "404": _json_response(ERROR, "No departure is set for this car"),
                                     **WRITE_ERRORS}}},
        "/plans/{vin}": {"post": {
            "summary": "The /plans page's form (HTML): set or clear a departure; the token as the form field "
                       "`token` or a bearer header; answers 303 back to the page",
            "security": [{"bearer": []}], "parameters": [VIN_PATH],
            "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object", "required": ["token"],
                "properties": {"token": {"type": "string"}, "action": {"type": "string", "enum": ["save", "clear"]},
                               "target_percent": {"type": "string"},
                               "departure": {"type": "string", "description": "a local datetime"},
                               "time": {"type": "string", "description": "HH:MM with day_mon ... day_sun"},
                               "battery_kwh": {"type": "string"}}}}}},
            "responses": {"303": {"description": "Back to /plans with a message"},
                          "401": {"description": "No or the wrong token (an HTML page)"},
                          "403": {"description": "Writes are disabled (no token configured)"}}}},
        "/api/plans/{vin}/what-if": {"get": {
            "summary": "Price charging now, the plan and the threshold rule for a target and a departure",
            "parameters": [VIN_PATH,
                           {"name": "target_percent", "in": "query", "required": True, "schema": {"type": "number"}},
                           {"name": "departure", "in": "query", "required": True,
                            "schema": {"type": "string"}, "description": "ISO 8601 or Unix seconds"},
                           {"name": "state_of_charge", "in": "query", "schema": {"type": "number"},
                            "description": "default: the car's (measured or estimated)"},
                           {"name": "battery_kwh", "in": "query", "schema": {"type": "number"}}],
            "responses": {"200": _json_response({
                "type": "object", "required": ["vin", "state_of_charge", "target_percent", "departure", "options"],
                "properties": {"vin": {"type": "string"}, "state_of_charge": {"type": "number"},
                               "target_percent": {"type": "number"}, "departure": {"type": "number"},
                               "options": {"type": "object", "required": ["charge_now", "planned", "threshold"],
                                           "properties": {"charge_now": PLAN, "planned": PLAN,
                                                          "threshold": PLAN}}}}, "The three options"),
                **BAD_REQUEST, "409": _json_response(ERROR, "No prices reach that departure yet")}}},
    },
}
