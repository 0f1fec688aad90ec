"""Demo and live never share state: every default path derives from general.data_dir, the suite gives
each mode its own directory (recorded in it, never mixed), and the price backfill knows what it backfilled."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import exporters.price_backfill as backfill
from servicekit.config import load
from exporters.price_history import PriceHistory
import suite.__main__ as suite_main

CHARGERS = {"wall_connectors": {"chargers": [{"name": "garage", "address": "192.168.1.50"}]}}


def test_the_session_database_lives_in_the_data_directory_unless_set() -> None:
    assert load({}, {}, {}).sessions.database == str(Path("var") / "session_store.sqlite3")
    assert load({"general": {"data_dir": "/srv/charging"}}, {}, {}).sessions.database == \
        "/srv/charging/session_store.sqlite3"
    assert load({}, {"CHARGING_DATA_DIR": "/srv/other"}, {}).sessions.database == "/srv/other/session_store.sqlite3"
    assert load({"sessions": {"database": ""}}, {"CHARGING_DATA_DIR": "/d"}, {}).sessions.database == \
        "/d/session_store.sqlite3"
    assert load({"sessions": {"database": "/x/s.db"}}, {"CHARGING_DATA_DIR": "/d"}, {}).sessions.database == "/x/s.db"
    assert load({}, {"CHARGING_DATA_DIR": "/d", "SESSION_STORE_DB": "/e/s.db"}, {}).sessions.database == "/e/s.db"


def test_each_mode_has_its_own_directory_and_the_children_are_told(tmp_path: Path) -> None:
    DEMO, LIVE, Suite, mode_of = suite_main.DEMO, suite_main.LIVE, suite_main.Suite, suite_main.mode_of
    base = tmp_path / "var"
    demo_config = load({"general": {"data_dir": str(base)}}, {}, {})
    live_config = load({"general": {"data_dir": str(base)}, **CHARGERS}, {}, {})
    assert (mode_of(demo_config), mode_of(live_config)) == (DEMO, LIVE)
    demo = Suite(demo_config, None, base / DEMO, mode=DEMO)
    live = Suite(live_config, None, base / LIVE, mode=LIVE)
    assert demo.env["CHARGING_DATA_DIR"] == str(base / "demo") and live.env["CHARGING_DATA_DIR"] == str(base / "live")
    assert demo.database() == base / "demo" / "session_store.sqlite3"
    assert live.database() == base / "live" / "session_store.sqlite3"


def test_the_demo_never_writes_a_configured_database(tmp_path: Path, monkeypatch) -> None:
    DEMO, LIVE, Suite = suite_main.DEMO, suite_main.LIVE, suite_main.Suite
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f"general: {{data_dir: {tmp_path / 'var'}}}\nsessions: {{database: {tmp_path / 'my.db'}}}\n")
    monkeypatch.delenv("SESSION_STORE_DB", raising=False)
    config = load({"general": {"data_dir": str(tmp_path / "var")}, "sessions": {"database": str(tmp_path / "my.db")}},
                  {}, {})
    demo = Suite(config, str(config_file), tmp_path / "var" / DEMO, mode=DEMO)
    assert demo.database() == tmp_path / "var" / "demo" / "session_store.sqlite3"
    live = Suite(config, str(config_file), tmp_path / "var" / LIVE, mode=LIVE)
    assert live.database() == tmp_path / "my.db", "live mode keeps the database the user configured"


def test_a_directory_of_the_other_mode_is_refused(tmp_path: Path) -> None:
    DEMO, LIVE, check_mode_dir = suite_main.DEMO, suite_main.LIVE, suite_main.check_mode_dir
    MODE_FILE = suite_main.MODE_FILE
    demo_dir = tmp_path / "var" / "demo"
    demo_dir.mkdir(parents=True)
    (demo_dir / MODE_FILE).write_text("demo\n")
    check_mode_dir(demo_dir, DEMO)
    with pytest.raises(suite_main.CannotStart, match=r"belongs to the demo suite .* but this is the live suite"):
        check_mode_dir(demo_dir, LIVE)
    with pytest.raises(suite_main.CannotStart, match="belongs to the demo suite"):
        check_mode_dir(demo_dir / "live", LIVE)          # data_dir pointed into the demo's directory
    check_mode_dir(tmp_path / "var" / "live", LIVE)      # not there yet: fine


def history(base: float, count: int, cents: float) -> PriceHistory:
    return PriceHistory.empty().merged([(base + 300 * i, cents) for i in range(1, count + 1)], 0)


def test_the_backfill_records_its_source_and_backfills_everything_again_from_another(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    base = 1_784_000_000 // 3600 * 3600
    written: list[str] = []

    def create_blocks(text: str, data_dir: Path, duration: str, promtool: str = "promtool") -> list[str]:
        data_dir.mkdir(parents=True, exist_ok=True)
        name = f"block{len(written)}"
        (data_dir / name).mkdir()
        (data_dir / name / "meta.json").write_text("{}")
        written.append(text)
        return [name]

    prices = {"url": history(base, 24, 3.0)}

    async def fetch(config, days, log):
        return prices["url"]

    monkeypatch.setattr(backfill, "create_blocks", create_blocks)
    monkeypatch.setattr(backfill, "fetch", fetch)
    log = logging.getLogger("backfill-test")
    data, state = tmp_path / "tsdb", tmp_path / "run" / "price-backfill.json"
    demo = load({"price": {"base_url": "http://127.0.0.1:9880"}}, {}, {})
    assert backfill.run(demo, data, 1, "127.0.0.1:9884", "price", state, None, log, mode="demo") == 0
    recorded = json.loads(state.read_text())
    assert {k: recorded[k] for k in ("provider", "base_url", "mode")} == {
        "provider": "comed", "base_url": "http://127.0.0.1:9880", "mode": "demo"}
    assert recorded["blocks"] == ["block0"]

    # the same source again: only what is new
    prices["url"] = history(base, 30, 3.0)
    assert backfill.run(demo, data, 1, "127.0.0.1:9884", "price", state, None, log, mode="demo") == 0
    assert written[-1].count("\nelectricity_price_5m_cents_per_kwh{") == 6

    # the real provider: everything again, and the demo's blocks are gone
    real = load({}, {}, {})
    prices["url"] = history(base, 30, 7.0)
    assert backfill.run(real, data, 1, "127.0.0.1:9884", "price", state, None, log, mode="live") == 0
    assert written[-1].count("\nelectricity_price_5m_cents_per_kwh{") == 30
    assert not (data / "block0").exists() and not (data / "block1").exists()
    recorded = json.loads(state.read_text())
    assert (recorded["base_url"], recorded["mode"], recorded["blocks"]) == (
        "https://hourlypricing.comed.com", "live", ["block2"])


def test_a_state_that_does_not_name_its_source_is_not_trusted(tmp_path: Path) -> None:
    state = tmp_path / "price-backfill.json"
    source = {"provider": "comed", "base_url": "https://hourlypricing.comed.com", "mode": "live"}
    state.write_text(json.dumps({"end": 1234.0, "series": backfill.SERIES}))
    assert backfill.read_state(state) == 1234.0
    assert backfill.read_state(state, source) == 0.0
    state.write_text(json.dumps({"end": 1234.0, "series": backfill.SERIES, **source}))
    assert backfill.read_state(state, source) == 1234.0
    assert backfill.read_state(state, {**source, "mode": "demo"}) == 0.0


def test_data_of_the_old_shared_layout_is_pointed_out(tmp_path: Path) -> None:
    base = tmp_path / "var"
    (base / "prometheus").mkdir(parents=True)
    (base / "run").mkdir()
    (base / "session_store.sqlite3").write_text("")
    live_db = base / "live" / "session_store.sqlite3"
    assert "rm -r" not in suite_main.legacy_note(base, live_db), "no sign of the demo: maybe real data, keep it"
    (base / "run" / "simulator.json").write_text("{}")
    note = suite_main.legacy_note(base, live_db)
    assert note.startswith(f"charging-suite: note: {base}/prometheus {base}/session_store.sqlite3* {base}/run hold "
                           "the demo's simulated data")
    assert suite_main.legacy_note(tmp_path / "fresh", live_db) is None
