"""`python -m benchmarks` names every benchmark and the settings it would run with (`--list`), and
`--only NAME` refuses an unknown name. Run as the command a user types, from the repository root;
nothing is run here: timings are never asserted."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from testkit import ROOT


def benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def listed(*args: str) -> dict[str, dict[str, Any]]:
    """Benchmark name -> the settings `--list` prints for it."""
    done = benchmarks("--list", *args)
    assert done.returncode == 0, done.stderr
    return {name: json.loads(settings) for name, settings in (line.split(" ", 1) for line in done.stdout.splitlines())}


def test_only_accepts_the_end_to_end_benchmarks_and_refuses_unknown_names(tmp_path: Path) -> None:
    names = list(listed("--output", str(tmp_path / "results.md")))
    assert {"scrape", "hung", "accuracy", "latency", "scale", "memory"} <= set(names)
    assert not (tmp_path / "results.md").exists(), "--list runs nothing and writes no results"
    refused = benchmarks("--only", "nope")
    assert refused.returncode == 2
    assert all(repr(name) in refused.stderr for name in names), refused.stderr


def test_quick_runs_are_smaller_than_full_runs() -> None:
    full, quick = listed(), listed("--quick")
    assert quick["scale"]["api_sessions"] < full["scale"]["api_sessions"] == 100_000
    assert full["scale"]["days"] == 30 and full["scale"]["units"] == 10
    assert all(len(c["name"]) and c["cars"] >= 5 for c in full["latency"]["unplug"])
    assert all(c["cars"] == 2 for c in quick["latency"]["unplug"])
    assert quick["memory"]["load_s"] < full["memory"]["load_s"]
