"""Configuration: defaults, environment overrides, secrets, and one exact line per bad input."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from servicekit.config import ConfigError, Secret, load, load_files, read_secrets, reference_rows

ROOT = Path(__file__).resolve().parents[2]
BAD = Path(__file__).parent / "fixtures" / "config" / "bad"
TOKEN = "tk_live_should_never_be_printed"


def expected_message(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: ")
    return first[len("# expect: "):].replace("{path}", str(path))


@pytest.mark.parametrize("case", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_config_file_stops_with_one_line_naming_key_value_and_fix(case: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_files(str(case), None, {})
    assert str(error.value) == expected_message(case)
    assert "\n" not in str(error.value)
    assert TOKEN not in str(error.value)


def test_example_config_is_valid_and_matches_the_defaults() -> None:
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    assert load(example, {}, {}) == load({}, {}, {}), "config.example.yaml should document the defaults"


def test_example_config_documents_every_setting() -> None:
    text = (ROOT / "config.example.yaml").read_text()
    example = yaml.safe_load(text)
    for key, env, _, _ in reference_rows():
        section, name = key.split(".")
        assert name in (example.get(section) or {}), f"config.example.yaml lacks {key}"
        if env:
            assert env in text, f"config.example.yaml does not mention the override {env} of {key}"


def test_defaults_bind_loopback_on_documented_ports() -> None:
    config = load({}, {}, {})
    ports = {name: getattr(config, name).listen for name in
             ("wall_connectors", "energy_site", "vehicles", "price", "sessions", "prometheus", "alertmanager")}
    assert all(listen.host == "127.0.0.1" for listen in ports.values())
    assert [listen.port for listen in ports.values()] == [9881, 9882, 9883, 9884, 9885, 9090, 9093]
    assert config.smart_charging.control_enabled is False, "live control must be off by default"


def test_environment_overrides_yaml_with_the_familiar_names() -> None:
    env = {
        "TWC_CHARGERS": "garage:192.168.1.50,driveway:127.0.0.1:9891",
        "TWC_POLL_VITALS_INTERVAL": "10", "SMART_CHARGING_STOP_PERCENTILE": "95",
        "SMART_CHARGING_RESUME_PERCENTILE": "80", "SMART_CHARGING_MIN_INTERVAL": "15m",
        "COMED_DELIVERY_PER_KWH": "0.081", "COMED_MONTHLY_FIXED": "20.5",
        "FLEET_SESSION_MIN_ENERGY_KWH": "0.2", "FLEET_SESSION_MIN_DURATION_S": "120",
        "VEHICLE_NAMES": "5YJ3E1EA7KF000001:Blue,7SAYGDEE1PA000002:Red",
        "TARGET_ID_VEHICLES": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee:Blue", "LOCAL_TWC_ENABLED": "false",
        "TZ": "Europe/Berlin",
    }
    config = load({"smart_charging": {"stop_percentile": 85}, "wall_connectors": {"vitals_interval": 30}}, env, {})
    assert [(c.name, c.url) for c in config.wall_connectors.chargers] == [
        ("garage", "http://192.168.1.50"), ("driveway", "http://127.0.0.1:9891")]
    assert config.wall_connectors.vitals_interval == 10
    assert config.wall_connectors.enabled is False
    assert (config.smart_charging.stop_percentile, config.smart_charging.resume_percentile) == (95, 80)
    assert config.smart_charging.min_interval == 900
    assert (config.tariff.delivery_cents_per_kwh, config.tariff.monthly_fixed_dollars) == (pytest.approx(8.1), 20.5)
    assert (config.sessions.min_energy_kwh, config.sessions.min_duration) == (0.2, 120)
    assert config.vehicles.names == {"5YJ3E1EA7KF000001": "Blue", "7SAYGDEE1PA000002": "Red"}
    assert config.vehicles.target_ids == {"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee": "Blue"}
    assert config.general.timezone == "Europe/Berlin"


def test_tz_holding_a_libc_path_is_not_mistaken_for_our_setting() -> None:
    assert load({}, {"TZ": ":/etc/localtime"}, {}).general.timezone == "America/Chicago"


@pytest.mark.parametrize("env, message", [
    ({"SMART_CHARGING_MIN_INTERVAL": "-10"},
     "SMART_CHARGING_MIN_INTERVAL: must be greater than zero, got '-10'; use a positive duration such as 30s or 5m"),
    ({"TWC_CHARGERS": "garage"},
     "TWC_CHARGERS: must be a comma-separated list of key:value pairs, got 'garage'; "
     "write it as garage:192.168.1.50,driveway:192.168.1.51"),
    ({"SMART_CHARGING_CONTROL_ENABLED": "sometimes"},
     "SMART_CHARGING_CONTROL_ENABLED: must be true or false, got 'sometimes'; write true or false"),
    ({"SMART_CHARGING_RESUME_PERCENTILE": "95"},
     "smart_charging.stop_percentile: must be above resume_percentile (95) for hysteresis, got 90; "
     "raise stop_percentile or lower resume_percentile"),
])
def test_bad_environment_value_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load({}, env, {})
    assert str(error.value) == message


def test_token_comes_from_secrets_file_or_environment_and_never_prints(tmp_path: Path) -> None:
    secrets = tmp_path / ".secrets"
    secrets.write_text(f"# Tessie\nexport TESSIE_ACCESS_TOKEN='{TOKEN}'\nOTHER_TOOL=1\n")
    config = load_files(None, str(secrets), {})
    assert config.secrets.tessie_access_token == Secret(TOKEN)
    assert config.secrets.tessie_access_token.reveal() == TOKEN
    assert TOKEN not in repr(config) and TOKEN not in str(config)
    assert load_files(None, str(secrets), {"TESSIE_ACCESS_TOKEN": "from-env"}).secrets.tessie_access_token == \
        Secret("from-env")
    live = load({"smart_charging": {"control_enabled": True}}, {}, read_secrets(secrets))
    assert live.smart_charging.control_enabled


def test_unreadable_files_and_malformed_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config file: cannot read it, got '/nonexistent/c.yaml' "
                                          r"\(No such file or directory\); pass --config"):
        load_files("/nonexistent/c.yaml", None, {})
    bad = tmp_path / "secrets"
    bad.write_text(f"TESSIE_ACCESS_TOKEN {TOKEN}\n")
    with pytest.raises(ConfigError) as error:
        read_secrets(bad)
    assert str(error.value) == (f"secrets file line 1: expected KEY=VALUE, got a line without a valid KEY=; "
                                f"fix line 1 of {bad}")
    assert TOKEN not in str(error.value)


def test_component_needing_tessie_names_itself_when_token_missing() -> None:
    with pytest.raises(ConfigError) as error:
        load({}, {}, {}).require_tessie_token("vehicle-exporter (vehicles.enabled)")
    assert str(error.value) == ("TESSIE_ACCESS_TOKEN: missing, but vehicle-exporter (vehicles.enabled) needs it, got no "
                                "token; put TESSIE_ACCESS_TOKEN=<token> in .secrets or the environment, or set "
                                "vehicles.enabled: false")


@pytest.mark.parametrize("case", ["negative_interval", "secret_in_yaml", "bad_yaml"])
def test_entry_point_prints_one_line_and_exits_2(case: str) -> None:
    path = BAD / f"{case}.yaml"
    result = subprocess.run([sys.executable, "-m", "exporters.twc", "--config", str(path)],
                            capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert result.stderr == f"twc-exporter: configuration error: {expected_message(path)}\n"
    assert TOKEN not in result.stdout + result.stderr


def test_a_users_secrets_file_never_reaches_the_tests(tmp_path, monkeypatch) -> None:
    """`make test` with a token in ./.secrets (where the README says to put it) behaves as without one."""
    (tmp_path / ".secrets").write_text(f"TESSIE_ACCESS_TOKEN={TOKEN}\n")
    monkeypatch.chdir(tmp_path)
    case = BAD / "live_mode_without_token.yaml"
    with pytest.raises(ConfigError) as error:
        load_files(str(case), None, {})
    assert str(error.value) == expected_message(case)


def test_without_the_test_override_the_secrets_file_in_the_working_directory_is_read(tmp_path, monkeypatch) -> None:
    (tmp_path / ".secrets").write_text(f"TESSIE_ACCESS_TOKEN={TOKEN}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHARGING_SECRETS")
    assert load_files(None, None, {}).secrets.tessie_access_token == Secret(TOKEN)


@pytest.mark.parametrize("line, message", [
    ("TESSIE_TOKEN=abc", "secrets file: unknown key, got 'TESSIE_TOKEN'; did you mean TESSIE_ACCESS_TOKEN? "
                         "(settings go in config.yaml or the environment)"),
    ("tessie_access_token=abc", "secrets file: unknown key, got 'tessie_access_token'; did you mean "
                                "TESSIE_ACCESS_TOKEN? (settings go in config.yaml or the environment)"),
    ("TESSIE_ACCESS_TOKEN=", "secrets file: TESSIE_ACCESS_TOKEN is empty, got 'TESSIE_ACCESS_TOKEN='; put the value "
                             "after the = or remove the line"),
])
def test_secrets_file_typos_and_empty_values_stop_with_one_line(tmp_path, line: str, message: str) -> None:
    secrets = tmp_path / ".secrets"
    secrets.write_text(line + "\n")
    with pytest.raises(ConfigError) as error:
        load_files(None, str(secrets), {})
    assert str(error.value) == message


@pytest.mark.parametrize("value, message", [
    ("7.5", "COMED_DELIVERY_PER_KWH: is in dollars per kWh, and this looks like cents, got '7.5'; write 0.075 for "
            "7.5 cents"),
    ("abc", "COMED_DELIVERY_PER_KWH: must be a number in $/kWh, got 'abc'; write a number such as 0"),
])
def test_the_delivery_environment_variable_is_in_dollars_and_cents_there_are_refused(value: str, message: str) -> None:
    """COMED_DELIVERY_PER_KWH=7.5 would have made every cost 100 times too high."""
    with pytest.raises(ConfigError) as error:
        load({}, {"COMED_DELIVERY_PER_KWH": value}, {})
    assert str(error.value) == message
    assert load({}, {"COMED_DELIVERY_PER_KWH": "0.075"}, {}).tariff.delivery_cents_per_kwh == pytest.approx(7.5)
