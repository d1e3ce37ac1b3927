"""Prometheus metrics of the gateway and the worker (``/metrics``; docs/observability.md lists them).

Each process exposes the metrics it records, in the default registry (with the client library's
process and Python collectors): the gateway its HTTP requests, the events it ingested, the
sequences by state (read from the store on each scrape) and the duration of tasks integrations
answered; the worker the events it emitted, its pushes and the duration of tasks the built-in
services answered.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

import asyncpg
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from capstan.settings import Settings
from keptn.event_types import EventKind, SequenceEventType, TaskEventType, maybe_parse_event_type
from keptn.sequence import RESULT_RANK
from store.events import parse_event_time
from store.metrics import count_executions_by_state, event_time

__all__ = [
    "CONTENT_TYPE",
    "EVENTS_EMITTED",
    "EVENTS_INGESTED",
    "HTTP_REQUESTS",
    "PUSHES",
    "SEQUENCES",
    "TASK_DURATION",
    "event_kind",
    "metrics_authorized",
    "observe_task_finished",
    "refresh_sequences",
    "render",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST

_log = logging.getLogger(__name__)

HTTP_REQUESTS = Histogram(
    "capstan_http_request_duration_seconds",
    "Gateway HTTP requests by method, route template and status (the _count is the request count).",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EVENTS_INGESTED = Counter(
    "capstan_events_ingested",
    "Events accepted by the gateway (stored, or a retry of a stored one) by kind.",
    ["kind", "outcome"],
)
EVENTS_EMITTED = Counter(
    "capstan_events_emitted",
    "Events the worker stored on behalf of the control plane (task triggers, built-in services' answers).",
    ["kind"],
)
PUSHES = Counter(
    "capstan_push_deliveries",
    "Push delivery attempts to integrations by outcome (ok, unavailable: retried, rejected).",
    ["outcome"],
)
SEQUENCES = Gauge(
    "capstan_sequences",
    "Sequence executions in the store by state (read on each scrape).",
    ["state"],
)
TASK_DURATION = Histogram(
    "capstan_task_duration_seconds",
    "Time from a task's .triggered to each .finished answer, by task and result.",
    ["task", "result"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600),
)


def event_kind(event_type: str) -> str:
    """The label of an event type: ``task.finished``, ``sequence.triggered``, … or ``other``.

    Task and sequence names stay out of the label: they are user-defined and unbounded.
    """
    parsed = maybe_parse_event_type(event_type)
    if isinstance(parsed, TaskEventType):
        return f"task.{parsed.kind.value}"
    if isinstance(parsed, SequenceEventType):
        return f"sequence.{parsed.kind.value}"
    return "other"


def _result(data: Mapping[str, Any]) -> str:
    if data.get("status") == "errored":
        return "errored"
    result = data.get("result")
    return result if isinstance(result, str) and result in RESULT_RANK else "unknown"


async def observe_task_finished(db: asyncpg.Pool | asyncpg.Connection, event: Mapping[str, Any]) -> None:
    """Observe the task duration of a newly stored task ``.finished`` (other events are ignored).

    Never raises: a metric must not fail the request or activity that stored the event.

    Args:
        db: the store (the ``.triggered`` event's time is one primary-key lookup).
        event: the wire event just stored.
    """
    parsed = maybe_parse_event_type(str(event.get("type", "")))
    triggered_id = event.get("triggeredid")
    if not (isinstance(parsed, TaskEventType) and parsed.kind is EventKind.FINISHED and triggered_id):
        return
    try:
        triggered_at = await event_time(db, str(triggered_id))
        raw = event.get("time")
        finished_at = parse_event_time(raw) if isinstance(raw, str) else None
    except Exception as exc:  # a metric is not worth a failed request: log and move on
        _log.warning("task duration not observed: %r", exc)
        return
    if triggered_at is None or finished_at is None:
        return
    data = event.get("data")
    seconds = max((finished_at - triggered_at).total_seconds(), 0.0)
    TASK_DURATION.labels(parsed.task, _result(data if isinstance(data, dict) else {})).observe(seconds)


async def refresh_sequences(pool: asyncpg.Pool) -> None:
    """Read the sequences by state into :data:`SEQUENCES` (before rendering a scrape)."""
    for state, count in (await count_executions_by_state(pool)).items():
        SEQUENCES.labels(state).set(count)


def render() -> bytes:
    """The text exposition of every metric of this process."""
    return generate_latest(REGISTRY)


def metrics_authorized(settings: Settings, authorization: str | None) -> bool:
    """Whether a scrape may read ``/metrics``: always without ``metrics_token``, else by bearer token."""
    if not settings.metrics_token:  # unset or empty (compose passes "" when the variable is unset)
        return True
    expected = f"Bearer {settings.metrics_token.get_secret_value()}"
    return authorization is not None and hmac.compare_digest(authorization.encode(), expected.encode())
