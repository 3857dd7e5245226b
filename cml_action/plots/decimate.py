"""Fewer points, same picture: keep each pixel column's minimum and maximum.

A line plot a few hundred pixels wide cannot show a million points; drawing them all costs seconds. Taking
min and max per bucket of consecutive points keeps every spike and dip a reviewer would look for, in the
original order, so the drawn line is visually identical at the report's resolution.
"""

from __future__ import annotations

from typing import Any

BUCKETS = 2000  # pixel columns at the saved resolution, with margin


def min_max(y: Any, buckets: int = BUCKETS) -> Any:
    """Indices (sorted) of the points to keep from `y` (1-D float array): min and max of each bucket."""
    import numpy as np

    n = len(y)
    if n <= 2 * buckets:
        return np.arange(n)
    size = n // buckets
    usable = size * buckets
    values = np.where(np.isnan(y[:usable]), np.inf, y[:usable]).reshape(buckets, size)
    lows = values.argmin(axis=1)
    values = np.where(np.isinf(values), -np.inf, values)
    highs = values.argmax(axis=1)
    offsets = np.arange(buckets) * size
    keep = np.concatenate([offsets + lows, offsets + highs, np.arange(usable, n)])
    return np.unique(keep)
