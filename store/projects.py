"""Projects, their stages (in shipyard order) and services (one per stage, created in all at once).

A project's shipyard text is kept on the project and, as ``shipyard.yaml``, among its versioned
project-level resources; every change of it is a commit. Deleting a project deletes its stages,
services, resources and events, as Keptn does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from keptn.errors import ConflictError, InvalidInputError, NotFoundError
from store._versions import PROJECT_LEVEL, SHIPYARD_URI, Change, lock_project, new_commit
from store.events import delete_project_events


@dataclass(frozen=True)
class ShipyardUpdate:
    """A validated shipyard: its text, ``apiVersion`` and stage names in order."""

    text: str
    version: str
    stages: tuple[str, ...]


@dataclass(frozen=True)
class LastEvent:
    """The newest event of one type of a service (Keptn's ``EventContextInfo``)."""

    event_id: str
    keptn_context: str | None
    time: datetime


@dataclass(frozen=True)
class ServiceInfo:
    """A service in one stage."""

    name: str
    created_at: datetime
    deployed_image: str | None = None
    last_event_types: dict[str, LastEvent] = field(default_factory=dict)


@dataclass(frozen=True)
class StageInfo:
    """A stage with its services (oldest first)."""

    name: str
    services: list[ServiceInfo]

    def service(self, name: str) -> ServiceInfo | None:
        """The service of that name in this stage, or None."""
        return next((s for s in self.services if s.name == name), None)


@dataclass(frozen=True)
class ProjectInfo:
    """A project with its stages in shipyard order."""

    name: str
    shipyard: str
    shipyard_version: str
    created_at: datetime
    stages: list[StageInfo]

    def stage(self, name: str) -> StageInfo | None:
        """The stage of that name, or None."""
        return next((s for s in self.stages if s.name == name), None)


async def create_project(pool: asyncpg.Pool, name: str, shipyard: ShipyardUpdate) -> str:
    """Create a project with its stages and its ``shipyard.yaml``.

    Returns:
        The id of the commit that wrote ``shipyard.yaml``.

    Raises:
        ConflictError: a project with that name exists.
    """
    async with pool.acquire() as conn, conn.transaction():
        created = await conn.fetchval(
            "INSERT INTO projects (name, shipyard, shipyard_version) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO NOTHING RETURNING name",
            name,
            shipyard.text,
            shipyard.version,
        )
        if created is None:
            raise ConflictError(f"project '{name}' already exists", field="name")
        await conn.executemany(
            "INSERT INTO stages (project, name, position) VALUES ($1, $2, $3)",
            [(name, stage, position) for position, stage in enumerate(shipyard.stages)],
        )
        return await new_commit(conn, name, "Created project", [_shipyard_change(shipyard)])


def _shipyard_change(shipyard: ShipyardUpdate) -> Change:
    return Change(PROJECT_LEVEL, PROJECT_LEVEL, SHIPYARD_URI, shipyard.text.encode())


async def apply_shipyard(conn: asyncpg.Connection, project: str, shipyard: ShipyardUpdate) -> None:
    """Make a new shipyard the project's; the caller holds the project lock and commits the file.

    Raises:
        InvalidInputError: the shipyard adds, removes or renames a stage (Keptn forbids it).
    """
    current = [r["name"] for r in await conn.fetch("SELECT name FROM stages WHERE project = $1", project)]
    if sorted(current) != sorted(shipyard.stages):
        raise InvalidInputError(
            "stage name cannot be changed or removed: the new shipyard has stages "
            f"{list(shipyard.stages)}, the project has {sorted(current)}",
            field="shipyard",
        )
    await conn.executemany(
        "UPDATE stages SET position = $3 WHERE project = $1 AND name = $2",
        [(project, stage, position) for position, stage in enumerate(shipyard.stages)],
    )
    await conn.execute(
        "UPDATE projects SET shipyard = $2, shipyard_version = $3 WHERE name = $1",
        project,
        shipyard.text,
        shipyard.version,
    )


async def update_shipyard(pool: asyncpg.Pool, name: str, shipyard: ShipyardUpdate) -> str:
    """Replace a project's shipyard; the stage names must stay the same (their order may change).

    Returns:
        The id of the commit that wrote the new ``shipyard.yaml``.

    Raises:
        NotFoundError: the project does not exist.
        InvalidInputError: the shipyard adds, removes or renames a stage.
    """
    async with pool.acquire() as conn, conn.transaction():
        await lock_project(conn, name)
        await apply_shipyard(conn, name, shipyard)
        return await new_commit(conn, name, "Updated shipyard", [_shipyard_change(shipyard)])


async def delete_project(pool: asyncpg.Pool, name: str) -> int:
    """Delete a project with its stages, services, resources and events.

    Returns:
        How many events were deleted with it.

    Raises:
        NotFoundError: the project does not exist.
    """
    async with pool.acquire() as conn, conn.transaction():
        await lock_project(conn, name)
        deleted_events = await delete_project_events(conn, name)
        # stages, services, commits and resource versions go by ON DELETE CASCADE
        await conn.execute("DELETE FROM projects WHERE name = $1", name)
        return deleted_events


async def get_project(pool: asyncpg.Pool | asyncpg.Connection, name: str) -> ProjectInfo | None:
    """A project with its stages and services, or None if it does not exist."""
    loaded = await _load(pool, [name])
    return loaded[0] if loaded else None


async def list_projects(
    pool: asyncpg.Pool | asyncpg.Connection, *, limit: int, offset: int = 0
) -> tuple[list[ProjectInfo], int]:
    """One page of projects, ordered by name, and the number of projects in all."""
    total: int = await pool.fetchval("SELECT count(*) FROM projects")
    names = [
        r["name"]
        for r in await pool.fetch("SELECT name FROM projects ORDER BY name LIMIT $1 OFFSET $2", limit, offset)
    ]
    return await _load(pool, names), total


async def _load(pool: asyncpg.Pool | asyncpg.Connection, names: Sequence[str]) -> list[ProjectInfo]:
    if not names:
        return []
    projects = await pool.fetch(
        "SELECT name, shipyard, shipyard_version, created_at FROM projects WHERE name = ANY($1::text[])"
        " ORDER BY name",
        list(names),
    )
    stages = await pool.fetch(
        "SELECT project, name FROM stages WHERE project = ANY($1::text[]) ORDER BY project, position",
        list(names),
    )
    services = await pool.fetch(
        "SELECT project, stage, name, created_at, deployed_image FROM services"
        " WHERE project = ANY($1::text[]) ORDER BY created_at, name",
        list(names),
    )
    last_events = await pool.fetch(
        "SELECT l.project, l.stage, l.service, l.type, l.event_id, l.shkeptncontext, l.time"
        " FROM service_last_events l JOIN services s"
        " ON s.project = l.project AND s.stage = l.stage AND s.name = l.service"
        " WHERE l.project = ANY($1::text[]) ORDER BY l.type",
        list(names),
    )
    last: dict[tuple[str, str, str], dict[str, LastEvent]] = {}
    for r in last_events:
        last.setdefault((r["project"], r["stage"], r["service"]), {})[r["type"]] = LastEvent(
            event_id=r["event_id"], keptn_context=r["shkeptncontext"], time=r["time"]
        )
    by_stage: dict[tuple[str, str], list[ServiceInfo]] = {}
    for r in services:
        key = (r["project"], r["stage"], r["name"])
        by_stage.setdefault((r["project"], r["stage"]), []).append(
            ServiceInfo(
                name=r["name"],
                created_at=r["created_at"],
                deployed_image=r["deployed_image"],
                last_event_types=last.get(key, {}),
            )
        )
    by_project: dict[str, list[StageInfo]] = {}
    for r in stages:
        by_project.setdefault(r["project"], []).append(
            StageInfo(name=r["name"], services=by_stage.get((r["project"], r["name"]), []))
        )
    return [
        ProjectInfo(
            name=r["name"],
            shipyard=r["shipyard"],
            shipyard_version=r["shipyard_version"],
            created_at=r["created_at"],
            stages=by_project.get(r["name"], []),
        )
        for r in projects
    ]


async def service_exists(pool: asyncpg.Pool | asyncpg.Connection, project: str, service: str) -> bool:
    """Whether a project has a service of that name (services exist in every stage at once)."""
    found = await pool.fetchval(
        "SELECT 1 FROM services WHERE project = $1 AND name = $2 LIMIT 1", project, service
    )
    return found is not None


async def create_service(pool: asyncpg.Pool, project: str, service: str) -> list[str]:
    """Create a service in every stage of a project.

    Returns:
        The stages it was created in, in shipyard order.

    Raises:
        NotFoundError: the project does not exist.
        ConflictError: the service exists already.
    """
    async with pool.acquire() as conn, conn.transaction():
        await lock_project(conn, project)
        exists = await conn.fetchval(
            "SELECT 1 FROM services WHERE project = $1 AND name = $2 LIMIT 1", project, service
        )
        if exists is not None:
            raise ConflictError(
                f"service '{service}' already exists in project '{project}'", field="serviceName"
            )
        stages: list[str] = [
            r["name"]
            for r in await conn.fetch("SELECT name FROM stages WHERE project = $1 ORDER BY position", project)
        ]
        await conn.execute(
            "INSERT INTO services (project, stage, name, created_at)"
            " SELECT $1, unnest($2::text[]), $3, now()",
            project,
            stages,
            service,
        )
        return stages


async def delete_service(pool: asyncpg.Pool, project: str, service: str) -> str | None:
    """Delete a service from every stage, with its resources (in a new commit).

    Returns:
        The id of the commit that deleted its resources, or None if it had none.

    Raises:
        NotFoundError: the project or the service does not exist.
    """
    async with pool.acquire() as conn, conn.transaction():
        await lock_project(conn, project)
        exists = await conn.fetchval(
            "SELECT 1 FROM services WHERE project = $1 AND name = $2 LIMIT 1", project, service
        )
        if exists is None:
            raise NotFoundError(f"service '{service}' not found in project '{project}'", field="service")
        live = await conn.fetch(
            "SELECT DISTINCT ON (stage, uri) stage, uri, content FROM resource_versions"
            " WHERE project = $1 AND service = $2 ORDER BY stage, uri, commit_seq DESC",
            project,
            service,
        )
        removed = [Change(r["stage"], service, r["uri"], None) for r in live if r["content"] is not None]
        commit = await new_commit(conn, project, f"Deleted service {service}", removed) if removed else None
        await conn.execute("DELETE FROM services WHERE project = $1 AND name = $2", project, service)
        await conn.execute(
            "DELETE FROM service_last_events WHERE project = $1 AND service = $2", project, service
        )
        return commit
