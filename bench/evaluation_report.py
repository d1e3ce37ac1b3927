"""What the end-to-end phase of :mod:`bench.evaluations` reads back and reports.

When lighthouse's ``evaluation.finished`` and the sequence's end were stored (PostgreSQL's
``received_at``) and what lighthouse answered; the latency summaries; the check that every
evaluation was scored against every objective and every previous evaluation; and, for a sample,
the context workflow's history broken down into the lighthouse's steps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from temporalio.client import Client

from bench.history import History, delta, history_counts, load_history, segment_table
from bench.recorder import Recorder
from bench.stack import Stack
from bench.stats import summary_ms
from workflows.context_models import context_workflow_id
from workflows.queue_lock_models import GRANTED_SIGNAL

STAGE = "dev"
TASK = "get-sli"
LIGHTHOUSE = "lighthouse-service"
EVALUATION_FINISHED = "sh.keptn.event.evaluation.finished"
EVALUATION_STARTED = "sh.keptn.event.evaluation.started"
TASK_TRIGGERED = "sh.keptn.event.evaluation.triggered"
GET_SLI_TRIGGERED = "sh.keptn.event.get-sli.triggered"
SEQUENCE_FINISHED = f"sh.keptn.event.{STAGE}.evaluation.finished"
RESULTS = ("pass", "warning", "fail")


@dataclass
class Run:
    """What the phase records beyond :class:`bench.recorder.Recorder` (keyed by Keptn context)."""

    recorder: Recorder = field(default_factory=lambda: Recorder((TASK,)))
    service: dict[str, str] = field(default_factory=dict)
    evaluation_seen: dict[str, float] = field(default_factory=dict)
    """When the observer received lighthouse's ``evaluation.finished``."""
    free: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    """Services with no evaluation in flight."""
    indicators_asked: dict[str, int] = field(default_factory=dict)
    """How many indicators each ``get-sli.triggered`` asked for."""


@dataclass
class Stored:
    """What PostgreSQL holds about one evaluation: when its events were stored, and lighthouse's answer."""

    evaluation_at: float | None = None
    sequence_at: float | None = None
    evaluation: dict[str, Any] | None = None


async def stored_events(stack: Stack, project: str) -> dict[str, Stored]:
    """Lighthouse's ``evaluation.finished`` and the sequence ends of the project, by Keptn context."""
    connection = await asyncpg.connect(stack.database_url())
    try:
        rows = await connection.fetch(
            "SELECT type, source, shkeptncontext, received_at, event FROM events"
            " WHERE project = $1 AND type = ANY($2::text[])",
            project,
            [EVALUATION_FINISHED, SEQUENCE_FINISHED],
        )
    finally:
        await connection.close()
    found: dict[str, Stored] = {}
    for row in rows:
        entry = found.setdefault(row["shkeptncontext"], Stored())
        at = row["received_at"].timestamp()
        if row["type"] == SEQUENCE_FINISHED:
            entry.sequence_at = at
        elif row["source"] == LIGHTHOUSE:
            entry.evaluation_at = at
            entry.evaluation = json.loads(row["event"])
    return found


def metrics(
    run: Run, stored: dict[str, Stored], keys: list[str], *, count: int, failed: int, wall_s: float
) -> dict[str, Any]:
    """Throughput and latency summaries (ms) of the measured evaluations ``keys``."""
    rec = run.recorder
    accepted = rec.trigger_accepted

    def since_trigger(times: dict[str, float]) -> list[float]:
        return [times[k] - accepted[k] for k in keys if k in times]

    evaluation_at = {k: s.evaluation_at for k, s in stored.items() if s.evaluation_at is not None}
    sequence_at = {k: s.sequence_at for k, s in stored.items() if s.sequence_at is not None}
    arrived = {k: rec.arrived[(k, TASK)] for k in keys if (k, TASK) in rec.arrived}
    returned = {k: rec.answer_returned[(k, TASK)] for k in keys if (k, TASK) in rec.answer_returned}
    answer_post = [returned[k] - rec.answer_sent[(k, TASK)] for k in returned if (k, TASK) in rec.answer_sent]
    after_sli = [evaluation_at[k] - returned[k] for k in keys if k in evaluation_at and k in returned]
    return {
        "evaluations_triggered": count,
        "evaluations_completed": len(keys),
        "evaluations_failed": failed,
        "wall_s": round(wall_s, 3),
        "evaluations_per_s": round(len(keys) / wall_s, 3) if wall_s > 0 else None,
        "evaluation_ms": summary_ms(since_trigger(evaluation_at)),
        "evaluation_seen_ms": summary_ms(since_trigger(run.evaluation_seen)),
        "sequence_ms": summary_ms(since_trigger(sequence_at)),
        "get_sli_ms": summary_ms(since_trigger(arrived)),
        "sli_answer_post_ms": summary_ms(answer_post),
        "sli_to_evaluation_ms": summary_ms(after_sli),
    }


def check(
    run: Run, stored: dict[str, Stored], keys: list[str], *, objectives: int, previous: int
) -> dict[str, Any]:
    """Every measured evaluation asked for every SLI and was scored against ``previous`` results."""
    problems: list[str] = []
    results: dict[str, int] = {}
    valid = 0
    for key in keys:
        event = stored.get(key, Stored()).evaluation
        if event is None:
            problems.append(f"{key}: no evaluation.finished from lighthouse stored")
            continue
        data = event.get("data") or {}
        evaluation = data.get("evaluation") or {}
        result = data.get("result")
        results[str(result)] = results.get(str(result), 0) + 1
        found = {
            "result": result if result in RESULTS else None,
            "status": data.get("status"),
            "indicators_asked": run.indicators_asked.get(key),
            "indicatorResults": len(evaluation.get("indicatorResults") or []),
            "comparedEvents": len(evaluation.get("comparedEvents") or []),
        }
        expected = {
            "result": result,
            "status": "succeeded",
            "indicators_asked": objectives,
            "indicatorResults": objectives,
            "comparedEvents": previous,
        }
        if found == expected:
            valid += 1
        else:
            wrong = {name: found[name] for name in found if found[name] != expected[name]}
            problems.append(f"{key}: {wrong} ({data.get('message', '')[:200]})")
    return {
        "evaluations_checked": len(keys),
        "evaluations_valid": valid,
        "results": dict(sorted(results.items())),
        "problems": problems[:10],
    }


def _event_type_is(event_type: str) -> Callable[[Any], bool]:
    """Matches an activity whose input carries an event of that type (``emit_event``, ``push_event``)."""

    def match(value: Any) -> bool:
        event = value.get("event") if isinstance(value, dict) else None
        return isinstance(event, dict) and event.get("type") == event_type

    return match


def _any(_: Any) -> bool:
    return True


def _profile_rows(
    history: History, run: Run, key: str, stored: Stored
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Milestones as offsets from the trigger's 200, and the durations of the lighthouse's steps."""
    rec = run.recorder
    shipyard = history.activity("load_shipyard", _any)
    granted = history.signal(GRANTED_SIGNAL, _any)
    task = history.activity("emit_event", _event_type_is(TASK_TRIGGERED))
    started = history.activity("emit_event", _event_type_is(EVALUATION_STARTED))
    prepare = history.activity("prepare_evaluation", _any)
    get_sli = history.activity("emit_event", _event_type_is(GET_SLI_TRIGGERED))
    push = history.activity("push_event", _event_type_is(GET_SLI_TRIGGERED))
    score = history.activity("score_evaluation", _any)
    finished = history.activity("emit_event", _event_type_is(EVALUATION_FINISHED))
    returned = rec.answer_returned.get((key, TASK))
    milestones = {
        "workflow_started": history.started,
        "load_shipyard_completed": shipyard.completed if shipyard else None,
        "lock_granted": granted.time if granted else None,
        "task_triggered_stored": task.completed if task else None,
        "evaluation_started_stored": started.completed if started else None,
        "prepare_completed": prepare.completed if prepare else None,
        "get_sli_stored": get_sli.completed if get_sli else None,
        "get_sli_push_started": push.started if push else None,
        "get_sli_received": rec.arrived.get((key, TASK)),
        "sli_answer_returned": returned,
        "score_scheduled": score.scheduled if score else None,
        "score_completed": score.completed if score else None,
        "evaluation_stored": stored.evaluation_at,
        "sequence_stored": stored.sequence_at,
    }
    accepted = rec.trigger_accepted.get(key)
    timeline = {name: delta(accepted, at) for name, at in milestones.items()}
    segments: dict[str, float | None] = {
        "prepare_run": delta(prepare.started, prepare.completed) if prepare else None,
        "emit_get_sli_run": delta(get_sli.started, get_sli.completed) if get_sli else None,
        "answer_to_score_scheduled": delta(returned, score.scheduled) if score else None,
        "score_queue": delta(score.scheduled, score.started) if score else None,
        "score_run": delta(score.started, score.completed) if score else None,
        "score_to_emit_scheduled": delta(score.completed, finished.scheduled) if score and finished else None,
        "emit_finished_run": delta(finished.started, finished.completed) if finished else None,
        "evaluation_to_sequence_stored": delta(stored.evaluation_at, stored.sequence_at),
    }
    return timeline, segments


async def profile(
    client: Client, project: str, run: Run, stored: dict[str, Stored], keys: list[str]
) -> dict[str, Any]:
    """Break the context workflow histories of ``keys`` down into the lighthouse's steps."""
    timelines: list[dict[str, float | None]] = []
    segments: list[dict[str, float | None]] = []
    histories = []
    sizes = []
    for key in keys:
        workflow_id = context_workflow_id(project, key)
        history = await load_history(client, workflow_id)
        histories.append(history)
        fetched = await client.get_workflow_handle(workflow_id).fetch_history()
        sizes.append(sum(event.ByteSize() for event in fetched.events))
        timeline, segment = _profile_rows(history, run, key, stored.get(key, Stored()))
        timelines.append(timeline)
        segments.append(segment)
    return {
        "evaluations_sampled": len(keys),
        "timeline_ms": segment_table(timelines),
        "segments_ms": segment_table(segments),
        "per_evaluation": history_counts(histories)
        | ({"history_kb": round(sum(sizes) / len(sizes) / 1024, 1)} if sizes else {}),
    }
