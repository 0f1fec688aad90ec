"""Tesla Wall Connector Gen 3 local API: ``/api/1/vitals``, ``lifetime``, ``version``, ``wifi_status``.

Served on one listener per reachable charger (leaders and standalone units; power-sharing
followers are not on the LAN), with no auth, compact JSON and the quirks from the notes:
unknown ``/api/1/<x>`` answers 500, anything else (e.g. ``/api/2/vitals``) 404; split-phase
units report ``voltageC_v`` at half the grid voltage and A/B/C currents that do not each equal
the vehicle current (power = ``vehicle_current_a`` x ``grid_v``); 3-phase units report the
per-phase current; output voltages read a few volts and currents a little noise when idle.
Noise is a deterministic function of (seed, charger, second).

Example (charging, US split phase, old firmware layout)::

    {"contactor_closed":true,"vehicle_connected":true,"session_s":3229,"grid_v":240.3,...,
     "session_energy_wh":61.000,"config_status":5,"evse_state":11,"current_alerts":[]}
"""

from __future__ import annotations

import base64
import random
from typing import Any

from aiohttp import web

from simulator.model import Model
from simulator.snapshots import ChargerSnapshot
from simulator.upstreams.jsonfmt import dumps_fixed

ENDPOINTS = ("vitals", "lifetime", "version", "wifi_status")


def _noise(s: ChargerSnapshot) -> random.Random:
    return random.Random(f"{s.seed}:{s.cfg.name}:{int(s.t)}")


def vitals_payload(s: ChargerSnapshot) -> bytes:
    """``/api/1/vitals`` in the charger's layout (old: 26 keys with relay_coil_v; new: relay_k1_v,
    relay_k2_v and evse_not_ready_reasons)."""
    rng, cfg = _noise(s), s.cfg
    grid_v = cfg.grid_v + rng.uniform(-1.5, 1.5)
    charging = s.contactor_closed
    three = cfg.wiring == "three_phase"
    if charging:
        amps = s.power_w / (3.0 * grid_v if three else grid_v)
        vehicle_a = round(amps, 1)
        if three:
            abc = (vehicle_a, vehicle_a, vehicle_a)
            neutral = rng.uniform(0.1, 0.4)
            volts = tuple(grid_v + rng.uniform(-0.5, 0.5) for _ in range(3))
        else:
            abc = (amps * 0.463 + rng.uniform(-0.1, 0.1), amps * 0.537 + rng.uniform(-0.1, 0.1),
                   amps * 0.547 + rng.uniform(-0.1, 0.1))
            neutral = amps * 0.453 + rng.uniform(-0.1, 0.1)
            volts = (grid_v + rng.uniform(-0.5, 0.5), grid_v + rng.uniform(-0.5, 0.5), grid_v / 2 + rng.uniform(-1, 1))
    else:
        vehicle_a = round(rng.choice((0.0, 0.0, 0.1, 0.1, 0.2, 0.3, 0.5)), 1)
        abc = tuple(rng.choice((0.0, 0.0, 0.1)) for _ in range(3))
        neutral = 0.0
        level = 2.1 if s.vehicle_connected else 0.0
        volts = tuple(max(0.0, level + rng.uniform(-0.2, 3.5 if not s.vehicle_connected else 0.4)) for _ in range(3))
    kw = s.power_w / 1000.0
    if charging:
        prox, pilot_hi, pilot_lo = 1.5 + rng.uniform(0, 0.4), rng.choice((0.0, 0.1)), rng.choice((0.0, 0.1))
    elif s.vehicle_connected:
        prox, pilot_hi, pilot_lo = 0.0, 8.5 + rng.uniform(0, 0.4), -11.4 - rng.uniform(0, 0.4)
    else:
        prox, pilot_hi, pilot_lo = 0.0, 11.9, 11.9
    items: list[tuple[str, Any, int | None]] = [
        ("contactor_closed", charging, None), ("vehicle_connected", s.vehicle_connected, None),
        ("session_s", s.session_s, None), ("grid_v", grid_v, 1),
        ("grid_hz", cfg.grid_hz + rng.uniform(-0.06, 0.06), 3), ("vehicle_current_a", float(vehicle_a), 1),
        ("currentA_a", float(abc[0]), 1), ("currentB_a", float(abc[1]), 1), ("currentC_a", float(abc[2]), 1),
        ("currentN_a", float(neutral), 1),
        ("voltageA_v", volts[0], 1), ("voltageB_v", volts[1], 1), ("voltageC_v", volts[2], 1),
    ]
    if cfg.vitals_layout == "old":
        items.append(("relay_coil_v", (6.1 if charging else 11.8) + rng.choice((-0.1, 0.0, 0.0)), 1))
    else:
        items += [("relay_k1_v", 6.1 if charging else 12.0, 1), ("relay_k2_v", 6.1 if charging else 0.0, 1)]
    items += [
        ("pcba_temp_c", s.pcba_c, 1), ("handle_temp_c", s.handle_c, 1), ("mcu_temp_c", s.mcu_c, 1),
        ("uptime_s", s.uptime_s, None), ("input_thermopile_uv", int(-150 - 12 * kw + rng.randint(-20, 20)), None),
        ("prox_v", prox, 1), ("pilot_high_v", pilot_hi, 1), ("pilot_low_v", pilot_lo, 1),
        ("session_energy_wh", s.session_energy_wh, 3), ("config_status", 5, None), ("evse_state", s.evse_state, None),
        ("current_alerts", list(s.alerts), None),
    ]
    if cfg.vitals_layout == "new":
        reasons = [] if charging else [1] if s.vehicle_connected else [4, 8]
        items.append(("evse_not_ready_reasons", reasons, None))
    return dumps_fixed(items)


def lifetime_payload(s: ChargerSnapshot) -> bytes:
    """``/api/1/lifetime``: integer counters (energy_wh integer) plus avg_startup_temp."""
    life = s.lifetime
    return dumps_fixed([
        ("contactor_cycles", life.contactor_cycles, None),
        ("contactor_cycles_loaded", life.contactor_cycles_loaded, None),
        ("alert_count", life.alert_count, None), ("thermal_foldbacks", life.thermal_foldbacks, None),
        ("avg_startup_temp", float(life.avg_startup_temp), 1), ("charge_starts", life.charge_starts, None),
        ("energy_wh", life.energy_wh, None), ("connector_cycles", life.connector_cycles, None),
        ("uptime_s", life.uptime_s, None), ("charging_time_s", life.charging_time_s, None),
    ])


def version_payload(s: ChargerSnapshot) -> bytes:
    cfg = s.cfg
    return dumps_fixed([
        ("firmware_version", cfg.firmware, None), ("git_branch", "HEAD", None), ("part_number", cfg.part_number, None),
        ("serial_number", cfg.serial, None), ("web_service", "h3-hermes-prd.sn.tesla.services", None),
    ])


def wifi_payload(s: ChargerSnapshot) -> bytes:
    """``/api/1/wifi_status`` with the SSID base64-encoded like real units."""
    w = s.cfg.wifi
    return dumps_fixed([
        ("wifi_ssid", base64.b64encode(w.ssid.encode()).decode(), None),
        ("wifi_signal_strength", w.signal_strength, None), ("wifi_rssi", w.rssi, None), ("wifi_snr", w.snr, None),
        ("wifi_connected", w.connected, None), ("wifi_infra_ip", w.ip, None), ("internet", w.internet, None),
        ("wifi_mac", w.mac, None),
    ])


_BUILDERS = {"vitals": vitals_payload, "lifetime": lifetime_payload, "version": version_payload,
             "wifi_status": wifi_payload}


def routes(model: Model, charger: str) -> list[web.RouteDef]:
    """Handlers for one charger's listener."""

    async def api1(request: web.Request) -> web.Response:
        builder = _BUILDERS.get(request.match_info["endpoint"])
        if builder is None:
            return web.Response(status=500, text="")
        model.sync()
        return web.Response(body=builder(model.charger_snapshot(charger)), content_type="application/json")

    return [web.get("/api/1/{endpoint}", api1)]
