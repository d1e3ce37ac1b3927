"""Which SLI provider a project's evaluations ask (Keptn's ``lighthouse-config-<project>``)."""

from __future__ import annotations

import asyncpg

from keptn.errors import NotFoundError


async def set_sli_provider(pool: asyncpg.Pool | asyncpg.Connection, project: str, provider: str) -> None:
    """Remember the SLI provider of a project (``sh.keptn.event.monitoring.configure``).

    Raises:
        NotFoundError: the project does not exist.
    """
    try:
        await pool.execute(
            "INSERT INTO monitoring_configs (project, sli_provider) VALUES ($1, $2)"
            " ON CONFLICT (project) DO UPDATE SET sli_provider = EXCLUDED.sli_provider, updated_at = now()",
            project,
            provider,
        )
    except asyncpg.ForeignKeyViolationError as err:
        raise NotFoundError(f"project '{project}' not found (data.project)", field="data.project") from err


async def get_sli_provider(pool: asyncpg.Pool | asyncpg.Connection, project: str) -> str | None:
    """The SLI provider configured for a project, or None."""
    provider: str | None = await pool.fetchval(
        "SELECT sli_provider FROM monitoring_configs WHERE project = $1", project
    )
    return provider
