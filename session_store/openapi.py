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
                   "final": {"type": "boolean", "description": "false while a session in it is provisional"}},
}

ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}

FILTERS = [
    {"name": "from", "in": "query", "schema": {"type": "string"},
     "description": "Unix seconds or ISO 8601; sessions ending at or after it"},
    {"name": "to", "in": "query", "schema": {"type": "string"},
     "description": "Unix seconds or ISO 8601; sessions starting before it"},
    {"name": "unit", "in": "query", "schema": {"type": "string"}},
    {"name": "vehicle", "in": "query", "schema": {"type": "string"}},
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


def _json_response(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


BAD_REQUEST = {"400": _json_response(ERROR, "A query parameter is invalid; the message names it.")}

OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "Charging session store", "version": "1",
             "description": "Completed charging sessions with energy and cost, derived from Prometheus, and "
                            "smart charging."},
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
        "/api/events": {"get": {"summary": "WebSocket: session_started, session_completed and power events",
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
    },
}
