"""Small helpers shared by the benchmarks: percentiles, running the client process, markdown tables."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def pct(values: Sequence[float], q: float) -> float:
    """Percentile with linear interpolation (numpy's default); with 50 samples p99 is close to the max."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def ms(value: float | None, digits: int = 2) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:.{digits}f}" if value < 100 else f"{value:.0f}"


def size(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1e6:.2f} MB"
    if count >= 10_000:
        return f"{count / 1e3:.0f} kB"
    if count >= 1000:
        return f"{count / 1e3:.1f} kB"
    return f"{count} B"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table, padded so it also reads well on a terminal."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def run_client(args: Sequence[str], timeout: float) -> dict[str, Any]:
    """`python -m benchmarks.client burst ...` in its own process; its one JSON line back."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.client", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"client {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout)
