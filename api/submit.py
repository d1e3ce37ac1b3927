"""Accepting one Keptn event from a caller: the path ``POST /api/v1/event`` and the Bridge share."""

from __future__ import annotations

from api.auth import Principal, authorize_event
from api.deps import Services
from api.ingest import ingest_event
from api.problems import end_remediations
from api.routing import route_event
from capstan.telemetry import TRACEPARENT, TRACESTATE, context_span
from keptn.events import IncomingEvent, KeptnEvent


async def submit_event(services: Services, principal: Principal, incoming: IncomingEvent) -> KeptnEvent:
    """Authorize, store and route an event; return it as stored (a retry returns the original).

    The answer comes only after the event is stored and its context workflow has it.

    Raises:
        ForbiddenError: the token may not send this event (or the stored event it retries).
        InvalidEventError, NotFoundError, ConflictError, UnavailableError: see ``ingest_event``
            and ``route_event``.
    """
    authorize_event(principal, incoming.type, incoming.data)
    event = await ingest_event(services.pool, incoming)
    # A retry of a stored event answers that event: it must be one the token may touch too.
    authorize_event(principal, event.type, event.data)
    # In the Keptn context's trace: Temporal's interceptor carries this span into the workflow.
    with context_span(
        f"receive {event.type}",
        event.shkeptncontext,
        traceparent=event.extensions.get(TRACEPARENT),
        tracestate=event.extensions.get(TRACESTATE),
        attributes={"cloudevents.event_id": event.id, "cloudevents.event_type": event.type},
    ):
        await route_event(services.temporal, services.settings, event, event.to_wire())
        await end_remediations(services.pool, services.temporal, event)
    return event
