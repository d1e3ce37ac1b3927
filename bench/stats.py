"""Summaries of latency samples and ratios between two runs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation between ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Iterable[float]) -> dict[str, Any]:
    """``n``, ``p50``, ``p90``, ``p99``, ``mean``, ``min``, ``max`` of durations given in seconds, in ms."""
    values = [s * 1000 for s in seconds]
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "mean": None, "min": None, "max": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p90": round(percentile(values, 90), 1),
        "p99": round(percentile(values, 99), 1),
        "mean": round(sum(values) / len(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` rounded to 2 places; None if either is missing or the divisor is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 2)


def ratios(capstan: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, float | None]:
    """Capstan / baseline for throughput and for the p50/p99 of every latency both phases report."""
    found: dict[str, float | None] = {
        "sequences_per_s": ratio(capstan.get("sequences_per_s"), baseline.get("sequences_per_s")),
    }
    for name in ("handoff_ms", "first_task_ms", "close_ms", "sequence_ms", "answer_post_ms"):
        ours, theirs = capstan.get(name), baseline.get(name)
        if not isinstance(ours, Mapping) or not isinstance(theirs, Mapping):
            continue
        stem = name.removesuffix("_ms")
        for q in ("p50", "p99"):
            found[f"{stem}_{q}"] = ratio(ours.get(q), theirs.get(q))
    return found
