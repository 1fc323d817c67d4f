"""Percentiles and rates computed from measured values."""

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """Return the pct-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def steady_rate(finish_times: Sequence[float], cycle_s: float) -> float:
    """Return completions per second over whole latency cycles from the first completion.

    ``finish_times`` are the completion times of all calls and ``cycle_s`` is one call's
    latency. Calls finish in waves one cycle apart, so a window of whole cycles counts
    each wave once. The tail after the last whole cycle, where slots drain, is left out.
    A run shorter than one cycle uses its whole span.
    """
    ordered = sorted(finish_times)
    first, last = ordered[0], ordered[-1]
    cycles = int((last - first) // cycle_s)
    if cycles == 0:
        span = last - first
        return (len(ordered) - 1) / span if span > 0 else 0.0
    end = first + cycles * cycle_s
    return sum(1 for t in ordered if t < end) / (cycles * cycle_s)
