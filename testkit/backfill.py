"""Data in Prometheus before it starts: OpenMetrics text turned into TSDB blocks by promtool, and the
product's own price backfill.

Tests and benchmarks that need history (a month of prices, a day of charging) write it as
OpenMetrics and let `promtool tsdb create-blocks-from openmetrics` turn it into blocks in a data
directory that Prometheus then starts on, as `price-backfill` does for real.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testkit.env import clean_env


def create_blocks(source: Path, data_dir: Path, *, max_block_duration: str = "24h", timeout: float = 120) -> Path:
    """Blocks in `data_dir` from the OpenMetrics file `source` (which must end with `# EOF`); one block
    spans at most `max_block_duration`, so a long history is a few blocks, not hundreds."""
    result = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                             f"--max-block-duration={max_block_duration}", str(source), str(data_dir)],
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"promtool create-blocks-from openmetrics {source} failed ({result.returncode}): "
                           f"{(result.stderr + result.stdout).strip()[-2000:]}")
    return data_dir


def write_blocks(data_dir: Path, openmetrics: str, *, max_block_duration: str = "24h", timeout: float = 120) -> Path:
    """`openmetrics` written beside `data_dir` (as <data_dir>.om), then turned into blocks in it."""
    source = data_dir.with_suffix(".om")
    source.write_text(openmetrics)
    return create_blocks(source, data_dir, max_block_duration=max_block_duration, timeout=timeout)


def price_blocks(data_dir: Path, labels: str, values: list[float], end: float, extra: str = "") -> Path:
    """Blocks of `electricity_price_5m_cents_per_kwh{labels}` (values[i] ends 300 s apart, the last one
    at `end`) and of the billed hourly prices they make (`electricity_price_billed_cents_per_kwh`, the
    mean of each complete clock hour, stamped with its end); `extra` appends more OpenMetrics lines
    (with their own # TYPE)."""
    name = "electricity_price_5m_cents_per_kwh"
    lines = [f"# TYPE {name} gauge"]
    start = end - (len(values) - 1) * 300
    lines += [f"{name}{{{labels}}} {value} {start + i * 300:.0f}" for i, value in enumerate(values)]
    hours: dict[float, list[float]] = {}
    for i, value in enumerate(values):
        hours.setdefault(-(-(start + i * 300) // 3600) * 3600, []).append(value)
    billed = "electricity_price_billed_cents_per_kwh"
    lines += [f"# TYPE {billed} gauge"] + [f"{billed}{{{labels}}} {sum(v) / 12!r} {hour:.0f}"
                                          for hour, v in sorted(hours.items()) if len(v) == 12]
    return write_blocks(data_dir, "\n".join(lines) + "\n" + extra + "# EOF\n", max_block_duration="240h",
                        timeout=60)


def price_backfill(data_dir: Path | None, base_url: str, *, days: int, instance: str, until: float | None = None,
                   timeout: float = 120, import_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m exporters.price_backfill` (the product's tool) from the ComEd API at `base_url` (the
    simulator) into `data_dir`, or into VictoriaMetrics at `import_url`; raises with its log when it
    fails, returns the finished process."""
    command = [sys.executable, "-m", "exporters.price_backfill", "--days", str(days), "--instance", instance]
    command += ["--import-url", import_url] if import_url else ["--data-dir", str(data_dir)]
    if until is not None:
        command += ["--until", str(until)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            env=clean_env(COMED_BASE_URL=base_url))
    if result.returncode != 0:
        raise RuntimeError(f"price-backfill failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result
