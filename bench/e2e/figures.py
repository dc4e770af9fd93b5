"""Order statistics for benchmark samples: median and nearest-rank percentiles.

Percentiles use the nearest-rank method (no interpolation), so p99 of 100 samples is the
99th smallest, and p99 of fewer than 100 samples is the maximum.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import median as _median

MIB = 1 << 20
GIB = 1 << 30


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    if not values:
        raise ValueError("median of no samples")
    return float(_median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile ``pct`` (0 < pct <= 100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return float(ordered[rank - 1])


def mib_s(nbytes: int, seconds: float) -> float:
    """Throughput in MiB/s."""
    return nbytes / MIB / seconds if seconds > 0 else float("inf")
