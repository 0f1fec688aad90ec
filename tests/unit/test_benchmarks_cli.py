"""`python -m benchmarks --only NAME` knows every benchmark (nothing is run here: timings are never asserted)."""
from __future__ import annotations

import pytest

from benchmarks import latency, memory, scale
from benchmarks.__main__ import BENCHMARKS, main


def test_only_accepts_the_end_to_end_benchmarks_and_refuses_unknown_names(capsys) -> None:
    assert {"scrape", "hung", "accuracy", "latency", "scale", "memory"} <= set(BENCHMARKS)
    with pytest.raises(SystemExit) as refused:
        main(["--only", "nope"])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert all(repr(name) in error for name in BENCHMARKS), error


def test_quick_runs_are_smaller_than_full_runs() -> None:
    assert scale.Settings.quick().api_sessions < scale.Settings.full().api_sessions == 100_000
    assert scale.Settings.full().days == 30 and scale.Settings.full().units == 10
    assert all(len(c.name) and c.cars >= 5 for c in latency.Settings.full().unplug)
    assert all(c.cars == 2 for c in latency.Settings.quick().unplug)
    assert memory.Settings.quick().load_s < memory.Settings.full().load_s
