"""Keptn's resource-service: versioned resources of a project, a stage or a service.

``/api/resource-service/v1/project/{projectName}[/stage/{stageName}[/service/{serviceName}]]/resource``
lists (``GET``), creates (``POST``) and updates (``PUT``) resources; ``.../resource/{resourceURI}``
(the URI may contain ``/``, raw or as ``%2F``) reads, updates and deletes one. Every write is a new
commit whose id the answer carries as ``commitID``; reads take ``gitCommitID`` to see an older one.

Writing the project-level ``shipyard.yaml`` validates it and updates the project's shipyard, as
``PUT /controlPlane/v1/project`` does; deleting it is refused. Capstan answers ``GET`` of a single
resource with the URI as requested and lists URIs without a leading slash, as Keptn 1.x did.

Reads need the scope ``projects:read``, writes ``projects:write``; a token restricted to a project
gets 403 for the resources of any other.
"""

# No ``from __future__ import annotations``: the routes of each level are built in a function and
# their parameters refer to its local ``scope_of``, which FastAPI could not resolve from a string.
import asyncio
import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from api.auth import Principal, scoped
from api.deps import PoolDep
from api.routes.projects import shipyard_update
from api.schemas.common import DEFAULT_PAGE_SIZE, error_responses, paginate
from api.schemas.resources import (
    ResourceContentIn,
    ResourceOut,
    ResourcesIn,
    ResourcesPage,
    Version,
    WriteResponse,
)
from capstan.scopes import Scope
from keptn.errors import InvalidInputError
from store import resources as resource_store
from store._versions import SHIPYARD_URI
from store.projects import ShipyardUpdate
from store.resources import ResourceScope, normalize_uri

router = APIRouter(prefix="/resource-service/v1", tags=["resource-service"])

Reader = Annotated[Principal, scoped(Scope.PROJECTS_READ)]
Writer = Annotated[Principal, scoped(Scope.PROJECTS_WRITE)]

CommitQuery = Annotated[
    str | None, Query(description="read the resources as of this commit (default: the newest)")
]


def _project_scope(projectName: str) -> ResourceScope:
    return ResourceScope(projectName)


def _stage_scope(projectName: str, stageName: str) -> ResourceScope:
    return ResourceScope(projectName, stageName)


def _service_scope(projectName: str, stageName: str, serviceName: str) -> ResourceScope:
    return ResourceScope(projectName, stageName, serviceName)


def _commit(value: str | None) -> str | None:
    # Keptn treated an empty gitCommitID, and the literal "" some clients send, as none.
    return None if value in (None, "", '""') else value


def _decode(content: str, *, uri: str, field: str) -> bytes:
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(
            f"{field}: the content of resource '{uri}' is not base64 encoded", field=field
        ) from None


def _shipyard_for(scope: ResourceScope, writes: Sequence[tuple[str, bytes]]) -> ShipyardUpdate | None:
    if scope.stage is not None:
        return None
    shipyard: ShipyardUpdate | None = None
    for uri, content in writes:
        if normalize_uri(uri) == SHIPYARD_URI:
            try:
                text = content.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInputError("shipyard.yaml must be UTF-8 text", field="resourceContent") from None
            shipyard = shipyard_update(text, field="shipyard.yaml")
    return shipyard


async def _write(
    pool: PoolDep, scope: ResourceScope, writes: Sequence[tuple[str, bytes]], message: str
) -> WriteResponse:
    # In a thread: parsing a shipyard can take seconds (see api.routes.projects.create_project).
    shipyard = await asyncio.to_thread(_shipyard_for, scope, writes)
    commit = await resource_store.write_resources(pool, scope, writes, message=message, shipyard=shipyard)
    return WriteResponse(commitID=commit, metadata=Version(version=commit))


def _batch(body: ResourcesIn) -> list[tuple[str, bytes]]:
    return [
        (
            r.resourceURI,
            _decode(r.resourceContent, uri=r.resourceURI, field=f"resources[{i}].resourceContent"),
        )
        for i, r in enumerate(body.resources)
    ]


def _level_routes(level: str, scope_of: Callable[..., ResourceScope]) -> APIRouter:
    """The six resource routes of one level, all scoped by ``scope_of``'s path parameters."""
    routes = APIRouter()
    base = {
        "project": "/project/{projectName}/resource",
        "stage": "/project/{projectName}/stage/{stageName}/resource",
        "service": "/project/{projectName}/stage/{stageName}/service/{serviceName}/resource",
    }[level]
    one = base + "/{resourceURI:path}"
    read_errors = error_responses(400, 401, 404, 503)

    @routes.get(
        base,
        name=f"List {level} resources",
        response_model=ResourcesPage,
        response_model_exclude_none=True,
        responses=read_errors,
    )
    async def list_resources(
        pool: PoolDep,
        principal: Reader,
        scope: Annotated[ResourceScope, Depends(scope_of)],
        gitCommitID: CommitQuery = None,
        pageSize: Annotated[int, Query(ge=1, description="resources per page")] = DEFAULT_PAGE_SIZE,
        nextPageKey: Annotated[str | None, Query(description="nextPageKey of the previous page")] = None,
    ) -> ResourcesPage:
        principal.check_project(scope.project, field="projectName")
        uris, version = await resource_store.list_resources(pool, scope, commit_id=_commit(gitCommitID))
        page, following, total = paginate(uris, pageSize, nextPageKey)
        metadata = Version(version=version or "")
        return ResourcesPage(
            resources=[ResourceOut(resourceURI=uri, metadata=metadata) for uri in page],
            nextPageKey=following,
            pageSize=pageSize,
            totalCount=total,
        )

    @routes.post(
        base,
        name=f"Create {level} resources",
        status_code=status.HTTP_201_CREATED,
        response_model=WriteResponse,
        response_model_exclude_none=True,
        responses=read_errors,
    )
    async def create_resources(
        pool: PoolDep,
        principal: Writer,
        scope: Annotated[ResourceScope, Depends(scope_of)],
        body: ResourcesIn,
    ) -> WriteResponse:
        principal.check_project(scope.project, field="projectName")
        return await _write(pool, scope, _batch(body), "Added resources")

    @routes.put(
        base,
        name=f"Update {level} resources",
        response_model=WriteResponse,
        response_model_exclude_none=True,
        responses=read_errors,
    )
    async def update_resources(
        pool: PoolDep,
        principal: Writer,
        scope: Annotated[ResourceScope, Depends(scope_of)],
        body: ResourcesIn,
    ) -> WriteResponse:
        principal.check_project(scope.project, field="projectName")
        return await _write(pool, scope, _batch(body), "Updated resources")

    @routes.get(
        one,
        name=f"Get {level} resource",
        response_model=ResourceOut,
        response_model_exclude_none=True,
        responses=read_errors,
    )
    async def get_resource(
        pool: PoolDep,
        principal: Reader,
        scope: Annotated[ResourceScope, Depends(scope_of)],
        resourceURI: str,
        gitCommitID: CommitQuery = None,
    ) -> ResourceOut:
        principal.check_project(scope.project, field="projectName")
        found = await resource_store.get_resource(pool, scope, resourceURI, commit_id=_commit(gitCommitID))
        return ResourceOut(
            resourceURI=resourceURI,
            resourceContent=base64.b64encode(found.content).decode("ascii"),
            metadata=Version(version=found.version),
        )

    @routes.put(
        one,
        name=f"Update {level} resource",
        response_model=WriteResponse,
        response_model_exclude_none=True,
        responses=read_errors,
    )
    async def update_resource(
        pool: PoolDep,
        principal: Writer,
        scope: Annotated[ResourceScope, Depends(scope_of)],
        resourceURI: str,
        body: ResourceContentIn,
    ) -> WriteResponse:
        principal.check_project(scope.project, field="projectName")
        content = _decode(body.resourceContent, uri=resourceURI, field="resourceContent")
        return await _write(pool, scope, [(resourceURI, content)], f"Updated {normalize_uri(resourceURI)}")

    @routes.delete(
        one,
        name=f"Delete {level} resource",
        response_model=WriteResponse,
        response_model_exclude_none=True,
        responses=read_errors,
    )
    async def delete_resource(
        pool: PoolDep, principal: Writer, scope: Annotated[ResourceScope, Depends(scope_of)], resourceURI: str
    ) -> WriteResponse:
        principal.check_project(scope.project, field="projectName")
        commit = await resource_store.delete_resource(pool, scope, resourceURI)
        return WriteResponse(commitID=commit, metadata=Version(version=commit))

    return routes


for _level, _scope in (("project", _project_scope), ("stage", _stage_scope), ("service", _service_scope)):
    router.include_router(_level_routes(_level, _scope))
