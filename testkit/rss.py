"""Resident memory (VmRSS) of running processes, read from /proc: the soak test's growth bound and the
memory benchmark's figures."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Mapping


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process (VmRSS in /proc/<pid>/status), MiB; None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


class RssSampler:
    """Samples VmRSS of named processes every `interval` s in a thread; `mark()` starts a new phase."""

    def __init__(self, pids: Mapping[str, int], interval: float = 0.25) -> None:
        self.pids = dict(pids)
        self.interval = interval
        self.phase = "start"
        self.samples: dict[str, dict[str, list[float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        phase = self.phase
        for name, pid in self.pids.items():
            value = rss_mib(pid)
            if value is not None:
                self.samples.setdefault(phase, {}).setdefault(name, []).append(value)

    def mark(self, phase: str) -> None:
        self.sample()
        self.phase = phase
        self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()

    def of(self, phase: str, name: str) -> list[float]:
        return self.samples.get(phase, {}).get(name, [])
