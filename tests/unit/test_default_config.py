"""Every entry point reads the same default configuration as `make up`: $CHARGING_CONFIG, else
./config.yaml when present; with no file at all, it says how to give it one. config.yaml is git-ignored."""
from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
import yaml

from testkit.env import CONFIG_ENV

ROOT = Path(__file__).resolve().parents[2]
PORTS = {"wall_connectors": 19881, "energy_site": 19882, "vehicles": 19883, "price": 19884, "sessions": 19885}


@pytest.fixture
def recorded(monkeypatch, tmp_path: Path):
    """Each entry point's own `main`, with serving replaced by a recorder of the configuration it loaded."""
    import servicekit.runtime as runtime
    import exporters.price_backfill as backfill
    import session_store.__main__ as store_main

    for key in CONFIG_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TESSIE_ACCESS_TOKEN", "default-config-test-token")   # fleet and vehicle need one
    monkeypatch.chdir(tmp_path)
    seen: dict[str, object] = {}

    async def record_serve(name, description, listen, build, log, stop=None, ready=None) -> None:
        seen[name] = listen.port

    async def record_store(config, host, port, log, stop=None) -> None:
        seen["session-store"] = port

    def record_backfill(config, data_dir, days, instance, job, state, output, log, until=float("inf"), mode=None,
                        import_url=None):
        seen["price-backfill"] = instance
        return 0
    monkeypatch.setattr(runtime, "serve", record_serve)
    monkeypatch.setattr(store_main, "run", record_store)
    monkeypatch.setattr(backfill, "run", record_backfill)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield seen
    root.handlers[:] = handlers
    root.setLevel(level)


def run_every_entry_point() -> None:
    import exporters.price_backfill as backfill
    import session_store.__main__ as store_main
    from exporters import fleet, price, twc, vehicle
    for main in (twc.main, fleet.main, vehicle.main, price.main, store_main.main, backfill.main):
        assert main([]) == 0


def test_every_entry_point_reads_config_yaml_in_the_working_directory(recorded, tmp_path: Path) -> None:
    config = {section: {"listen": f"127.0.0.1:{port}"} for section, port in PORTS.items()}
    config["wall_connectors"]["chargers"] = [{"name": "garage", "address": "127.0.0.1:9"}]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run_every_entry_point()
    assert recorded == {"twc-exporter": 19881, "fleet-exporter": 19882, "vehicle-exporter": 19883,
                        "price-exporter": 19884, "session-store": 19885, "price-backfill": "127.0.0.1:19884"}


def test_charging_config_wins_over_config_yaml(recorded, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"price": {"listen": "127.0.0.1:19884"}}))
    (tmp_path / "other.yaml").write_text(yaml.safe_dump({"price": {"listen": "127.0.0.1:29884"}}))
    monkeypatch.setenv("CHARGING_CONFIG", str(tmp_path / "other.yaml"))
    from exporters import price
    assert price.main([]) == 0
    assert recorded["price-exporter"] == 29884


def test_without_any_configuration_file_the_log_points_at_config(recorded, capsys) -> None:
    from exporters import twc
    assert twc.main([]) == 0
    err = capsys.readouterr().err
    assert "no configuration file (no --config, $CHARGING_CONFIG or ./config.yaml)" in err
    assert "pass --config FILE" in err


def test_the_file_in_use_is_logged(recorded, tmp_path: Path, capsys) -> None:
    (tmp_path / "config.yaml").write_text("price:\n  poll_interval: 60\n")
    import session_store.__main__ as store_main
    assert store_main.main([]) == 0
    assert 'msg="configuration from config.yaml"' in capsys.readouterr().err


def test_config_yaml_is_git_ignored_but_not_the_compose_one() -> None:
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT).returncode == 0
    assert ignored("config.yaml")
    assert not ignored("compose/config.yaml") and not ignored("config.example.yaml")
