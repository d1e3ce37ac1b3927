"""The evaluation page of a service: SLO heatmap, score chart and the selected evaluation's details.

Like Keptn's Bridge, the history is the last ``limit`` ``evaluation.finished`` events of the
project/stage/service, read with the datastore query Keptn's Bridge used
(``GET /event/type/sh.keptn.event.evaluation.finished?excludeInvalidated=true``): invalidated
evaluations (``evaluation.invalidated`` naming their ``triggeredid``) are left out of the heatmap
and the chart, as they are left out of lighthouse's comparisons. One can still be opened by its
event id (``?evaluation=``), and is then marked as invalidated.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.bridge.charts import ScoreChart, ScoreSample, score_chart
from api.bridge.heatmap import Evaluation, Heatmap, build_heatmap, parse_evaluation, score_thresholds
from api.bridge.session import BridgeUserDep
from api.bridge.templating import format_time, parse_time, templates
from api.deps import Services, ServicesDep
from capstan.scopes import Scope
from keptn.errors import NotFoundError
from store import projects as project_store
from store.events import EventTypeQuery, get_event, get_events_by_type
from store.filters import FilterClause

router = APIRouter()

EVALUATION_FINISHED = "sh.keptn.event.evaluation.finished"
EVALUATION_INVALIDATED = "sh.keptn.event.evaluation.invalidated"
DEFAULT_LIMIT = 10
MAX_LIMIT = 50


def _clauses(project: str, service: str, stage: str | None = None) -> tuple[FilterClause, ...]:
    clauses = [FilterClause("data.project", (project,)), FilterClause("data.service", (service,))]
    if stage is not None:
        clauses.append(FilterClause("data.stage", (stage,)))
    return tuple(clauses)


async def _history(
    services: Services, project: str, stage: str, service: str, limit: int
) -> list[dict[str, Any]]:
    """The newest ``limit`` valid evaluations, newest first."""
    query = EventTypeQuery(
        event_type=EVALUATION_FINISHED,
        clauses=_clauses(project, service, stage),
        exclude_invalidated=True,
        limit=limit,
    )
    return await get_events_by_type(services.pool, query)


async def _default_stage(services: Services, project: str, service: str, stages: list[str]) -> str:
    """The stage of the service's newest evaluation, else the first stage (shipyard order)."""
    query = EventTypeQuery(
        event_type=EVALUATION_FINISHED, clauses=_clauses(project, service), exclude_invalidated=True, limit=1
    )
    newest = await get_events_by_type(services.pool, query)
    if newest:
        stage = newest[0].get("data", {}).get("stage")
        if stage in stages:
            return str(stage)
    return stages[0]


async def _is_invalidated(services: Services, project: str, triggered_id: str) -> bool:
    if not triggered_id:
        return False
    query = EventTypeQuery(
        event_type=EVALUATION_INVALIDATED,
        clauses=(FilterClause("data.project", (project,)), FilterClause("triggeredid", (triggered_id,))),
        limit=1,
    )
    return bool(await get_events_by_type(services.pool, query))


async def _selected(
    services: Services, heatmap: Heatmap, event_id: str | None, where: tuple[str, str, str]
) -> tuple[Evaluation | None, bool]:
    """The evaluation whose details are shown (the newest by default) and whether it was invalidated.

    Raises:
        NotFoundError: ``event_id`` is no evaluation of this project/stage/service.
    """
    if not event_id:
        return (heatmap.columns[-1] if heatmap.columns else None), False
    for column in heatmap.columns:
        if column.event_id == event_id:
            return column, False
    # Older than the shown columns, or invalidated: still viewable by its id.
    event = await get_event(services.pool, event_id)
    data = event.get("data") if event else None
    scope = tuple(data.get(key) for key in ("project", "stage", "service")) if isinstance(data, dict) else ()
    if event is None or event.get("type") != EVALUATION_FINISHED or scope != where:
        project, stage, service = where
        raise NotFoundError(
            f"evaluation '{event_id}' not found for service '{service}' in stage '{stage}'"
            f" of project '{project}'",
            field="evaluation",
        )
    evaluation = parse_evaluation(event)
    return evaluation, await _is_invalidated(services, where[0], evaluation.triggered_id)


def short_time(value: str) -> str:
    """``11-26 13:05:09`` (UTC) for column headers and chart labels (seconds: gates run often)."""
    parsed = parse_time(value)
    return format_time(parsed)[5:19] if parsed else value


def page_url(project: str, service: str, **params: Any) -> str:
    """The evaluation page's URL with query parameters (None values left out)."""
    query = urlencode({key: value for key, value in params.items() if value is not None})
    return f"/project/{project}/service/{service}/evaluations" + (f"?{query}" if query else "")


def _chart(
    heatmap: Heatmap, selected: Evaluation | None, project: str, service: str, stage: str, limit: int
) -> ScoreChart:
    # The thresholds of the newest SLO: that is the gate the next evaluation will face.
    newest_slo = next((c.slo_content for c in reversed(heatmap.columns) if c.slo_content), "")
    pass_threshold, warning_threshold = score_thresholds(newest_slo)
    samples = [
        ScoreSample(
            score=column.score,
            status=column.result,
            label=short_time(column.time),
            title=f"{format_time(column.time)}: score {column.score:.2f}, {column.result}",
            href=page_url(project, service, stage=stage, limit=limit, evaluation=column.event_id),
            selected=selected is not None and column.event_id == selected.event_id,
            key=column.event_id,
        )
        for column in heatmap.columns
    ]
    return score_chart(samples, pass_threshold=pass_threshold, warning_threshold=warning_threshold)


@router.get("/project/{project}/service/{service}/evaluations", response_class=HTMLResponse)
async def evaluations_page(
    request: Request,
    user: BridgeUserDep,
    services: ServicesDep,
    project: str,
    service: str,
    stage: str | None = None,
    limit: int = DEFAULT_LIMIT,
    evaluation: str | None = None,
) -> HTMLResponse:
    """The SLO heatmap, score chart and evaluation details of a service in one stage."""
    user.principal.require(Scope.EVENTS_READ, action="viewing evaluations")
    user.principal.check_project(project)
    info = await project_store.get_project(services.pool, project)
    if info is None:
        raise NotFoundError(f"project '{project}' not found", field="project")
    if not await project_store.service_exists(services.pool, project, service):
        raise NotFoundError(f"service '{service}' not found in project '{project}'", field="service")
    stages = [item.name for item in info.stages]
    if not stages:
        raise NotFoundError(f"project '{project}' has no stages", field="project")
    if stage is None or stage == "":
        stage = await _default_stage(services, project, service, stages)
    elif stage not in stages:
        raise NotFoundError(f"stage '{stage}' not found in project '{project}'", field="stage")
    # A page, not an API: an out-of-range limit is clamped instead of refused.
    limit = min(max(limit, 1), MAX_LIMIT)
    heatmap = build_heatmap(await _history(services, project, stage, service, limit))
    selected, invalidated = await _selected(services, heatmap, evaluation, (project, stage, service))
    context = {
        "user": user,
        "nav": "projects",
        "project": project,
        "service": service,
        "stage": stage,
        "stages": stages,
        "limit": limit,
        "limits": sorted({5, DEFAULT_LIMIT, 20, MAX_LIMIT, limit}),
        "heatmap": heatmap,
        "chart": _chart(heatmap, selected, project, service, stage, limit),
        "selected": selected,
        "invalidated": invalidated,
        "short_time": short_time,
        "page_url": page_url,
    }
    return templates.TemplateResponse(request, "evaluations.html", context)
