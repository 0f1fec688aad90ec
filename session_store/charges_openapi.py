"""The OpenAPI description of `/api/charges` (session_store.charges_api), merged into session_store.openapi."""
from __future__ import annotations

NUMBER_OR_NULL = {"type": ["number", "null"]}
CHARGE = {
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
OPENAPI_PATHS = {
    "/api/charges": {"get": {
        "summary": "Each car's own charges (Tessie charge history): home, matched to a session, and away",
        "parameters": [
            {"name": "vehicle", "in": "query", "schema": {"type": "string"}, "description":
             "vehicle names or VINs, repeated or comma-separated; empty or All = every car"},
            {"name": "away", "in": "query", "schema": {"type": "string", "enum": ["true", "false", "all"]}},
            {"name": "from", "in": "query", "schema": {"type": "string"}, "description": "Unix seconds or ISO 8601"},
            {"name": "to", "in": "query", "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
        ],
        "responses": {
            "200": {"description": "Charges overlapping the range, newest first", "content": {"application/json": {
                "schema": {"type": "object", "required": ["charges", "count"], "properties": {
                    "charges": {"type": "array", "items": CHARGE}, "count": {"type": "integer"}}}}}},
            "400": {"description": "A query parameter is invalid; the message names it.",
                    "content": {"application/json": {"schema": {"type": "object", "required": ["error"]}}}},
        }}},
}
