"""A rolling history of 5-minute prices and its statistics, computed with numpy.

The history is an immutable pair of arrays (interval end, cents) replaced on every merge, so a
render in another thread always sees a consistent one. Percentiles use linear interpolation
between closest ranks, the same rule as PromQL's quantile_over_time, so both agree on the same data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


@dataclass(frozen=True)
class PriceHistory:
    ends: np.ndarray     # interval ends, Unix seconds, ascending, unique
    cents: np.ndarray

    @classmethod
    def empty(cls) -> "PriceHistory":
        return cls(np.empty(0), np.empty(0))

    def merged(self, points: Iterable[tuple[float, float]], keep_after: float) -> "PriceHistory":
        """Union with new (end, cents) points (new values win), dropping prices that ended before `keep_after`."""
        incoming = np.array(list(points), dtype=float).reshape(-1, 2)
        ends = np.concatenate([incoming[:, 0], self.ends])
        cents = np.concatenate([incoming[:, 1], self.cents])
        ends, first = np.unique(ends, return_index=True)  # first occurrence = the incoming value
        cents = cents[first]
        keep = ends >= keep_after
        return PriceHistory(ends[keep], cents[keep])

    def window(self, start: float, end: float) -> np.ndarray:
        mask = (self.ends > start) & (self.ends <= end)
        return self.cents[mask]

    def __len__(self) -> int:
        return int(self.ends.size)


@dataclass(frozen=True)
class PriceStats:
    count: int
    mean: float
    median: float
    stddev: float
    quantiles: dict[float, float]


def statistics(cents: np.ndarray) -> PriceStats | None:
    if cents.size == 0:
        return None
    values = np.quantile(cents, QUANTILES, method="linear")
    return PriceStats(int(cents.size), float(np.mean(cents)), float(np.median(cents)), float(np.std(cents)),
                      {q: float(v) for q, v in zip(QUANTILES, values)})


def percentile_rank(cents: np.ndarray, price: float) -> float | None:
    """Percent of the window's prices below `price`, counting equal prices half (the 'mean' definition)."""
    if cents.size == 0:
        return None
    below = np.count_nonzero(cents < price)
    equal = np.count_nonzero(cents == price)
    return float(100.0 * (below + 0.5 * equal) / cents.size)
