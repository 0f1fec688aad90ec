"""Tesla Wall Connector Gen 3 local API (`/api/1/vitals`, `/lifetime`, `/version`, `/wifi_status`).

Quirks handled here so nothing above sees raw JSON (see shared/upstream/wall-connector-local-api.md):
- `/lifetime` may contain a bare `nan` (invalid JSON): rewritten to null, the field becomes absent.
- bodies are sometimes truncated (missing the final `}`): one repair attempt, else `BadPayload`.
- every key is optional and firmware-dependent; wrongly typed values become absent, not zeros.
- output voltages read a few volts with the contactor open, so power is 0 W unless it is closed;
  on US split-phase installs per-phase values do not add up, so power = vehicle current x grid V.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from servicekit.errors import BadPayload
from servicekit.upstream import Upstream

_BARE_NAN = re.compile(rb"(?<=[:\[,])\s*-?nan\s*(?=[,}\]])", re.IGNORECASE)
SPLIT_PHASE_TOLERANCE_V = 25.0


def decode_lenient(body: bytes, where: str) -> dict[str, Any]:
    """Decode a Wall Connector body, repairing the two known defects once."""
    for attempt in (body, _BARE_NAN.sub(b"null", body)):
        for candidate in (attempt, attempt.rstrip() + b"}"):
            try:
                data = json.loads(candidate)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if not isinstance(data, dict):
                raise BadPayload(f"{where}: expected a JSON object, got {type(data).__name__}")
            return data
    raise BadPayload(f"{where}: invalid JSON that could not be repaired ({len(body)} bytes)")


def _num(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def _bool(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def _str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _codes(data: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value = data.get(key)
    if not isinstance(value, list):
        return None
    return tuple(str(item) for item in value if isinstance(item, (int, str)) and not isinstance(item, bool))


@dataclass(frozen=True)
class Vitals:
    contactor_closed: bool | None
    vehicle_connected: bool | None
    session_s: float | None
    grid_v: float | None
    grid_hz: float | None
    vehicle_current_a: float | None
    currents_a: dict[str, float | None]   # phase A/B/C/N
    voltages_v: dict[str, float | None]   # phase A/B/C (output side)
    relay_coil_v: float | None
    relay_k1_v: float | None
    relay_k2_v: float | None
    temperatures_c: dict[str, float | None]  # sensor pcba/handle/mcu
    uptime_s: float | None
    input_thermopile_uv: float | None
    prox_v: float | None
    pilot_high_v: float | None
    pilot_low_v: float | None
    session_energy_wh: float | None
    config_status: float | None
    evse_state: float | None
    current_alerts: tuple[str, ...] | None
    evse_not_ready_reasons: tuple[str, ...] | None

    @property
    def split_phase(self) -> bool:
        """US split phase: phase C reads about half the line voltage while charging (evcc's rule);
        without grid_v, phase A stands in for the line voltage."""
        volts_c = self.voltages_v.get("C")
        line = self.grid_v if self.grid_v is not None else self.voltages_v.get("A")
        return line is not None and volts_c is not None and abs(volts_c - line / 2) < SPLIT_PHASE_TOLERANCE_V

    @property
    def power_w(self) -> float | None:
        """Power to the vehicle: 0 with the contactor open; I_vehicle x V_grid on split phase; else sum V x I."""
        if self.contactor_closed is None:
            return None
        if not self.contactor_closed:
            return 0.0
        if not self.split_phase:
            pairs = [(self.voltages_v.get(p), self.currents_a.get(p)) for p in "ABC"]
            live = [(v, i) for v, i in pairs if v is not None and i is not None and v > 50]
            if live:
                return sum(v * i for v, i in live)
        if self.vehicle_current_a is None or self.grid_v is None:
            return None  # split phase needs grid_v: no power rather than a wrong one
        return self.vehicle_current_a * self.grid_v


def parse_vitals(data: dict[str, Any]) -> Vitals:
    return Vitals(
        contactor_closed=_bool(data, "contactor_closed"), vehicle_connected=_bool(data, "vehicle_connected"),
        session_s=_num(data, "session_s"), grid_v=_num(data, "grid_v"), grid_hz=_num(data, "grid_hz"),
        vehicle_current_a=_num(data, "vehicle_current_a"),
        currents_a={p: _num(data, f"current{p}_a") for p in "ABCN"},
        voltages_v={p: _num(data, f"voltage{p}_v") for p in "ABC"},
        relay_coil_v=_num(data, "relay_coil_v"), relay_k1_v=_num(data, "relay_k1_v"),
        relay_k2_v=_num(data, "relay_k2_v"),
        temperatures_c={s: _num(data, f"{s}_temp_c") for s in ("pcba", "handle", "mcu")},
        uptime_s=_num(data, "uptime_s"), input_thermopile_uv=_num(data, "input_thermopile_uv"),
        prox_v=_num(data, "prox_v"), pilot_high_v=_num(data, "pilot_high_v"), pilot_low_v=_num(data, "pilot_low_v"),
        session_energy_wh=_num(data, "session_energy_wh"), config_status=_num(data, "config_status"),
        evse_state=_num(data, "evse_state"), current_alerts=_codes(data, "current_alerts"),
        evse_not_ready_reasons=_codes(data, "evse_not_ready_reasons"),
    )


LIFETIME_FIELDS = ("contactor_cycles", "contactor_cycles_loaded", "alert_count", "thermal_foldbacks",
                   "avg_startup_temp", "charge_starts", "energy_wh", "connector_cycles", "uptime_s",
                   "charging_time_s")


@dataclass(frozen=True)
class Lifetime:
    values: dict[str, float | None]

    def __getitem__(self, key: str) -> float | None:
        return self.values.get(key)


def parse_lifetime(data: dict[str, Any]) -> Lifetime:
    return Lifetime({key: _num(data, key) for key in LIFETIME_FIELDS})


@dataclass(frozen=True)
class Version:
    firmware_version: str | None
    part_number: str | None
    serial_number: str | None


def parse_version(data: dict[str, Any]) -> Version:
    return Version(_str(data, "firmware_version"), _str(data, "part_number"), _str(data, "serial_number"))


@dataclass(frozen=True)
class WifiStatus:
    ssid: str | None
    signal_strength: float | None
    rssi_dbm: float | None
    snr_db: float | None
    connected: bool | None
    internet: bool | None
    ip: str | None
    mac: str | None


def decode_ssid(raw: str | None) -> str | None:
    """Real units send the SSID base64-encoded, some firmware plain text: decode if valid, else raw."""
    if raw is None:
        return None
    try:
        decoded = base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return raw
    return decoded if decoded.isprintable() and decoded else raw


def parse_wifi(data: dict[str, Any]) -> WifiStatus:
    return WifiStatus(decode_ssid(_str(data, "wifi_ssid")), _num(data, "wifi_signal_strength"),
                      _num(data, "wifi_rssi"), _num(data, "wifi_snr"), _bool(data, "wifi_connected"),
                      _bool(data, "internet"), _str(data, "wifi_infra_ip"), _str(data, "wifi_mac"))


PARSERS = {"vitals": parse_vitals, "lifetime": parse_lifetime, "version": parse_version, "wifi_status": parse_wifi}


async def fetch(upstream: Upstream, base_url: str, endpoint: str) -> Any:
    """GET /api/1/<endpoint> from one charger and parse it into its record type."""
    return await upstream.fetch_json(endpoint, f"{base_url}/api/1/{endpoint}", decode=decode_lenient,
                                     parse=PARSERS[endpoint])
