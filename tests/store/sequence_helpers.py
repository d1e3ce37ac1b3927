"""Builders of sequence execution pictures for the store, activity and API tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from store.sequences import ExecutionRecord
from tests.store.factories import BASE_TIME


def execution(
    triggered_id: str = "t-dev",
    *,
    context: str = "ctx-1",
    stage: str = "dev",
    state: str = "started",
    seconds: float = 0,
    updated: float | None = None,
    sequence: str = "delivery",
    service: str = "carts",
    project: str = "sockshop",
    tasks: tuple[str, ...] = ("deployment", "evaluation", "release"),
    previous: tuple[tuple[str, str], ...] = (),
    current: str | None = None,
    **extra: Any,
) -> ExecutionRecord:
    """A picture; ``previous`` holds (task, triggered id) pairs of finished tasks (all passed)."""
    return ExecutionRecord(
        triggered_id=triggered_id,
        keptn_context=context,
        project=project,
        stage=stage,
        service=service,
        sequence=sequence,
        state=state,
        triggered_at=BASE_TIME + timedelta(seconds=seconds),
        updated_at=BASE_TIME + timedelta(seconds=seconds if updated is None else updated),
        tasks=list(tasks),
        previous_tasks=[
            {"name": name, "triggeredID": tid, "result": "pass", "status": "succeeded"}
            for name, tid in previous
        ],
        current_task={"name": "x", "triggeredID": current, "events": []} if current else None,
        **extra,
    )
