"""The quality gate both phases of :mod:`bench.evaluations` score: an SLO, SLI values, previous results.

Everything is deterministic for a given objective count and seed, so that the in-process scoring
and the end-to-end run score the same kind of gate. The SLO is a realistic mix (Keptn users ran
about 90 SLIs per gate): absolute and relative criteria, AND and OR of criteria, warning criteria,
weights, a few key SLIs and a few informational objectives, compared with ``several_results``.
"""

from __future__ import annotations

import random
from typing import Any

__all__ = [
    "AGGREGATES",
    "metric",
    "previous_evaluation_data",
    "slo_yaml",
    "sli_values",
]

AGGREGATES = ("avg", "p95")
"""The ``aggregate_function`` variants the scoring phase measures."""

_KEY_EVERY = 25
"""Every 25th objective (from the 8th) is a key SLI: 4 of 100."""


def metric(index: int) -> str:
    """The SLI name of objective ``index``."""
    return f"sli_{index:03d}"


def _kind(index: int) -> int:
    return index % 10


def _base(index: int) -> float:
    """The typical value of an SLI: a small error count for kind 7, a latency-like value otherwise."""
    if _kind(index) == 7:
        return 1.0 + index % 3
    return 50.0 + (index * 37) % 400


def _objective(index: int) -> list[str]:
    name = metric(index)
    kind = _kind(index)
    lines = [f"  - sli: {name}"]
    if kind in (0, 1, 2):  # latency: absolute AND relative, absolute warning
        lines += [
            f"    displayName: {name} p95",
            '    pass: [{criteria: ["<=+10%", "<600"]}]',
            '    warning: [{criteria: ["<=800"]}]',
            f"    weight: {1 + kind % 2}",
        ]
    elif kind in (3, 4):  # relative only, relative warning
        lines += ['    pass: [{criteria: ["<=+10%"]}]', '    warning: [{criteria: ["<=+20%"]}]']
    elif kind == 5:  # throughput: must not drop
        lines += ['    pass: [{criteria: [">=-5%"]}]', '    warning: [{criteria: [">=-10%"]}]']
    elif kind == 6:  # OR of two sets
        lines += ['    pass: [{criteria: ["<100"]}, {criteria: ["<=+5%"]}]']
    elif kind == 7:  # error count, sometimes a key SLI
        lines += ['    pass: [{criteria: ["<5"]}]']
        if index % _KEY_EVERY == 7:
            lines += ["    key_sli: true"]
    elif kind == 9:  # heavier absolute objective
        lines += [
            '    pass: [{criteria: ["<=1000"]}]',
            '    warning: [{criteria: ["<=1500"]}]',
            "    weight: 3",
        ]
    # kind 8: informational (no pass criteria)
    return lines


def slo_yaml(objectives: int, previous: int, aggregate: str = "avg") -> str:
    """An ``slo.yaml`` with ``objectives`` objectives comparing with ``previous`` earlier results.

    Args:
        objectives: how many objectives (10 % informational, 4 % key SLIs).
        previous: ``number_of_comparison_results``.
        aggregate: ``aggregate_function`` (``avg`` or ``p95``).
    """
    lines = [
        'spec_version: "1.0"',
        "filter: {handler: ItemsController}",
        "comparison:",
        "  compare_with: several_results",
        "  include_result_with_score: all",
        f"  number_of_comparison_results: {previous}",
        f"  aggregate_function: {aggregate}",
        "objectives:",
    ]
    for index in range(objectives):
        lines += _objective(index)
    lines += ['total_score: {pass: "90%", warning: "75%"}']
    return "\n".join(lines) + "\n"


def sli_values(objectives: int, seed: int) -> list[dict[str, Any]]:
    """The ``indicatorValues`` a provider answers: each SLI within -5 % .. +8 % of its typical value."""
    rng = random.Random(seed)
    return [
        {
            "metric": metric(i),
            "value": round(_base(i) * (1 + rng.uniform(-0.05, 0.08)), 3),
            "success": True,
            "message": "",
        }
        for i in range(objectives)
    ]


def previous_evaluation_data(
    scope: dict[str, str], objectives: int, seed: int, *, result: str = "pass"
) -> dict[str, Any]:
    """``data`` of an earlier ``evaluation.finished``: one indicator result per objective.

    Its values are within ±3 % of each SLI's typical value; the shape is lighthouse's (targets
    and comparison values left out where they do not matter to a later comparison).

    Args:
        scope: ``project``, ``stage`` and ``service``.
        objectives: how many indicator results.
        seed: varies the values from one previous evaluation to the next.
        result: the overall result.
    """
    rng = random.Random(seed)
    results = []
    for i in range(objectives):
        value = round(_base(i) * (1 + rng.uniform(-0.03, 0.03)), 3)
        informational = _kind(i) == 8
        results.append(
            {
                "score": 0 if informational else 1,
                "value": {
                    "metric": metric(i),
                    "value": value,
                    "comparedValue": 0,
                    "success": True,
                    "message": "",
                },
                "displayName": "",
                "passTargets": None,
                "warningTargets": None,
                "keySli": _kind(i) == 7 and i % _KEY_EVERY == 7,
                "status": "info" if informational else "pass",
            }
        )
    return {
        **scope,
        "result": result,
        "status": "succeeded",
        "message": "",
        "evaluation": {
            "timeStart": "2026-01-01T00:00:00.000Z",
            "timeEnd": "2026-01-01T00:05:00.000Z",
            "result": result,
            "score": 100,
            "indicatorResults": results,
            "comparedEvents": None,
            "sloFileContent": "",
        },
    }
