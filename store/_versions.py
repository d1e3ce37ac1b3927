"""Commits of a project's resources, shared by the project and resource modules.

Every write to a project's resources is a commit: a row in ``commits`` with a git-like 40-hex id
and one ``resource_versions`` row per resource it changed. Writers hold the project's row lock for
the whole transaction, so commits of one project get increasing ``seq`` values in the order they
become visible, and the state "as of" a commit can never change afterwards.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from keptn.errors import NotFoundError

SHIPYARD_URI = "shipyard.yaml"
"""Where a project's shipyard lives among its project-level resources."""

PROJECT_LEVEL = ""
"""The ``stage``/``service`` value of rows that are not scoped to a stage or service."""


@dataclass(frozen=True)
class Change:
    """One resource written (``content``) or deleted (``content`` None) by a commit."""

    stage: str
    service: str
    uri: str
    content: bytes | None


async def lock_project(conn: asyncpg.Connection, project: str) -> None:
    """Lock a project's row until the transaction ends.

    Raises:
        NotFoundError: the project does not exist.
    """
    found = await conn.fetchval("SELECT 1 FROM projects WHERE name = $1 FOR UPDATE", project)
    if found is None:
        raise NotFoundError(f"project '{project}' not found", field="project")


def _commit_id(parent: str | None, project: str, message: str, changes: Sequence[Change]) -> str:
    # Like git: a digest of the parent and the content, plus a nonce so that two identical writes
    # still get different ids.
    digest = hashlib.sha1(usedforsecurity=False)
    for part in (parent or "", project, message, uuid.uuid4().hex):
        digest.update(part.encode() + b"\0")
    for change in changes:
        digest.update(f"{change.stage}\0{change.service}\0{change.uri}\0".encode())
        digest.update(
            hashlib.sha1(change.content, usedforsecurity=False).digest()
            if change.content is not None
            else b"-"
        )
    return digest.hexdigest()


async def new_commit(conn: asyncpg.Connection, project: str, message: str, changes: Sequence[Change]) -> str:
    """Record a commit; the caller holds the project's lock (:func:`lock_project`).

    Args:
        conn: a connection inside the caller's transaction.
        project: the project the commit belongs to.
        message: what the commit did, for people.
        changes: the resources written or deleted; at most one per (stage, service, uri).

    Returns:
        The 40-hex commit id.
    """
    parent: str | None = await conn.fetchval(
        "SELECT id FROM commits WHERE project = $1 ORDER BY seq DESC LIMIT 1", project
    )
    commit_id = _commit_id(parent, project, message, changes)
    seq: int = await conn.fetchval(
        "INSERT INTO commits (id, project, message) VALUES ($1, $2, $3) RETURNING seq",
        commit_id,
        project,
        message,
    )
    await conn.executemany(
        "INSERT INTO resource_versions (project, stage, service, uri, commit_seq, commit_id, content)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [(project, c.stage, c.service, c.uri, seq, commit_id, c.content) for c in changes],
    )
    return commit_id
