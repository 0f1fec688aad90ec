"""Test support shared by the tests (`tests/`) and the benchmarks (`benchmarks/`): starting the real
processes, talking to them, reading what they expose, and the scenarios both measure against.

One copy of each helper, so a test and a benchmark that start "the same stack" really do. Not part
of the product: it is importable from the repository root (as `benchmarks` is), never installed.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
