"""Keptn's evaluation trigger: ``POST /api/controlPlane/v1/project/{p}/stage/{s}/service/{svc}/evaluation``.

What ``keptn trigger evaluation`` calls. The window is checked here with lighthouse's rules, so a
bad request is a 400 at once instead of a sequence that finishes errored; the stored trigger
carries the resolved ``evaluation.start``/``evaluation.end``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, scoped
from api.deps import ServicesDep
from api.ingest import ingest_event
from api.routes.api_service import EventContext
from api.routing import route_event
from api.schemas.common import error_responses
from capstan.scopes import Scope
from keptn.errors import NotFoundError
from keptn.evaluation_window import format_evaluation_time, get_start_end_time
from keptn.events import IncomingEvent
from store import projects as project_store

router = APIRouter(prefix="/controlPlane/v1", tags=["shipyard-controller"])

SOURCE = "https://github.com/keptn/keptn/api"
"""The source Keptn's shipyard-controller stamped on evaluation triggers."""


class EvaluationRequest(BaseModel):
    """Keptn's ``models.CreateEvaluationParams``."""

    model_config = ConfigDict(extra="forbid")

    start: str | None = Field(
        default=None,
        description="window start (2006-01-02T15:04:05.000Z, RFC 3339 or 2006-01-02T15:04:05)",
    )
    end: str | None = Field(default=None, description="window end; needs start; excludes timeframe")
    timeframe: str | None = Field(default=None, description="window length as a Go duration; default 5m")
    labels: dict[str, str] | None = Field(default=None, description="labels copied into every event")
    gitcommitid: str | None = Field(default=None, description="resource version to read slo.yaml at")


@router.post(
    "/project/{project}/stage/{stage}/service/{service}/evaluation",
    response_model=EventContext,
    responses=error_responses(400, 401, 404, 503),
)
async def trigger_evaluation(
    services: ServicesDep,
    principal: Annotated[Principal, scoped(Scope.EVENTS_WRITE)],
    project: str,
    stage: str,
    service: str,
    body: EvaluationRequest,
) -> EventContext:
    """Trigger the ``evaluation`` sequence of a service in a stage; answer its Keptn context."""
    principal.check_project(project)
    start, end = get_start_end_time(body.start, body.end, body.timeframe, now=datetime.now(UTC))
    info = await project_store.get_project(services.pool, project)
    if info is None:
        raise NotFoundError(f"project '{project}' not found", field="project")
    if info.stage(stage) is None:
        raise NotFoundError(f"stage '{stage}' not found in project '{project}'", field="stage")
    if not await project_store.service_exists(services.pool, project, service):
        raise NotFoundError(f"service '{service}' not found in project '{project}'", field="service")
    data: dict[str, Any] = {"project": project, "stage": stage, "service": service}
    if body.labels:
        data["labels"] = body.labels
    data["evaluation"] = {"start": format_evaluation_time(start), "end": format_evaluation_time(end)}
    incoming = IncomingEvent(
        type=f"sh.keptn.event.{stage}.evaluation.triggered",
        source=SOURCE,
        data=data,
        gitcommitid=body.gitcommitid or None,
    )
    event = await ingest_event(services.pool, incoming)
    await route_event(services.temporal, services.settings, event, event.to_wire())
    return EventContext(keptnContext=event.shkeptncontext)
