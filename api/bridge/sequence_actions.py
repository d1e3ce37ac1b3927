"""Deciding an approval and pausing, resuming or aborting a sequence from the timeline page.

Both do exactly what the API does: a decision is an ``sh.keptn.event.approval.finished`` event
(the shape ``capstan approve`` sends) that goes through the checks, storage and routing of
``POST /api/v1/event``; a control is the sequence control route's signal. The scopes are the
API's too: ``approvals:write`` to decide, ``events:write`` to control. Both are POSTs with the
session's CSRF token. An htmx request gets a short confirmation for ``#flash`` (the timeline shows
the change by itself, over its live stream); a plain form post is sent back to the timeline.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import Principal
from api.bridge.session import CsrfUserDep
from api.bridge.templating import templates
from api.deps import Services, ServicesDep
from api.routing import control_sequence
from api.submit import submit_event
from capstan.scopes import Scope
from keptn.approval import human_decision_event
from keptn.errors import NotFoundError
from keptn.events import parse_incoming_event
from store import projects as project_store
from store.open_events import OpenTriggeredQuery, list_open_triggered
from workflows.context_models import ControlRequest

router = APIRouter()

APPROVAL_TRIGGERED = "sh.keptn.event.approval.triggered"
APPROVAL_FINISHED = "sh.keptn.event.approval.finished"
SOURCE = "capstan-bridge"
"""The ``source`` of events the Bridge sends."""


async def _existing_project(services: Services, principal: Principal, project: str) -> None:
    principal.check_project(project)
    if await project_store.get_project(services.pool, project) is None:
        raise NotFoundError(f"project '{project}' not found", field="project")


def _done(request: Request, project: str, keptn_context: str, message: str) -> Response:
    if request.headers.get("hx-request"):
        return HTMLResponse(templates.get_template("_flash.html").render(message=message))
    return RedirectResponse(f"/project/{project}/sequence/{keptn_context}", status_code=303)


@router.post("/project/{project}/sequence/{keptn_context}/approval/{triggered_id}", response_model=None)
async def decide_approval(
    request: Request,
    services: ServicesDep,
    user: CsrfUserDep,
    project: str,
    keptn_context: str,
    triggered_id: str,
    decision: Annotated[Literal["approve", "decline"], Form()],
    message: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve or decline an open approval of this context (needs ``approvals:write``)."""
    principal = user.principal
    principal.require(Scope.APPROVALS_WRITE, action=f"sending {APPROVAL_FINISHED}")
    await _existing_project(services, principal, project)
    page = await list_open_triggered(
        services.pool,
        OpenTriggeredQuery(event_type=APPROVAL_TRIGGERED, event_id=triggered_id, project=project),
    )
    open_ones = [e for e in page.events if e.get("shkeptncontext") == keptn_context]
    if not open_ones:
        raise NotFoundError(
            f"no open approval '{triggered_id}' in sequence '{keptn_context}' of project '{project}'",
            field="triggeredId",
        )
    approved = decision == "approve"
    body = human_decision_event(
        open_ones[0], approved=approved, user=user.name, message=message.strip(), source=SOURCE
    )
    await submit_event(services, principal, parse_incoming_event(body))
    verb = "Approved" if approved else "Declined"
    return _done(request, project, keptn_context, f"{verb}: the sequence goes on accordingly.")


@router.post("/project/{project}/sequence/{keptn_context}/control", response_model=None)
async def control(
    request: Request,
    services: ServicesDep,
    user: CsrfUserDep,
    project: str,
    keptn_context: str,
    state: Annotated[Literal["pause", "resume", "abort"], Form()],
    stage: Annotated[str, Form()] = "",
) -> Response:
    """Pause, resume or abort the context's running sequences, as the API's control route does."""
    principal = user.principal
    principal.require(Scope.EVENTS_WRITE, action="controlling sequences")
    await _existing_project(services, principal, project)
    await control_sequence(
        services.temporal, project, keptn_context, ControlRequest(state=state, stage=stage or None)
    )
    done = {"pause": "Paused", "resume": "Resumed", "abort": "Aborted"}[state]
    where = f" in stage {stage}" if stage else ""
    return _done(request, project, keptn_context, f"{done} the sequence{where}.")
