"""Benchmarks: `python -m benchmarks` (see benchmarks/README.md); not part of `make test`."""
