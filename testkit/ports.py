"""Free loopback ports for the processes tests and benchmarks start, safe when several pytest workers
(`make test` runs two, pytest-xdist) or several test runs share the machine.

Binding port 0 and closing the socket, then letting a child bind the port, is a race: the port comes
from the kernel's ephemeral range, which every outgoing connection of every process also draws from,
so before the child binds it another worker's child, or any client socket, can take it ("address
already in use"). Prometheus and Alertmanager cannot bind port 0 and report the port, so a port has
to be chosen before they start.

Here each process claims a block of ports below the ephemeral range, where the kernel never hands
out a port by itself, by holding an exclusive lock on that block's file for as long as it lives (the
lock goes with the process, however it ends; children do not inherit it), and hands its block's
ports out in turn, skipping any that something already listens on or holds. Two claimants never
share a block, so two workers, or a test run and a benchmark run, never get the same port.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import tempfile
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
LOWEST = 20000        # below the registered ports most services use, above the usual fixed ones (9090, 9880...)
BLOCK = 500           # ports per claimant: a worker of the whole suite uses a few hundred, and reuses them in turn
LOCKS = Path(tempfile.gettempdir()) / f"testkit-ports-{os.getuid()}"   # per user: a lock file is its owner's


def ephemeral_range(table: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    """The kernel's range for ports it picks itself (port 0, outgoing connections); Linux's default elsewhere."""
    try:
        low, high = (int(part) for part in table.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def blocks(ephemeral: tuple[int, int]) -> list[range]:
    """The blocks of BLOCK ports outside the ephemeral range: below it, else above it."""
    low, high = ephemeral
    below = [range(start, start + BLOCK) for start in range(LOWEST, low - BLOCK + 1, BLOCK)]
    above = [range(start, start + BLOCK) for start in range(high + 1, 65536 - BLOCK + 1, BLOCK)]
    return below or above


def bindable(port: int, host: str = HOST) -> bool:
    """Nothing listens on, or holds, host:port now (as a server binding it would find)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class Allocator:
    """This process's block and the next port to try in it; claimed on the first `free_port()`."""

    def __init__(self, lock_dir: Path = LOCKS, ephemeral: tuple[int, int] | None = None) -> None:
        self.lock_dir = lock_dir
        self.ephemeral = ephemeral
        self.block: range | None = None
        self.lock: IO[bytes] | None = None     # held open: the lock lasts as long as this process
        self.next = 0

    def claim(self) -> range | None:
        """The first block no other process holds, locked for this process's lifetime; None if all are held."""
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        for block in blocks(self.ephemeral or ephemeral_range()):
            lock = open(self.lock_dir / f"{block.start}.lock", "ab")   # noqa: SIM115 - held until exit
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                lock.close()
                if error.errno in (errno.EAGAIN, errno.EACCES):
                    continue
                raise
            self.block, self.lock = block, lock
            return block
        return None

    def free_port(self, host: str = HOST) -> int:
        """A port of this process's block that nothing holds now, never the same one twice in a row of BLOCK."""
        if self.block is None and self.claim() is None:
            return kernel_port(host)   # every block held (dozens of runs at once): the old, racy way
        assert self.block is not None
        for _ in range(len(self.block)):
            port = self.block[self.next]
            self.next = (self.next + 1) % len(self.block)
            if bindable(port, host):
                return port
        raise RuntimeError(f"no free port in {self.block.start}-{self.block.stop - 1}: every one is in use")


def kernel_port(host: str = HOST) -> int:
    """A port the kernel picks (bind port 0): free now, but anyone may take it before it is used."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


_ALLOCATOR = Allocator()


def _forget_in_child() -> None:
    """A forked child shares its parent's lock: it claims a block of its own if it ever needs a port."""
    global _ALLOCATOR
    _ALLOCATOR = Allocator()


os.register_at_fork(after_in_child=_forget_in_child)


def free_port(host: str = HOST) -> int:
    """A loopback port for a process about to start: free now, and handed to no other worker or run."""
    return _ALLOCATOR.free_port(host)
