"""What the figures were measured on: latency numbers mean little without the machine next to them."""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    ram_gib: float
    python: str
    prometheus_client: str
    aiohttp: str
    kernel: str

    def rows(self) -> list[tuple[str, str]]:
        return [("CPU", self.cpu), ("Cores", str(self.cores)), ("RAM", f"{self.ram_gib:.1f} GiB"),
                ("Python", self.python), ("prometheus-client", self.prometheus_client), ("aiohttp", self.aiohttp),
                ("Kernel", self.kernel)]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def describe() -> Machine:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)
    return Machine(_cpu_model(), cores, _ram_gib(), platform.python_version(), _version("prometheus-client"),
                   _version("aiohttp"), f"{platform.system()} {platform.release()}")
