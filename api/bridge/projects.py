"""The projects overview (``/``) and a project's environment view (``/project/{project}``).

Both read what ``GET /api/controlPlane/v1/project`` reads (``store.projects``: stages in shipyard
order, services with Keptn's ``deployedImage`` and ``lastEventTypes``) and need the same scope,
``projects:read``; a token restricted to a project sees only that one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.bridge.session import BridgeUser, BridgeUserDep
from api.bridge.templating import templates
from api.deps import PoolDep
from capstan.scopes import Scope
from keptn.errors import NotFoundError
from store import bridge_reads
from store import projects as project_store
from store.events import get_event
from store.projects import ProjectInfo

router = APIRouter()

EVALUATION_FINISHED = "sh.keptn.event.evaluation.finished"
DEPLOYMENT_FINISHED = "sh.keptn.event.deployment.finished"
MAX_PROJECTS = 500
"""The overview lists at most this many projects (by name)."""


@dataclass(frozen=True)
class ProjectCard:
    """One project on the overview."""

    project: ProjectInfo
    services: int
    latest: bridge_reads.LatestSequence | None


@dataclass(frozen=True)
class Evaluation:
    """The newest ``evaluation.finished`` of a service in a stage."""

    score: float | None
    result: str
    keptn_context: str | None


@dataclass(frozen=True)
class Cell:
    """A service in a stage on the environment view."""

    stage: str
    service: str
    image: str | None
    deployment_context: str | None
    evaluation: Evaluation | None


def _readable(user: BridgeUser, project: str | None = None) -> None:
    user.principal.require(Scope.PROJECTS_READ, action="viewing projects")
    if project is not None:
        user.principal.check_project(project)


@router.get("/", response_class=HTMLResponse)
async def projects_overview(request: Request, pool: PoolDep, user: BridgeUserDep) -> HTMLResponse:
    """Every project the token may see, with its stages, services and latest sequence."""
    _readable(user)
    if user.principal.project is not None:
        own = await project_store.get_project(pool, user.principal.project)
        found = [own] if own is not None else []
    else:
        found, _ = await project_store.list_projects(pool, limit=MAX_PROJECTS)
    latest = await bridge_reads.latest_sequences(pool, [p.name for p in found])
    cards = [
        ProjectCard(
            project=p,
            services=len({s.name for stage in p.stages for s in stage.services}),
            latest=latest.get(p.name),
        )
        for p in found
    ]
    return templates.TemplateResponse(
        request, "projects.html", {"user": user, "nav": "projects", "cards": cards}
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


async def _evaluation(pool: PoolDep, event_id: str) -> Evaluation | None:
    event = await get_event(pool, event_id)
    if event is None:
        return None
    data = event.get("data")
    data = data if isinstance(data, dict) else {}
    details = data.get("evaluation")
    details = details if isinstance(details, dict) else {}
    return Evaluation(
        score=_number(details.get("score")),
        result=str(data.get("result") or ""),
        keptn_context=event.get("shkeptncontext"),
    )


async def _cells(pool: PoolDep, project: ProjectInfo) -> dict[tuple[str, str], Cell]:
    cells: dict[tuple[str, str], Cell] = {}
    for stage in project.stages:
        for service in stage.services:
            evaluated = service.last_event_types.get(EVALUATION_FINISHED)
            deployed = service.last_event_types.get(DEPLOYMENT_FINISHED)
            cells[(stage.name, service.name)] = Cell(
                stage=stage.name,
                service=service.name,
                image=service.deployed_image,
                deployment_context=deployed.keptn_context if deployed else None,
                evaluation=await _evaluation(pool, evaluated.event_id) if evaluated else None,
            )
    return cells


@router.get("/project/{project}", response_class=HTMLResponse)
async def environment(request: Request, pool: PoolDep, user: BridgeUserDep, project: str) -> HTMLResponse:
    """A project's stages (columns, shipyard order) and services (rows) with image and evaluation."""
    _readable(user, project)
    found = await project_store.get_project(pool, project)
    if found is None:
        raise NotFoundError(f"project '{project}' not found", field="project")
    services: list[str] = []
    for stage in found.stages:
        services.extend(s.name for s in stage.services if s.name not in services)
    context = {
        "user": user,
        "nav": "projects",
        "project": found,
        "services": services,
        "cells": await _cells(pool, found),
        "latest": (await bridge_reads.latest_sequences(pool, [project])).get(project),
    }
    return templates.TemplateResponse(request, "project.html", context)
