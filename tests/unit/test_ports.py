"""testkit.ports: two claimants (two pytest workers, or a test run and a benchmark) never get the same
port, none is in the kernel's ephemeral range, and a port something holds is skipped."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from testkit import ROOT
from testkit.ports import BLOCK, Allocator, blocks

EPHEMERAL = (32768, 60999)
# The allocators under test claim blocks above 61000, which the suite's own (below the ephemeral range)
# never use: a port they hold for a moment is never one another worker is about to start a process on.
APART = (1024, 60999)


def test_blocks_lie_outside_the_ephemeral_range_and_fall_back_above_it() -> None:
    below = blocks(EPHEMERAL)
    assert below and all(b.stop <= EPHEMERAL[0] and len(b) == BLOCK for b in below)
    above = blocks((1024, 40000))
    assert above and all(b.start > 40000 and b.stop <= 65536 for b in above)


def test_two_claimants_get_disjoint_blocks_and_a_block_cycles_before_repeating(tmp_path: Path) -> None:
    first, second = Allocator(tmp_path, APART), Allocator(tmp_path, APART)
    ours = [first.free_port() for _ in range(50)]
    theirs = [second.free_port() for _ in range(50)]
    assert first.block != second.block and not set(ours) & set(theirs)
    assert len(set(ours)) == 50 and all(port in first.block for port in ours)


def test_a_block_held_by_another_process_is_not_claimed(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from testkit.ports import Allocator; "
            f"a = Allocator(Path({str(tmp_path)!r}), {APART}); a.free_port(); "
            "print(a.block.start, flush=True); sys.stdin.read()")
    other = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        theirs = int(other.stdout.readline())
        ours = Allocator(tmp_path, APART)
        assert ours.free_port() not in range(theirs, theirs + BLOCK)
    finally:
        other.communicate("", timeout=10)
    after = Allocator(tmp_path, APART)                         # the lock went with the process
    assert after.claim() == blocks(APART)[0]


def test_a_port_something_listens_on_is_skipped(tmp_path: Path) -> None:
    allocator = Allocator(tmp_path, APART)
    port = allocator.free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        allocator.next = allocator.block.index(port)       # its turn again
        assert allocator.free_port() == port + 1
