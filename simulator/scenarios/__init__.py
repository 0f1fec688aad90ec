"""Bundled scenarios: ``demo`` (the full story for demo mode), ``constant`` and ``outage`` (small,
for tests). ``path("demo")`` returns the file to pass to ``charging-sim --scenario``."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def path(name: str) -> Path:
    """Path of a bundled scenario by name (``demo``, ``constant``, ``outage``)."""
    candidate = HERE / f"{name}.yaml"
    if not candidate.is_file():
        raise FileNotFoundError(f"no bundled scenario {name!r}; available: {', '.join(names())}")
    return candidate
