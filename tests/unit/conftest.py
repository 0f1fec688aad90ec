"""Unit tests run in one pinned time zone, so dates and renders never depend on the machine's."""
from __future__ import annotations

import time
from typing import Iterator

import pytest


@pytest.fixture(autouse=True)
def pinned_time_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/Chicago")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
