"""The scopes an API token can carry: the one list the gateway, the token API and the CLI share.

Keptn v1 had a single shared token that could do everything; its roadmap promised scoped tokens
and its swagger descriptions already named OAuth scopes (``events:read``, ``events:write``,
``projects:read`` …). Capstan uses those names where Keptn had them. A scope never implies
another, except :attr:`Scope.ADMIN`, which implies every scope (the admin token from the settings
is an ``admin`` token for all projects).

Which route needs which scope is declared on the route itself (``api/auth.py``'s ``scoped``); a
test walks every route and fails if one under ``/api`` declares none.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """One permission of an API token."""

    EVENTS_READ = "events:read"
    """Read events, open ``.triggered`` events and the sequence views."""
    EVENTS_WRITE = "events:write"
    """Send events (except ``approval.finished``), trigger evaluations, pause/resume/abort sequences."""
    APPROVALS_WRITE = "approvals:write"
    """Send ``sh.keptn.event.approval.finished``: approve or decline (``capstan approve``)."""
    PROJECTS_READ = "projects:read"
    """Read projects, stages, services and resources."""
    PROJECTS_WRITE = "projects:write"
    """Create, update and delete projects, services and resources."""
    INTEGRATIONS_READ = "integrations:read"
    """Read uniform registrations, subscriptions and integration error logs."""
    INTEGRATIONS_WRITE = "integrations:write"
    """Register integrations, heartbeat, manage subscriptions, write and delete error logs."""
    SECRETS_READ = "secrets:read"
    """List secret names, scopes and keys (never values)."""
    SECRETS_WRITE = "secrets:write"
    """Create, update and delete secrets."""
    SECRETS_USE = "secrets:use"
    """Read the values of secrets of scope ``keptn-job-executor-service`` (``capstan executor``)."""
    ADMIN = "admin"
    """Everything, including creating, listing and revoking API tokens."""


ALL_SCOPES: tuple[str, ...] = tuple(scope.value for scope in Scope)
"""Every scope name, in the order of :class:`Scope` (for help texts and validation messages)."""


def parse_scope(name: str) -> Scope | None:
    """The scope of this name (surrounding blanks ignored, case-sensitive), or None if unknown."""
    try:
        return Scope(name.strip())
    except ValueError:
        return None
