"""Wall Connector collector: recorded payloads in, exposition text out (golden), plus the quirks."""
from __future__ import annotations

from pathlib import Path

import pytest

from upstreams.wallconnector import PARSERS, decode_lenient
from servicekit.errors import BadPayload
from exporters.twc import families
from testkit.exposition import named
from testkit.golden import check_golden, promtool_problems, render

FIXTURES = Path(__file__).parent / "fixtures" / "wallconnector"
GOLDEN = Path(__file__).parent / "golden" / "twc.txt"


def record(name: str, endpoint: str):
    return PARSERS[endpoint](decode_lenient((FIXTURES / name).read_bytes(), name))


def exposition(data: dict) -> str:
    return render(lambda: families(data))


def sample_data() -> dict:
    return {
        "garage": {"vitals": record("vitals_us_charging.json", "vitals"), "lifetime": record("lifetime.json", "lifetime"),
                   "version": record("version.json", "version"), "wifi_status": record("wifi_status.json", "wifi_status")},
        "barn": {"vitals": record("vitals_eu_charging.json", "vitals"),
                 "lifetime": record("lifetime_nan.txt", "lifetime")},
        "shed": {"vitals": record("vitals_new_firmware_plugged.json", "vitals")},
        "carport": {"vitals": record("vitals_truncated_unknown_state.txt", "vitals")},
    }


def test_exposition_matches_golden() -> None:
    check_golden(GOLDEN, exposition(sample_data()))


def test_promtool_check_metrics_is_clean() -> None:
    assert promtool_problems(exposition(sample_data())) == ""


def test_power_is_derived_per_wiring_and_zero_with_contactor_open() -> None:
    power = named(exposition(sample_data()), "twc_power_watts")
    assert power['twc_power_watts{charger="garage"}'] == pytest.approx(40.4 * 228.6)  # US split phase
    assert power['twc_power_watts{charger="barn"}'] == pytest.approx(6.1 * (242.8 + 234.3 + 228.8))  # EU 3-phase
    assert power['twc_power_watts{charger="shed"}'] == 0.0  # contactor open, output volts are noise
    assert power['twc_power_watts{charger="carport"}'] == 0.0


def test_bare_nan_leaves_the_field_out_and_keeps_the_rest() -> None:
    text = exposition(sample_data())
    assert 'twc_average_startup_temperature_celsius{charger="barn"}' not in text
    assert 'twc_charge_starts_total{charger="barn"} 42.0' in text
    assert 'twc_average_startup_temperature_celsius{charger="garage"} 27.8' in text


def test_truncated_body_is_repaired_and_unknown_evse_state_exported_as_number() -> None:
    text = exposition(sample_data())
    assert 'twc_evse_state_code{charger="carport"} 13.0' in text
    assert 'twc_evse_state{charger="carport",state="unknown"} 1.0' in text
    assert 'twc_evse_state{charger="garage",state="charging"} 1.0' in text
    assert 'twc_active_alerts{charger="carport"} 1.0' in text


def test_wrongly_typed_fields_are_absent_not_zero() -> None:
    text = exposition({"odd": {"vitals": record("vitals_wrong_types.json", "vitals")}})
    assert 'twc_temperature_celsius{charger="odd",sensor="pcba"} 21.5' in text
    for name in ("twc_grid_voltage_volts", "twc_grid_frequency_hertz", "twc_power_watts", "twc_evse_state_code",
                 "twc_contactor_closed", "twc_active_alerts"):
        assert f'{name}{{charger="odd"}}' not in text, name


def test_ssid_is_decoded_from_base64() -> None:
    assert 'ssid="HomeWiFi"' in exposition(sample_data())


@pytest.mark.parametrize("body", [b"<html>500</html>", b'{"contactor_closed":tr', b"[1,2]"])
def test_unrepairable_bodies_are_bad_payloads(body: bytes) -> None:
    with pytest.raises(BadPayload):
        decode_lenient(body, "vitals")


def test_collector_does_not_mutate_its_input() -> None:
    data = sample_data()
    before = repr(data)
    exposition(data)
    assert repr(data) == before
