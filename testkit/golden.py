"""Collector output as Prometheus scrapes it: rendered, linted by `promtool check metrics`, compared with
reviewed golden files (UPDATE_GOLDENS=1 rewrites them)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

UPDATE = os.environ.get("UPDATE_GOLDENS") == "1"


def render(families: Callable[[], Iterable[Metric]]) -> str:
    """The text exposition of `families()` on a fresh registry, as Prometheus would scrape it."""
    class Fixed:
        def collect(self) -> Iterable[Metric]:
            return families()

    registry = CollectorRegistry()
    registry.register(Fixed())
    return generate_latest(registry).decode()


def promtool_problems(text: str) -> str:
    """What `promtool check metrics` says about the text; empty means clean (exit 0, no output)."""
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    return (result.stdout + result.stderr) if result.returncode or result.stdout or result.stderr else ""


def check_golden(path: Path, text: str) -> None:
    """Byte-for-byte comparison with a reviewed golden; UPDATE_GOLDENS=1 rewrites it."""
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{path.name}: exposition changed; review, then rerun with UPDATE_GOLDENS=1"
