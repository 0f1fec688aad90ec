"""The settings that reach Alertmanager's notification templates: the time zone's table of UTC
offsets and the base the relative runbook links resolve against (suite/alertmanager_config.py)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from servicekit.config import load
from suite.alertmanager_config import local_time_template, notification_text, runbook_base, zone_transitions


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())


def test_chicago_changes_offset_twice_a_year_at_the_right_second() -> None:
    periods = zone_transitions("America/Chicago")
    assert periods[0] == (utc(2024, 1, 1), -6 * 3600, "CST")
    assert (utc(2026, 3, 8, 8), -5 * 3600, "CDT") in periods      # 2:00 CST
    assert (utc(2026, 11, 1, 7), -6 * 3600, "CST") in periods     # 2:00 CDT
    assert len(periods) == 1 + 2 * 27                              # 2024 to 2050
    assert all(a[0] < b[0] and a[1:] != b[1:] for a, b in zip(periods, periods[1:]))


def test_a_zone_without_daylight_saving_is_one_offset() -> None:
    assert zone_transitions("Asia/Kolkata") == [(utc(2024, 1, 1), 19800, "IST")]
    template = local_time_template("Asia/Kolkata")
    assert "if ge" not in template and ".UTC.Add 19800000000000" in template and '"IST"' in template


@pytest.mark.parametrize("url, base", [
    (None, None),
    ("https://github.com/you/suite/blob/main", "https://github.com/you/suite/blob/main/"),
    ("https://github.com/you/suite/blob/main/", "https://github.com/you/suite/blob/main/"),
    ("https://github.com/you/suite/blob/main/README.md", "https://github.com/you/suite/blob/main/"),
    ("https://docs.example.com", "https://docs.example.com/"),
    ("https://docs.example.com/suite/README.md?plain=1#alerts", "https://docs.example.com/suite/"),
])
def test_runbook_base_is_the_folder_a_browser_resolves_in(url: str | None, base: str | None) -> None:
    assert runbook_base(url) == base


def test_message_text_carries_the_settings_then_the_template() -> None:
    default = notification_text(load({}, {}, {}))
    assert "America/Chicago" in default and "charging.runbook_base" not in default
    assert default.endswith('{{- template "charging.text" . }}')
    # A URL is a Go string literal in the template: braces in it cannot open an action.
    text = notification_text(load({"alertmanager": {"runbook_base_url": "https://x.example.com/a}}b/"}}, {}, {}))
    assert '{{- define "charging.runbook_base" }}{{ "https://x.example.com/a}}b/" }}{{ end }}' in text
