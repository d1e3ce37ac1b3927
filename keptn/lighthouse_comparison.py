"""Which previous evaluations lighthouse compared with, and how it aggregated them (spec §4.5)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from keptn.slo import SLO

__all__ = [
    "ComparisonRules",
    "aggregate",
    "apply_comparison_rules",
    "comparison_rules",
    "percentile",
    "previous_values",
    "previous_values_by_metric",
]

_PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95}


class ComparisonRules(BaseModel):
    """Which previous evaluations an SLO compares with (spec §4.5)."""

    model_config = ConfigDict(frozen=True)

    count: int
    """At most this many, newest first."""
    results: tuple[str, ...] | None
    """Only evaluations whose overall ``result`` is one of these; None means any."""


def comparison_rules(slo: SLO) -> ComparisonRules:
    """The previous evaluations an SLO asks for, as lighthouse queried them.

    ``single_result`` → 1; ``several_results`` → ``number_of_comparison_results``; any other
    ``compare_with`` (also empty) → 3. ``include_result_with_score`` (case-insensitive):
    ``pass`` → pass only; ``pass_or_warn`` → pass or warning; anything else → all.

    Args:
        slo: the parsed SLO.

    Returns:
        The rules. A negative count is taken as its absolute value (the datastore read a
        negative limit that way).
    """
    comparison = slo.comparison
    count = 3
    if comparison.compare_with == "single_result":
        count = 1
    elif comparison.compare_with == "several_results":
        count = abs(comparison.number_of_comparison_results)
    include = comparison.include_result_with_score.lower()
    results: tuple[str, ...] | None = None
    if include == "pass":
        results = ("pass",)
    elif include == "pass_or_warn":
        results = ("pass", "warning")
    return ComparisonRules(count=count, results=results)


def apply_comparison_rules(rules: ComparisonRules, previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Choose the previous evaluations to compare with, as the datastore query did.

    Args:
        rules: from :func:`comparison_rules`.
        previous: ``evaluation.finished`` data objects of the same project/stage/service, newest
            first, invalidated ones already removed; each may carry the event's ``"id"``.

    Returns:
        Those whose ``result`` the rules admit, at most ``rules.count``, newest first.
    """
    chosen = [
        entry
        for entry in previous
        if isinstance(entry, dict) and (rules.results is None or entry.get("result") in rules.results)
    ]
    return chosen[: rules.count]


def percentile(values: Sequence[float], p: float) -> float:
    """Keptn's ``calculatePercentile``: the value at rank ``p·(n+1)``, interpolated.

    Sorted ascending; rank below 1 → the smallest value; rank of n or more → the largest;
    otherwise ``lower + (rank − ⌊rank⌋)·(upper − lower)`` with ``lower = v[⌊rank⌋−1]``,
    ``upper = v[⌊rank⌋]``. E.g. for 0..10, p90 is 9.8 and p95 is 10.

    Args:
        values: the values (any order).
        p: the percentile as a fraction, e.g. 0.9.

    Returns:
        The percentile; 0 for no values.
    """
    if not values:
        return 0.0
    # Go's sort.Float64Slice puts NaN first; Python's sort would leave them anywhere.
    ordered = sorted((float(value) for value in values), key=lambda value: (not math.isnan(value), value))
    size = len(ordered)
    rank = p * float(size + 1)
    if rank < 1.0:
        return ordered[0]
    if rank >= float(size):
        return ordered[-1]
    lower, upper = ordered[int(rank) - 1], ordered[int(rank)]
    return lower + (rank - math.floor(rank)) * (upper - lower)


def aggregate(values: Sequence[float], function: str) -> float:
    """Aggregate previous values with an SLO's ``aggregate_function``.

    Args:
        values: the previous values.
        function: ``avg``, ``p50``, ``p90`` or ``p95``.

    Returns:
        The aggregate; 0 for no values and for an unknown function (as in Keptn).
    """
    if function == "avg":
        if not values:
            return 0.0
        total = 0.0
        for value in values:  # in order, as Go adds; Python >= 3.12's sum() compensates rounding
            total += value
        return total / len(values)
    if function in _PERCENTILES:
        return percentile(values, _PERCENTILES[function])
    return 0.0


def previous_values(previous: Sequence[dict[str, Any]], sli: str) -> list[float]:
    """The successful values of an SLI in previous evaluations, as lighthouse compared with them.

    Every indicator result of every given evaluation counts, whatever its own status (only the
    overall result chose the evaluations, #2388), except values with ``success: false`` (#1263).
    Malformed entries are skipped. To look up many SLIs, build :func:`previous_values_by_metric`
    once instead (one scan of ``previous`` rather than one per SLI).

    Args:
        previous: ``evaluation.finished`` data objects.
        sli: the SLI name.

    Returns:
        The values, in the order given.
    """
    return previous_values_by_metric(previous).get(sli, [])


def previous_values_by_metric(previous: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """:func:`previous_values` of every SLI at once: one scan of the previous evaluations.

    Args:
        previous: ``evaluation.finished`` data objects.

    Returns:
        SLI name → its successful values, in the order of the evaluations and then of their
        indicator results (a metric listed twice in one evaluation contributes both values).
        SLIs without a successful value are absent.
    """
    found: dict[str, list[float]] = {}
    for entry in previous:
        evaluation = entry.get("evaluation") if isinstance(entry, dict) else None
        indicator_results = evaluation.get("indicatorResults") if isinstance(evaluation, dict) else None
        for indicator in indicator_results if isinstance(indicator_results, list) else []:
            value = indicator.get("value") if isinstance(indicator, dict) else None
            if not isinstance(value, dict) or value.get("success") is not True:
                continue
            sli = value.get("metric")
            if not isinstance(sli, str):
                continue  # an SLI name is a string: nothing else ever matched one
            number = value.get("value", 0)
            if isinstance(number, int | float) and not isinstance(number, bool):
                found.setdefault(sli, []).append(float(number))
    return found
