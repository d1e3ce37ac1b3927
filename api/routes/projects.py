"""Keptn's shipyard-controller projects, stages and services (``/api/controlPlane/v1/project``).

Creating and deleting projects and services stores the informational events Keptn's
shipyard-controller sent (``sh.keptn.event.project.create.started`` …), with source
``shipyard-controller`` and one fresh Keptn context per operation, so they show in the datastore.

Differences from Keptn: ``gitCredentials`` are rejected (Capstan keeps resources in its own
versioned store, there is no git upstream); deleting an unknown service is a 404 (Keptn answered
200); ``project.delete.finished`` stays in the datastore after the project's events are gone
(Keptn's datastore dropped the project's events on it and kept nothing).

Reads need the scope ``projects:read``, writes ``projects:write``; a token restricted to project P
lists only P and gets 403 for any other project (creating one included).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from api.auth import Principal, scoped
from api.deps import PoolDep
from api.schemas.common import DEFAULT_PAGE_SIZE, PG_BIGINT_MAX, error_responses, page_offset, paginate
from api.schemas.projects import (
    CreateProjectRequest,
    CreateServiceRequest,
    EmptyBody,
    EventContextInfo,
    ExpandedProject,
    ExpandedProjects,
    ExpandedService,
    ExpandedServices,
    ExpandedStage,
    ExpandedStages,
    MessageBody,
    UpdateProjectRequest,
)
from capstan.scopes import Scope
from keptn.errors import ConflictError, InvalidInputError, InvalidShipyardError, NotFoundError
from keptn.events import KeptnEvent
from keptn.names import validate_project_name, validate_service_name
from keptn.shipyard import parse_shipyard
from keptn.validation import DEFAULT_SHKEPTNSPECVERSION
from store import projects as project_store
from store.events import insert_event
from store.projects import ProjectInfo, ServiceInfo, ShipyardUpdate, StageInfo

router = APIRouter(prefix="/controlPlane/v1", tags=["shipyard-controller"])

SOURCE = "shipyard-controller"
EVENT_PREFIX = "sh.keptn.event."
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

PageSize = Annotated[int, Query(ge=1, le=PG_BIGINT_MAX, description="items per page")]
PageKey = Annotated[str | None, Query(description="nextPageKey of the previous page")]
Reader = Annotated[Principal, scoped(Scope.PROJECTS_READ)]
Writer = Annotated[Principal, scoped(Scope.PROJECTS_WRITE)]


def decode_shipyard(encoded: str, *, field: str = "shipyard") -> ShipyardUpdate:
    """Decode a base64 shipyard and validate it.

    Raises:
        InvalidInputError: not base64 or UTF-8, or not a valid shipyard.
    """
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidInputError(
            f"{field}: could not decode shipyard content: it must be a UTF-8 shipyard.yaml encoded in base64",
            field=field,
        ) from None
    return shipyard_update(text, field=field)


def shipyard_update(text: str, *, field: str = "shipyard") -> ShipyardUpdate:
    """Validate a shipyard's text into what the store keeps.

    Raises:
        InvalidShipyardError: the shipyard is invalid; the message names ``field`` and the path in it.
    """
    try:
        parsed = parse_shipyard(text)
    except InvalidShipyardError as exc:
        raise InvalidShipyardError(
            f"{field}: provided shipyard file is not valid: {exc.message}", field=field
        ) from None
    return ShipyardUpdate(text=text, version=parsed.apiVersion, stages=tuple(parsed.stage_names()))


def _reject_git_credentials(credentials: dict[str, Any] | None) -> None:
    if credentials:
        raise InvalidInputError(
            "gitCredentials are not supported: Capstan keeps project resources in its own versioned "
            "store and does not sync them to a git upstream; remove gitCredentials",
            field="gitCredentials",
        )


def _nanos(moment: datetime) -> str:
    return str((moment - _EPOCH) // _MICROSECOND * 1000)


def _service(service: ServiceInfo) -> ExpandedService:
    last = {
        kind: EventContextInfo(eventId=e.event_id, keptnContext=e.keptn_context, time=_nanos(e.time))
        for kind, e in service.last_event_types.items()
    }
    return ExpandedService(
        serviceName=service.name,
        creationDate=_nanos(service.created_at),
        deployedImage=service.deployed_image,
        lastEventTypes=last or None,
    )


def _stage(stage: StageInfo) -> ExpandedStage:
    return ExpandedStage(stageName=stage.name, services=[_service(s) for s in stage.services])


def _project(project: ProjectInfo) -> ExpandedProject:
    return ExpandedProject(
        projectName=project.name,
        creationDate=_nanos(project.created_at),
        shipyard=project.shipyard,
        shipyardVersion=project.shipyard_version,
        stages=[_stage(s) for s in project.stages],
    )


async def _existing(pool: PoolDep, project: str) -> ProjectInfo:
    found = await project_store.get_project(pool, project)
    if found is None:
        raise NotFoundError(f"project '{project}' not found", field="project")
    return found


def _stage_of(project: ProjectInfo, stage: str) -> StageInfo:
    found = project.stage(stage)
    if found is None:
        raise NotFoundError(f"stage '{stage}' not found in project '{project.name}'", field="stage")
    return found


async def _emit(pool: PoolDep, task: str, kind: str, context: str, data: dict[str, Any]) -> None:
    event = KeptnEvent(
        id=str(uuid.uuid4()),
        source=SOURCE,
        type=f"{EVENT_PREFIX}{task}.{kind}",
        time=datetime.now(UTC),
        shkeptncontext=context,
        shkeptnspecversion=DEFAULT_SHKEPTNSPECVERSION,
        data=data,
    )
    await insert_event(pool, event.to_wire())


def _outcome(ok: bool) -> dict[str, str]:
    return {"status": "succeeded", "result": "pass"} if ok else {"status": "errored", "result": "fail"}


@router.get(
    "/project",
    response_model=ExpandedProjects,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 503),
)
async def list_projects(
    pool: PoolDep,
    principal: Reader,
    pageSize: PageSize = DEFAULT_PAGE_SIZE,
    nextPageKey: PageKey = None,
    # Keptn's clients send it; there is no upstream to sync, so it is accepted and ignored.
    disableUpstreamSync: Annotated[bool, Query(description="accepted and ignored (no upstream)")] = False,  # noqa: ARG001
) -> ExpandedProjects:
    """All projects (only its own for a restricted token), ordered by name, one page at a time."""
    offset = page_offset(nextPageKey)
    if principal.project is not None:
        own = await project_store.get_project(pool, principal.project)
        total = 0 if own is None else 1
        found = [own] if own is not None and offset == 0 else []
    else:
        found, total = await project_store.list_projects(pool, limit=pageSize, offset=offset)
    following = offset + pageSize
    return ExpandedProjects(
        projects=[_project(p) for p in found],
        nextPageKey=str(following) if following < total else "0",
        pageSize=pageSize,
        totalCount=total,
    )


@router.post(
    "/project",
    status_code=status.HTTP_201_CREATED,
    response_model=EmptyBody,
    responses=error_responses(400, 401, 409, 503),
)
async def create_project(pool: PoolDep, principal: Writer, body: CreateProjectRequest) -> EmptyBody:
    """Create a project from a base64 shipyard; its stages are the shipyard's."""
    principal.check_project(body.name, field="name")
    validate_project_name(body.name, field="name")
    _reject_git_credentials(body.gitCredentials)
    # In a thread: PyYAML's pure loader (deeply nested flow YAML) can take seconds, which must
    # not hold every other request of the gateway's event loop.
    shipyard = await asyncio.to_thread(decode_shipyard, body.shipyard)
    context = str(uuid.uuid4())
    await _emit(pool, "project.create", "started", context, {"project": body.name})
    try:
        await project_store.create_project(pool, body.name, shipyard)
    except ConflictError:
        await _emit(pool, "project.create", "finished", context, {"project": body.name, **_outcome(False)})
        raise
    created = {"projectName": body.name, "shipyard": body.shipyard}
    await _emit(
        pool,
        "project.create",
        "finished",
        context,
        {"project": body.name, **_outcome(True), "createdProject": created},
    )
    return EmptyBody()


@router.put(
    "/project",
    status_code=status.HTTP_201_CREATED,
    response_model=EmptyBody,
    responses=error_responses(400, 401, 404, 503),
)
async def update_project(pool: PoolDep, principal: Writer, body: UpdateProjectRequest) -> EmptyBody:
    """Replace a project's shipyard; stages may be reordered but not added, removed or renamed."""
    principal.check_project(body.name, field="name")
    validate_project_name(body.name, field="name")
    _reject_git_credentials(body.gitCredentials)
    if body.shipyard:
        shipyard = await asyncio.to_thread(decode_shipyard, body.shipyard)  # see create_project
        await project_store.update_shipyard(pool, body.name, shipyard)
    else:
        await _existing(pool, body.name)
    return EmptyBody()


@router.get(
    "/project/{project}",
    response_model=ExpandedProject,
    response_model_exclude_none=True,
    responses=error_responses(401, 404, 503),
)
async def get_project(pool: PoolDep, principal: Reader, project: str) -> ExpandedProject:
    """One project with its stages and services."""
    principal.check_project(project)
    return _project(await _existing(pool, project))


@router.delete("/project/{project}", response_model=MessageBody, responses=error_responses(401, 404, 503))
async def delete_project(pool: PoolDep, principal: Writer, project: str) -> MessageBody:
    """Delete a project with its stages, services, resources and events."""
    principal.check_project(project)
    deleted = await project_store.delete_project(pool, project)
    await _emit(pool, "project.delete", "finished", str(uuid.uuid4()), {"project": project, **_outcome(True)})
    return MessageBody(
        message=f"project '{project}' deleted with its stages, services, resources and {deleted} events"
    )


@router.post(
    "/project/{project}/service",
    response_model=MessageBody,
    responses=error_responses(400, 401, 404, 409, 503),
)
async def create_service(
    pool: PoolDep, principal: Writer, project: str, body: CreateServiceRequest
) -> MessageBody:
    """Create a service in every stage of the project."""
    principal.check_project(project)
    validate_service_name(body.serviceName, field="serviceName")
    await _existing(pool, project)
    context = str(uuid.uuid4())
    scope = {"project": project, "service": body.serviceName}
    await _emit(pool, "service.create", "started", context, scope)
    try:
        stages = await project_store.create_service(pool, project, body.serviceName)
    except ConflictError:
        await _emit(pool, "service.create", "finished", context, {**scope, **_outcome(False)})
        raise
    await _emit(pool, "service.create", "finished", context, {**scope, **_outcome(True)})
    return MessageBody(message=f"service '{body.serviceName}' created in stages {', '.join(stages)}")


@router.delete(
    "/project/{project}/service/{service}",
    response_model=MessageBody,
    responses=error_responses(401, 404, 503),
)
async def delete_service(pool: PoolDep, principal: Writer, project: str, service: str) -> MessageBody:
    """Delete a service from every stage, with its resources."""
    principal.check_project(project)
    if not await project_store.service_exists(pool, project, service):
        await _existing(pool, project)
        raise NotFoundError(f"service '{service}' not found in project '{project}'", field="service")
    context = str(uuid.uuid4())
    scope = {"project": project, "service": service}
    await _emit(pool, "service.delete", "started", context, scope)
    await project_store.delete_service(pool, project, service)
    await _emit(pool, "service.delete", "finished", context, {**scope, **_outcome(True)})
    return MessageBody(message=f"service '{service}' deleted from project '{project}'")


@router.get(
    "/project/{project}/stage",
    response_model=ExpandedStages,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 404, 503),
)
async def list_stages(
    pool: PoolDep,
    principal: Reader,
    project: str,
    pageSize: PageSize = DEFAULT_PAGE_SIZE,
    nextPageKey: PageKey = None,
) -> ExpandedStages:
    """The stages of a project, ordered by name as Keptn orders this list."""
    principal.check_project(project)
    stages = sorted((await _existing(pool, project)).stages, key=lambda s: s.name)
    page, following, total = paginate(stages, pageSize, nextPageKey)
    return ExpandedStages(
        stages=[_stage(s) for s in page], nextPageKey=following, pageSize=pageSize, totalCount=total
    )


@router.get(
    "/project/{project}/stage/{stage}",
    response_model=ExpandedStage,
    response_model_exclude_none=True,
    responses=error_responses(401, 404, 503),
)
async def get_stage(pool: PoolDep, principal: Reader, project: str, stage: str) -> ExpandedStage:
    """One stage with its services."""
    principal.check_project(project)
    return _stage(_stage_of(await _existing(pool, project), stage))


@router.get(
    "/project/{project}/stage/{stage}/service",
    response_model=ExpandedServices,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 404, 503),
)
async def list_services(
    pool: PoolDep,
    principal: Reader,
    project: str,
    stage: str,
    pageSize: PageSize = DEFAULT_PAGE_SIZE,
    nextPageKey: PageKey = None,
) -> ExpandedServices:
    """The services of a stage, ordered by name."""
    principal.check_project(project)
    services = sorted(_stage_of(await _existing(pool, project), stage).services, key=lambda s: s.name)
    page, following, total = paginate(services, pageSize, nextPageKey)
    return ExpandedServices(
        services=[_service(s) for s in page], nextPageKey=following, pageSize=pageSize, totalCount=total
    )


@router.get(
    "/project/{project}/stage/{stage}/service/{service}",
    response_model=ExpandedService,
    response_model_exclude_none=True,
    responses=error_responses(401, 404, 503),
)
async def get_service(
    pool: PoolDep, principal: Reader, project: str, stage: str, service: str
) -> ExpandedService:
    """One service in one stage."""
    principal.check_project(project)
    found = _stage_of(await _existing(pool, project), stage).service(service)
    if found is None:
        raise NotFoundError(
            f"service '{service}' not found in stage '{stage}' of project '{project}'", field="service"
        )
    return _service(found)
