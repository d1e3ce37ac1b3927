"""Accepting an event: Keptn's validation, stamping, the event store.

An event is answered with its Keptn context only once it is durably stored, so a client that got
an error may retry: the store is keyed by event id and a retry with the same id is accepted again
without being stored twice.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import structlog

from capstan.metrics import EVENTS_INGESTED, event_kind, observe_task_finished
from capstan.telemetry import context_from_traceparent
from keptn.errors import ConflictError, NotFoundError
from keptn.event_types import (
    MONITORING_CONFIGURE_EVENT_TYPE,
    EventKind,
    SequenceEventType,
    maybe_parse_event_type,
)
from keptn.events import IncomingEvent, KeptnEvent
from keptn.validation import stamp_event, validate_incoming_event
from store import events as event_store
from store import monitoring
from store import projects as project_store

log = structlog.get_logger(__name__)


def _new_id() -> str:
    return str(uuid.uuid4())


async def _check_sequence_scope(pool: asyncpg.Pool, event: KeptnEvent) -> None:
    """A sequence can only be triggered for a project and service that exist.

    Keptn accepted such a trigger and later finished it errored; Capstan says so at once, which
    is what a client scripting ``keptn trigger`` needs to see.
    """
    project = str(event.data.get("project", ""))
    service = str(event.data.get("service", ""))
    if await project_store.get_project(pool, project) is None:
        raise NotFoundError(f"project '{project}' not found (data.project)", field="data.project")
    if not await project_store.service_exists(pool, project, service):
        raise NotFoundError(
            f"service '{service}' not found in project '{project}' (data.service)", field="data.service"
        )


async def _check_monitoring_configure(pool: asyncpg.Pool, event: KeptnEvent) -> str:
    """The SLI provider a ``monitoring.configure`` names (validated already); its project must exist."""
    project = str(event.data.get("project", ""))
    if await project_store.get_project(pool, project) is None:
        raise NotFoundError(f"project '{project}' not found (data.project)", field="data.project")
    return str(event.data.get("type", "")).strip()


async def ingest_event(pool: asyncpg.Pool, incoming: IncomingEvent) -> KeptnEvent:
    """Validate, stamp and store an incoming event; return the event as stored.

    Raises:
        InvalidEventError: the event breaks Keptn's rules.
        NotFoundError: a sequence trigger names an unknown project or service.
        ConflictError: the id is already taken by a different event.
    """
    validate_incoming_event(incoming)
    if not incoming.shkeptncontext and (traced := context_from_traceparent(incoming.extensions)):
        # a new context started by a traced event continues the sender's trace (docs/observability.md)
        incoming = incoming.model_copy(update={"shkeptncontext": traced})
    event = stamp_event(incoming, now=datetime.now(UTC), new_id=_new_id)
    event_type = maybe_parse_event_type(event.type)
    if isinstance(event_type, SequenceEventType) and event_type.kind is EventKind.TRIGGERED:
        await _check_sequence_scope(pool, event)
    provider = (
        await _check_monitoring_configure(pool, event)
        if event.type == MONITORING_CONFIGURE_EVENT_TYPE
        else None
    )
    wire = event.to_wire()
    if await event_store.insert_event(pool, wire):
        log.info("event accepted", event_id=event.id, type=event.type, keptn_context=event.shkeptncontext)
        EVENTS_INGESTED.labels(event_kind(event.type), "stored").inc()
        await observe_task_finished(pool, wire)
        if provider is not None:
            await _configure_monitoring(pool, event, provider)
        return event
    existing = await event_store.get_event(pool, event.id)
    if existing is None or existing.get("type") != wire["type"] or existing.get("source") != wire["source"]:
        raise ConflictError(f"event id '{event.id}' is already used by another event", field="id")
    # A retry of an event we already have: answer as the first time, store nothing new.
    log.info("duplicate event ignored", event_id=event.id, type=event.type)
    EVENTS_INGESTED.labels(event_kind(event.type), "duplicate").inc()
    if provider is not None:
        # The first attempt may have been stored and then failed before it took effect.
        await _configure_monitoring(pool, event, provider)
    return KeptnEvent.from_wire(existing)


async def _configure_monitoring(pool: asyncpg.Pool, event: KeptnEvent, provider: str) -> None:
    project = str(event.data.get("project", ""))
    await monitoring.set_sli_provider(pool, project, provider)
    log.info("SLI provider configured", project=project, sli_provider=provider, event_id=event.id)
