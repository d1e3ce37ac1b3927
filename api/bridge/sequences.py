"""Sequences of a project: the list, one context's timeline, an event's payload, and their live streams.

Reading needs ``events:read``, like ``GET /api/controlPlane/v1/sequence/{project}`` and the
datastore; the list is Keptn's sequence state view (``store.sequence_states``), the timeline is
built from the context's stored events (:mod:`api.bridge.timeline`). Both pages refresh over
server-sent events (:mod:`api.bridge.live`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from api.bridge.live import sse_response
from api.bridge.session import BridgeUser, BridgeUserDep
from api.bridge.templating import templates
from api.bridge.timeline import build_timeline, worst
from api.deps import PoolDep, ServicesDep
from capstan.scopes import Scope
from keptn.errors import InvalidInputError, NotFoundError
from store import bridge_reads, sequence_states, sequences
from store.events import get_event
from workflows.context_models import context_workflow_id

router = APIRouter()

PAGE_SIZE = 25
RUNNING = frozenset({"triggered", "started", "waiting", "paused"})
"""Overall states of a sequence that has not ended: its controls are shown."""

Filter = Annotated[str | None, Query()]


@dataclass(frozen=True)
class SequenceFilters:
    """The sequence list's filters (empty values count as absent, as in the API)."""

    state: str | None = None
    name: str | None = None
    service: str | None = None
    stage: str | None = None

    def query(self) -> dict[str, str]:
        """The filters that are set, for links and the stream URL."""
        return {k: v for k, v in vars(self).items() if v}


async def _readable(pool: PoolDep, user: BridgeUser, project: str) -> None:
    """Insist on ``events:read`` for an existing project the token may see."""
    user.principal.require(Scope.EVENTS_READ, action="viewing sequences")
    user.principal.check_project(project)
    if not await sequences.project_exists(pool, project):
        raise NotFoundError(f"project '{project}' not found", field="project")


def _filters(state: str | None, name: str | None, service: str | None, stage: str | None) -> SequenceFilters:
    if state and state not in sequences.VIEW_STATES:
        raise InvalidInputError(
            f"state must be one of {', '.join(sequences.VIEW_STATES)}; got {state!r}", field="state"
        )
    return SequenceFilters(
        state=state or None, name=name or None, service=service or None, stage=stage or None
    )


async def _rows(pool: PoolDep, project: str, filters: SequenceFilters, offset: int) -> dict[str, Any]:
    """The template context of one page of the list."""
    contexts: tuple[str, ...] = ()
    if filters.service or filters.stage:
        contexts = await bridge_reads.filtered_contexts(
            pool, project, service=filters.service, stage=filters.stage
        )
        if not contexts:
            return {"states": [], "results": {}, "next_offset": None, "total": 0}
    page = await sequence_states.get_sequence_states(
        pool,
        sequence_states.StateQuery(
            project=project,
            name=filters.name,
            state=filters.state,
            keptn_contexts=contexts,
            page_size=PAGE_SIZE,
            offset=offset,
        ),
    )
    found = await bridge_reads.sequence_results(pool, project, [s.keptn_context for s in page.states])
    results = {context: worst(stage_results) for context, stage_results in found.items()}
    return {
        "states": page.states,
        "results": results,
        "next_offset": page.next_offset,
        "total": page.total_count,
    }


@router.get("/project/{project}/sequences", response_class=HTMLResponse)
async def sequence_list(
    request: Request,
    pool: PoolDep,
    user: BridgeUserDep,
    project: str,
    state: Filter = None,
    name: Filter = None,
    service: Filter = None,
    stage: Filter = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """A project's sequences, newest first, filtered by state, name, service and stage."""
    await _readable(pool, user, project)
    filters = _filters(state, name, service, stage)
    context = {
        "user": user,
        "nav": "projects",
        "project": project,
        "filters": filters,
        "state_options": sequences.VIEW_STATES,
        "offset": offset,
        "version": await bridge_reads.project_fingerprint(pool, project),
        **await _rows(pool, project, filters, offset),
    }
    return templates.TemplateResponse(request, "sequences.html", context)


@router.get("/project/{project}/sequences/stream", response_class=StreamingResponse)
async def sequence_list_stream(
    request: Request,
    pool: PoolDep,
    user: BridgeUserDep,
    project: str,
    state: Filter = None,
    name: Filter = None,
    service: Filter = None,
    stage: Filter = None,
    v: Filter = None,
) -> StreamingResponse:
    """Server-sent events ``sequences``: the list's first page whenever a sequence state changed."""
    await _readable(pool, user, project)
    filters = _filters(state, name, service, stage)
    rows = templates.get_template("_sequence_rows.html")

    async def render() -> str:
        return rows.render(project=project, **await _rows(pool, project, filters, 0))

    async def fingerprint() -> str:
        return await bridge_reads.project_fingerprint(pool, project)

    return sse_response(request, "sequences", fingerprint, render, since=v)


async def _timeline_context(
    services: ServicesDep, user: BridgeUser, project: str, keptn_context: str
) -> dict[str, Any]:
    """What the timeline fragment shows; NotFoundError when the context has no events."""
    pool = services.pool
    events = await bridge_reads.context_events(pool, project, keptn_context)
    state = await bridge_reads.context_state(pool, project, keptn_context)
    if not events and state is None:
        raise NotFoundError(
            f"no sequence with keptnContext '{keptn_context}' in project '{project}'", field="keptnContext"
        )
    timeline = build_timeline(keptn_context, events)
    overall = state.state if state is not None else "triggered"
    principal = user.principal
    return {
        "project": project,
        "keptn_context": keptn_context,
        "timeline": timeline,
        "state": state,
        "overall": overall,
        "service": state.service if state else _first_service(events),
        "approvals": await bridge_reads.open_approvals(pool, project, keptn_context),
        "can_approve": principal.allows(Scope.APPROVALS_WRITE),
        "can_control": principal.allows(Scope.EVENTS_WRITE) and overall in RUNNING,
    }


def _first_service(events: list[dict[str, Any]]) -> str:
    for event in events:
        data = event.get("data")
        if isinstance(data, dict) and isinstance(data.get("service"), str):
            return str(data["service"])
    return ""


@router.get("/project/{project}/sequence/{keptn_context}", response_class=HTMLResponse)
async def sequence_timeline(
    request: Request, services: ServicesDep, user: BridgeUserDep, project: str, keptn_context: str
) -> HTMLResponse:
    """One Keptn context: stages, tasks and events, approvals and controls; live over SSE."""
    await _readable(services.pool, user, project)
    settings = services.settings
    workflow = context_workflow_id(project, keptn_context)
    temporal_url = (
        f"{settings.temporal_ui_base}/namespaces/{settings.temporal_namespace}/workflows/{workflow}"
    )
    context = {
        "user": user,
        "nav": "projects",
        "temporal_url": temporal_url,
        "version": await bridge_reads.context_fingerprint(services.pool, project, keptn_context),
        **await _timeline_context(services, user, project, keptn_context),
    }
    return templates.TemplateResponse(request, "sequence.html", context)


@router.get("/project/{project}/sequence/{keptn_context}/stream", response_class=StreamingResponse)
async def sequence_timeline_stream(
    request: Request,
    services: ServicesDep,
    user: BridgeUserDep,
    project: str,
    keptn_context: str,
    v: Filter = None,
) -> StreamingResponse:
    """Server-sent events ``timeline``: the timeline fragment whenever the context changed."""
    await _readable(services.pool, user, project)
    fragment = templates.get_template("_timeline.html")

    async def render() -> str:
        return fragment.render(user=user, **await _timeline_context(services, user, project, keptn_context))

    async def fingerprint() -> str:
        return await bridge_reads.context_fingerprint(services.pool, project, keptn_context)

    return sse_response(request, "timeline", fingerprint, render, since=v)


@router.get("/project/{project}/event/{event_id}", response_class=HTMLResponse)
async def event_payload(pool: PoolDep, user: BridgeUserDep, project: str, event_id: str) -> HTMLResponse:
    """The payload of one event of the project, as indented JSON (swapped into its ``<pre>``)."""
    await _readable(pool, user, project)
    event = await get_event(pool, event_id)
    data = event.get("data") if event else None
    if event is None or not isinstance(data, dict) or data.get("project") != project:
        raise NotFoundError(f"event '{event_id}' not found in project '{project}'", field="eventId")
    return HTMLResponse(templates.get_template("_payload.html").render(event=event))
