"""Start, wait for and stop the suite's processes: our components, Prometheus and Alertmanager.

Used by `charging-suite up` and by the tests, which start the same real binaries on free loopback
ports (testkit.ports) with temporary data directories.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence


class StartupError(RuntimeError):
    """A process did not become ready; the message says which and where its log is."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05,
               what: str = "condition") -> None:
    """Poll `condition` until it holds; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except Exception:  # noqa: BLE001 - a failing probe just means "not yet"
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


PR_SET_PDEATHSIG = 1


def _prctl():
    """libc's prctl, looked up once in the parent (a child between fork and exec only calls it)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl() if sys.platform.startswith("linux") else None


def die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM when the process that started it dies, however it dies (SIGKILL,
    a crash, a closed terminal), so no component is left holding its port. Linux only (elsewhere a no-op)."""
    def preexec() -> None:
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:   # the parent died before prctl took effect
            os._exit(1)
    return preexec


def listener(host: str, port: int) -> tuple[int, str] | None:
    """(pid, command line) of the process listening on host:port, when /proc shows it (Linux; other
    users' processes only as root); None otherwise."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:   # one fd closing meanwhile must not hide the rest of the process's
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return int(proc.name), command.strip()
            except OSError:
                continue
    return None


def find_binary(*names: str) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class ManagedProcess:
    """A child process with its output in a log file; `stop()` sends SIGTERM, then SIGKILL."""

    name: str
    command: Sequence[str]
    log_path: Path | None = None
    env: Mapping[str, str] | None = None
    ready_url: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> "ManagedProcess":
        output = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 - owned by the child
        try:
            # Its own session: a Ctrl-C or SIGHUP of the terminal reaches only the suite, which stops the
            # children in order; and the child dies with the suite should the suite die without doing so.
            self.process = subprocess.Popen(list(self.command), stdout=output or None, stderr=subprocess.STDOUT if output else None,
                                            env=dict(self.env) if self.env is not None else None,
                                            start_new_session=True, preexec_fn=die_with_parent(os.getpid()))
        finally:
            if output:
                output.close()
        return self

    def wait_ready(self, timeout: float = 30.0) -> "ManagedProcess":
        assert self.ready_url, "no readiness URL"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise StartupError(f"{self.name} exited with status {self.process.returncode} during start-up"
                                   + self._log_hint())
            if http_ok(self.ready_url):
                return self
            time.sleep(0.05)
        raise StartupError(f"{self.name} not ready at {self.ready_url} after {timeout:g}s" + self._log_hint())

    def _log_hint(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-5:]
        return f" (log {self.log_path}: " + " | ".join(tail) + ")"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        if not self.process:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def prometheus_process(config: Path, data_dir: Path, host: str, port: int, *, retention: str = "40d",
                       log_path: Path | None = None, extra: Sequence[str] = ()) -> ManagedProcess:
    binary = find_binary("prometheus")
    if not binary:
        raise StartupError("prometheus not found; install it with: apt-get install -y prometheus")
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
               f"--web.listen-address={host}:{port}", f"--storage.tsdb.retention.time={retention}", *extra]
    return ManagedProcess("prometheus", command, log_path, ready_url=f"http://{host}:{port}/-/ready")


def alertmanager_process(config: Path, data_dir: Path, host: str, port: int, *,
                         log_path: Path | None = None) -> ManagedProcess:
    binary = find_binary("prometheus-alertmanager", "alertmanager")
    if not binary:
        raise StartupError("alertmanager not found; install it with: apt-get install -y prometheus-alertmanager")
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [binary, f"--config.file={config}", f"--storage.path={data_dir}",
               f"--web.listen-address={host}:{port}", "--cluster.listen-address="]  # no gossip port on 0.0.0.0
    return ManagedProcess("alertmanager", command, log_path, ready_url=f"http://{host}:{port}/-/ready")


def component_process(name: str, module: str, args: Sequence[str], *, log_path: Path | None = None,
                      env: Mapping[str, str] | None = None, ready_url: str | None = None) -> ManagedProcess:
    """One of our own entry points, run with this interpreter so no PATH or venv activation is needed."""
    merged = {**os.environ, **(env or {})}
    return ManagedProcess(name, [sys.executable, "-m", module, *args], log_path, merged, ready_url)


def _victoria_binary(name: str) -> str:
    binary = find_binary(name)
    if not binary:
        raise StartupError(f"{name} not found; install it with: apt-get install -y victoria-metrics")
    return binary


def victoria_metrics_process(data_dir: Path, host: str, port: int, *, retention: str = "40d",
                             log_path: Path | None = None, extra: Sequence[str] = ()) -> ManagedProcess:
    """Single-node VictoriaMetrics as the suite needs it:
    - -dedup.minScrapeInterval=1ms drops samples repeating a series' timestamp: the price exporter stamps
      each price with its interval's end, so every scrape until the next price repeats it (Prometheus
      drops those itself), and backfilled history overlaps what was scraped;
    - -search.latencyOffset=1s: the session store reads the newest samples (the default 30 s hides them);
    - -search.cacheTimestampOffset=2h: the billed price of an hour arrives stamped with the hour's end, up to
      an hour old; with the default 5 minutes every such scrape would reset the query cache (and log it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [_victoria_binary("victoria-metrics"), f"-storageDataPath={data_dir}", f"-httpListenAddr={host}:{port}",
               f"-retentionPeriod={retention}", "-dedup.minScrapeInterval=1ms", "-search.latencyOffset=1s",
               "-search.cacheTimestampOffset=2h",
               "-loggerLevel=WARN", *extra]
    return ManagedProcess("victoria-metrics", command, log_path, ready_url=f"http://{host}:{port}/health")


def vmagent_process(config: Path, data_dir: Path, host: str, port: int, remote_write: str, *,
                    log_path: Path | None = None) -> ManagedProcess:
    """vmagent scraping `config` (a scrape-only prometheus.yml) into `remote_write` (a VictoriaMetrics URL);
    what it cannot send yet waits on disk in `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [_victoria_binary("vmagent"), f"-promscrape.config={config}", f"-httpListenAddr={host}:{port}",
               f"-remoteWrite.url={remote_write.rstrip('/')}/api/v1/write", f"-remoteWrite.tmpDataPath={data_dir}",
               "-promscrape.suppressDuplicateScrapeTargetErrors", "-loggerLevel=WARN"]
    return ManagedProcess("vmagent", command, log_path, ready_url=f"http://{host}:{port}/health")


def vmalert_process(rules: Sequence[str], datasource: str, notifiers: Sequence[str], host: str, port: int, *,
                    interval: float = 15, log_path: Path | None = None) -> ManagedProcess:
    """vmalert evaluating `rules` (Prometheus rule files) against `datasource`, writing recording rules
    and alert state back to it and sending alerts to Alertmanager."""
    url = datasource.rstrip("/")
    command = [_victoria_binary("vmalert"), *[f"-rule={r}" for r in rules], f"-datasource.url={url}",
               f"-remoteWrite.url={url}", f"-remoteRead.url={url}", *[f"-notifier.url={n}" for n in notifiers],
               f"-evaluationInterval={interval:g}s", f"-httpListenAddr={host}:{port}", "-remoteWrite.flushInterval=1s",
               f"-external.url=http://{host}:{port}", "-loggerLevel=WARN"]
    return ManagedProcess("vmalert", command, log_path, ready_url=f"http://{host}:{port}/health")
