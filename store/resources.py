"""Versioned, immutable resources at project, stage and service level (Keptn's resource-service).

Every write (create many, update many, update one, delete one) is a new commit of the project with
a 40-hex id, which is what Keptn events carry as ``gitcommitid``. Reads return the state as of a
commit, the newest by default. Resource URIs are kept normalised: relative, ``/``-separated,
without ``.`` or ``..`` segments (``/webhook//webhook.yaml`` is ``webhook/webhook.yaml``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from keptn.errors import InvalidInputError, NotFoundError
from store._versions import PROJECT_LEVEL, SHIPYARD_URI, Change, lock_project, new_commit
from store.projects import ShipyardUpdate, apply_shipyard

URI_FIELD = "resourceURI"


@dataclass(frozen=True)
class ResourceScope:
    """Where resources live: a project, a stage of it, or a service in a stage."""

    project: str
    stage: str | None = None
    service: str | None = None

    def __post_init__(self) -> None:
        if self.service is not None and self.stage is None:
            raise ValueError("a service scope needs a stage")

    def describe(self) -> str:
        """The scope in words, for messages."""
        parts = [f"project '{self.project}'"]
        if self.stage is not None:
            parts.append(f"stage '{self.stage}'")
        if self.service is not None:
            parts.append(f"service '{self.service}'")
        return ", ".join(parts)

    @property
    def stage_key(self) -> str:
        """The stored ``stage`` column: the stage, or ``''`` at project level."""
        return self.stage if self.stage is not None else PROJECT_LEVEL

    @property
    def service_key(self) -> str:
        """The stored ``service`` column: the service, or ``''`` above service level."""
        return self.service if self.service is not None else PROJECT_LEVEL


@dataclass(frozen=True)
class Resource:
    """A resource's content as of a commit."""

    uri: str
    content: bytes
    version: str
    """The commit the resource was read at."""


def normalize_uri(uri: str) -> str:
    """The canonical form of a resource URI: no leading slash, no empty or ``.`` segments.

    Raises:
        InvalidInputError: the URI is empty, contains a ``..`` segment or a control character.
    """
    if any(ord(ch) < 0x20 for ch in uri):
        raise InvalidInputError(f"resourceURI {uri!r} contains a control character", field=URI_FIELD)
    segments = [s for s in uri.replace("\\", "/").split("/") if s not in ("", ".")]
    if ".." in segments:
        raise InvalidInputError(f"resourceURI '{uri}' must not contain '..' segments", field=URI_FIELD)
    if not segments:
        raise InvalidInputError(f"resourceURI '{uri}' names no file", field=URI_FIELD)
    return "/".join(segments)


async def _check_scope(conn: asyncpg.Connection, scope: ResourceScope, *, lock: bool) -> None:
    if lock:
        await lock_project(conn, scope.project)
    elif await conn.fetchval("SELECT 1 FROM projects WHERE name = $1", scope.project) is None:
        raise NotFoundError(f"project '{scope.project}' not found", field="project")
    if (
        scope.stage is not None
        and await conn.fetchval(
            "SELECT 1 FROM stages WHERE project = $1 AND name = $2", scope.project, scope.stage
        )
        is None
    ):
        raise NotFoundError(f"stage '{scope.stage}' not found in project '{scope.project}'", field="stage")
    if (
        scope.service is not None
        and await conn.fetchval(
            "SELECT 1 FROM services WHERE project = $1 AND stage = $2 AND name = $3",
            scope.project,
            scope.stage,
            scope.service,
        )
        is None
    ):
        raise NotFoundError(
            f"service '{scope.service}' not found in stage '{scope.stage}' of project '{scope.project}'",
            field="service",
        )


async def write_resources(
    pool: asyncpg.Pool,
    scope: ResourceScope,
    resources: Sequence[tuple[str, bytes]],
    *,
    message: str = "Updated resources",
    shipyard: ShipyardUpdate | None = None,
) -> str:
    """Create or replace resources in one commit (Keptn's create many, update many and update one).

    Args:
        pool: the pool.
        scope: where the resources live.
        resources: ``(uri, content)`` pairs; a URI given twice keeps the last content.
        message: the commit message.
        shipyard: the parsed shipyard, required when the batch writes the project-level
            ``shipyard.yaml``: the project's stages and shipyard follow it.

    Returns:
        The id of the new commit.

    Raises:
        InvalidInputError: no resources, a bad URI, or a shipyard that changes the stages.
        NotFoundError: the project, stage or service does not exist.
    """
    if not resources:
        raise InvalidInputError("resources: at least one resource is required", field="resources")
    latest: dict[str, bytes] = {}
    for uri, content in resources:
        latest[normalize_uri(uri)] = content
    writes_shipyard = scope.stage is None and SHIPYARD_URI in latest
    if writes_shipyard and shipyard is None:
        raise ValueError("writing the project's shipyard.yaml needs the parsed shipyard")
    async with pool.acquire() as conn, conn.transaction():
        await _check_scope(conn, scope, lock=True)
        if writes_shipyard and shipyard is not None:
            await apply_shipyard(conn, scope.project, shipyard)
        changes = [Change(scope.stage_key, scope.service_key, uri, body) for uri, body in latest.items()]
        return await new_commit(conn, scope.project, message, changes)


async def delete_resource(pool: asyncpg.Pool, scope: ResourceScope, uri: str) -> str:
    """Delete one resource in a new commit.

    Returns:
        The id of the new commit.

    Raises:
        InvalidInputError: a bad URI, or the project-level ``shipyard.yaml`` (delete the project).
        NotFoundError: the project, stage, service or resource does not exist.
    """
    name = normalize_uri(uri)
    if scope.stage is None and name == SHIPYARD_URI:
        raise InvalidInputError(
            "the project's shipyard.yaml cannot be deleted; update it or delete the project", field=URI_FIELD
        )
    async with pool.acquire() as conn, conn.transaction():
        await _check_scope(conn, scope, lock=True)
        if await _read(conn, scope, name, None) is None:
            raise _resource_not_found(scope, name)
        return await new_commit(
            conn, scope.project, f"Deleted {name}", [Change(scope.stage_key, scope.service_key, name, None)]
        )


def _resource_not_found(scope: ResourceScope, uri: str) -> NotFoundError:
    return NotFoundError(f"resource '{uri}' not found in {scope.describe()}", field=URI_FIELD)


async def _commit_seq(
    conn: asyncpg.Connection, project: str, commit_id: str | None
) -> tuple[int, str] | None:
    if commit_id is None:
        row = await conn.fetchrow(
            "SELECT seq, id FROM commits WHERE project = $1 ORDER BY seq DESC LIMIT 1", project
        )
    else:
        row = await conn.fetchrow(
            "SELECT seq, id FROM commits WHERE project = $1 AND id = $2", project, commit_id.lower()
        )
        if row is None:
            raise NotFoundError(
                f"gitCommitID '{commit_id}' is not a commit of project '{project}'", field="gitCommitID"
            )
    return None if row is None else (row["seq"], row["id"])


async def _read(
    conn: asyncpg.Connection, scope: ResourceScope, uri: str, commit_id: str | None
) -> Resource | None:
    at = await _commit_seq(conn, scope.project, commit_id)
    if at is None:
        return None
    content: bytes | None = await conn.fetchval(
        "SELECT content FROM resource_versions"
        " WHERE project = $1 AND stage = $2 AND service = $3 AND uri = $4 AND commit_seq <= $5"
        " ORDER BY commit_seq DESC LIMIT 1",
        scope.project,
        scope.stage_key,
        scope.service_key,
        uri,
        at[0],
    )
    return None if content is None else Resource(uri=uri, content=content, version=at[1])


async def get_resource(
    pool: asyncpg.Pool, scope: ResourceScope, uri: str, *, commit_id: str | None = None
) -> Resource:
    """One resource as of a commit (the newest one by default).

    Raises:
        InvalidInputError: a bad URI.
        NotFoundError: the project, stage, service, commit or resource does not exist.
    """
    name = normalize_uri(uri)
    async with pool.acquire() as conn:
        await _check_scope(conn, scope, lock=False)
        found = await _read(conn, scope, name, commit_id)
    if found is None:
        raise _resource_not_found(scope, name)
    return found


async def list_resources(
    pool: asyncpg.Pool, scope: ResourceScope, *, commit_id: str | None = None
) -> tuple[list[str], str | None]:
    """The URIs of the resources directly in a scope as of a commit, sorted.

    Returns:
        The URIs and the commit they were read at (None for a project without commits).

    Raises:
        NotFoundError: the project, stage, service or commit does not exist.
    """
    async with pool.acquire() as conn:
        await _check_scope(conn, scope, lock=False)
        at = await _commit_seq(conn, scope.project, commit_id)
        if at is None:
            return [], None
        rows = await conn.fetch(
            "SELECT uri FROM (SELECT DISTINCT ON (uri) uri, content FROM resource_versions"
            " WHERE project = $1 AND stage = $2 AND service = $3 AND commit_seq <= $4"
            " ORDER BY uri, commit_seq DESC) latest WHERE content IS NOT NULL ORDER BY uri",
            scope.project,
            scope.stage_key,
            scope.service_key,
            at[0],
        )
    return [r["uri"] for r in rows], at[1]


async def latest_commit(
    pool: asyncpg.Pool | asyncpg.Connection, project: str, stage: str | None = None
) -> str | None:
    """The newest commit touching a project, or the project level and one stage of it.

    Reading the project's (or that stage's) resources at this commit gives their current state;
    the sequence engine stamps task events with it as ``gitcommitid``.

    Returns:
        The commit id, or None if the project does not exist.
    """
    if stage is None:
        newest: str | None = await pool.fetchval(
            "SELECT id FROM commits WHERE project = $1 ORDER BY seq DESC LIMIT 1", project
        )
        return newest
    newest = await pool.fetchval(
        "SELECT commit_id FROM ("
        " (SELECT commit_id, commit_seq FROM resource_versions WHERE project = $1 AND stage = ''"
        "  ORDER BY commit_seq DESC LIMIT 1)"
        " UNION ALL"
        " (SELECT commit_id, commit_seq FROM resource_versions WHERE project = $1 AND stage = $2"
        "  ORDER BY commit_seq DESC LIMIT 1)"
        ") touched ORDER BY commit_seq DESC LIMIT 1",
        project,
        stage,
    )
    return newest
