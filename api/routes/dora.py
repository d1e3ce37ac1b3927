"""The DORA metrics of a project: ``GET /api/v1/metrics/dora`` (a Capstan extension; Keptn had none).

Computed from the event store on every request (``store.dora`` reads, ``keptn.dora`` counts); the
definitions are in ``docs/dora.md``. Reading them needs ``events:read``; a token restricted to a
project may ask only for that project.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import Principal, scoped
from api.deps import PoolDep
from api.schemas.common import error_responses
from capstan.scopes import Scope
from keptn.dora import DoraQuery, Metrics
from keptn.durations import format_duration
from keptn.errors import NotFoundError
from keptn.events import format_keptn_time
from store import dora
from store import projects as project_store

router = APIRouter(prefix="/v1", tags=["metrics"])

TIME_HELP = "RFC 3339 / Keptn time, e.g. 2024-01-02T03:04:05.000Z (UTC when no offset is given)"


class DayCount(BaseModel):
    """Deployments on one UTC day."""

    date: str = Field(description="the day, YYYY-MM-DD (UTC)")
    deployments: int


class DoraMetrics(BaseModel):
    """The four metrics over the window; durations in seconds, null when nothing was measured."""

    deployments: int = Field(description="successful deployment.finished (pass/warning) in the stage")
    deploymentsPerDay: float
    deploymentsPerWeek: float
    deploymentsByDay: list[DayCount] = Field(description="every UTC day of the window, oldest first")
    leadTimes: int = Field(description="deployments whose delivery start was found")
    leadTimeMedianSeconds: float | None
    leadTimeP90Seconds: float | None = Field(description="90th percentile, nearest rank")
    failedDeployments: int
    changeFailureRate: float | None = Field(description="failedDeployments / deployments; null without any")
    incidents: int = Field(description="incidents opened in the window")
    restoredIncidents: int
    openIncidents: int = Field(description="incidents not restored by the end of the window")
    timeToRestoreMedianSeconds: float | None


class ServiceMetrics(BaseModel):
    """The metrics of one service."""

    service: str
    metrics: DoraMetrics


class DoraResponse(BaseModel):
    """The DORA metrics of a project (or one service) in one stage over a window."""

    project: str
    stage: str = Field(description="the stage measured: the one asked for, else the shipyard's last")
    service: str | None = Field(description="the service asked for; null for the whole project")
    from_: str = Field(alias="from", description="window start (inclusive), Keptn time")
    to: str = Field(description="window end (exclusive), Keptn time")
    failureWindow: str = Field(
        description="how long after a deployment a rollback or problem counts against it"
    )
    metrics: DoraMetrics
    services: list[ServiceMetrics] = Field(description="per service with a deployment or incident, by name")
    truncated: bool = Field(
        description="true if a scan hit its row limit: the numbers cover the oldest events"
    )


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def metrics_model(metrics: Metrics) -> DoraMetrics:
    """The API's shape of ``keptn.dora.Metrics``."""
    return DoraMetrics(
        deployments=metrics.deployments,
        deploymentsPerDay=metrics.per_day,
        deploymentsPerWeek=metrics.per_week,
        deploymentsByDay=[DayCount(date=d.day.isoformat(), deployments=d.deployments) for d in metrics.days],
        leadTimes=metrics.lead_times,
        leadTimeMedianSeconds=_seconds(metrics.lead_time_median),
        leadTimeP90Seconds=_seconds(metrics.lead_time_p90),
        failedDeployments=metrics.failed_deployments,
        changeFailureRate=metrics.change_failure_rate,
        incidents=metrics.incidents,
        restoredIncidents=metrics.restored,
        openIncidents=metrics.incidents - metrics.restored,
        timeToRestoreMedianSeconds=_seconds(metrics.time_to_restore_median),
    )


@router.get(
    "/metrics/dora",
    response_model=DoraResponse,
    response_model_by_alias=True,
    responses=error_responses(400, 401, 404, 503),
)
async def get_dora_metrics(
    pool: PoolDep,
    principal: Annotated[Principal, scoped(Scope.EVENTS_READ)],
    project: Annotated[str, Query(description="the project")],
    stage: Annotated[str | None, Query(description="the stage measured; default the shipyard's last")] = None,
    service: Annotated[str | None, Query(description="only this service; default every service")] = None,
    from_: Annotated[
        str | None, Query(alias="from", description=f"window start; default 30 days before 'to'; {TIME_HELP}")
    ] = None,
    to: Annotated[str | None, Query(description=f"window end; default now; {TIME_HELP}")] = None,
    failureWindow: Annotated[
        str | None,
        Query(
            description="Go duration after a deployment in which a rollback or problem fails it; default 24h"
        ),
    ] = None,
) -> DoraResponse:
    """Deployment frequency, lead time, change failure rate and time to restore (``docs/dora.md``)."""
    principal.check_project(project)
    start, end = dora.dora_window(from_, to, now=datetime.now(UTC))
    window = dora.failure_window(failureWindow)
    info = await project_store.get_project(pool, project)
    if info is None:
        raise NotFoundError(f"project '{project}' not found", field="project")
    scope = dora.dora_scope(info, stage or None)
    if service and not await project_store.service_exists(pool, project, service):
        raise NotFoundError(f"service '{service}' not found in project '{project}'", field="service")
    query = DoraQuery(
        stage=scope.stage,
        first_stage=scope.first_stage,
        start=start,
        end=end,
        service=service or None,
        failure_window=window,
    )
    result = await dora.dora_metrics(pool, info, scope, query)
    return DoraResponse.model_validate(
        {
            "project": project,
            "stage": scope.stage,
            "service": service or None,
            "from": format_keptn_time(start),
            "to": format_keptn_time(end),
            "failureWindow": format_duration(window),
            "metrics": metrics_model(result.report.overall),
            "services": [
                ServiceMetrics(service=name, metrics=metrics_model(m))
                for name, m in result.report.services.items()
            ],
            "truncated": result.truncated,
        }
    )
