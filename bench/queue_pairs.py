"""What both sides of the queue hand-over benchmark record per pair, and the metrics made of it.

A pair is a blocking sequence (key: its Keptn context, or its workflow id) and the waiting one
queued behind it. Times are this process's ``time.time()``, except ``blocker_stored``, which the
storing server wrote (PostgreSQL ``received_at`` of the blocker's sequence ``.finished``, or
Temporal's close time of the blocking workflow).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.stats import ratio, summary_ms


@dataclass
class PairTimes:
    """Times by sequence key."""

    arrived: dict[str, float] = field(default_factory=dict)
    """When the sequence's (first) task reached the integration."""
    answer_sent: dict[str, float] = field(default_factory=dict)
    answer_returned: dict[str, float] = field(default_factory=dict)
    """When the task's ``.finished`` POST (baseline: the ``finished`` signal call) returned."""
    answer_ids: dict[str, str] = field(default_factory=dict)
    blocker_stored: dict[str, float] = field(default_factory=dict)
    """When the blocking sequence's end was stored, by the storing server's clock."""
    waiter_of: dict[str, str] = field(default_factory=dict)
    """Blocking sequence → the one queued behind it."""
    service_of: dict[str, str] = field(default_factory=dict)
    """Blocking sequence → its service (Capstan only)."""


def handover_metrics(
    times: PairTimes, blockers: list[str], *, pairs: int, failed: int, wall_s: float
) -> dict[str, Any]:
    """Summaries of the hand-overs of the completed pairs (``blockers``), in ms."""
    from_answer, from_stored, answer_post = [], [], []
    for blocker in blockers:
        arrived = times.arrived.get(times.waiter_of[blocker])
        returned = times.answer_returned.get(blocker)
        stored = times.blocker_stored.get(blocker)
        if arrived is not None and returned is not None:
            from_answer.append(arrived - returned)
        if arrived is not None and stored is not None:
            from_stored.append(arrived - stored)
        if returned is not None and blocker in times.answer_sent:
            answer_post.append(returned - times.answer_sent[blocker])
    return {
        "pairs": pairs,
        "pairs_completed": len(blockers),
        "pairs_failed": failed,
        "wall_s": round(wall_s, 3),
        "handover_ms": summary_ms(from_answer),
        "handover_from_stored_ms": summary_ms(from_stored),
        "answer_post_ms": summary_ms(answer_post),
    }


def handover_ratios(capstan: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    """Capstan / baseline for p50 and p99 of both hand-over measures."""
    found: dict[str, float | None] = {}
    for name in ("handover_ms", "handover_from_stored_ms"):
        stem = name.removesuffix("_ms")
        for q in ("p50", "p99"):
            found[f"{stem}_{q}"] = ratio(capstan[name][q], baseline[name][q])
    return found
