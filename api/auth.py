"""Who is calling, and what they may do: API tokens, scopes and project restriction.

Every request under ``/api`` (but ``/api/health``) carries ``x-token``. It is either the admin
token from the settings (``CAPSTAN_API_TOKEN`` or ``<data dir>/api-token``: every scope, every
project, exactly what Keptn's single token was) or a stored token ``cap_<id>_<secret>`` made with
``POST /api/v1/tokens`` (``store/tokens.py``), which carries scopes and perhaps one project.

* 401: no token, an unknown one, a wrong secret, or a revoked token: "fix your token".
* 403: a valid token without the scope the route declares, or restricted to another project:
  "ask for a token with more rights".
* 429: too many 401s from one client address within a minute (``api/ratelimit.py``).

Each route declares what it needs with :func:`scoped` (or :func:`any_valid_token`); a test walks
the app and fails for a route under ``/api`` that declares nothing. Routes that name a project
call :meth:`Principal.check_project` (or :meth:`Principal.project_filter` for lists), so a token
restricted to project P gets 403 for any other project and lists only P's items.
"""

# No ``from __future__ import annotations``: FastAPI reads the annotations of
# ``ScopeRequirement.__call__`` at runtime, and an instance has no ``__globals__`` to resolve
# string annotations from.
import hmac
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

from api.deps import Services, ServicesDep
from capstan.scopes import Scope
from keptn.errors import ForbiddenError, UnauthorizedError
from store import tokens as token_store

log = structlog.get_logger(__name__)

APPROVAL_FINISHED = "sh.keptn.event.approval.finished"
"""The one event type that needs ``approvals:write`` instead of ``events:write``."""

# auto_error=False: a missing header must give Keptn's 401 body, not FastAPI's 403.
_token_header = APIKeyHeader(name="x-token", auto_error=False, description="Capstan API token")


@dataclass(frozen=True)
class Principal:
    """The caller, as its token describes it."""

    name: str
    """The token's name (``admin`` for the admin token from the settings)."""
    token_id: str | None
    """The stored token's id; None for the admin token."""
    scopes: frozenset[str]
    project: str | None = None
    """The one project the token may touch; None: every project."""

    def describe(self) -> str:
        """How messages name the token (never with its secret)."""
        return "the admin token" if self.token_id is None else f"API token '{self.name}' ({self.token_id})"

    def allows(self, scope: Scope) -> bool:
        """Whether the token carries ``scope`` (``admin`` carries all)."""
        return Scope.ADMIN in self.scopes or scope in self.scopes

    def require(self, *scopes: Scope, action: str = "this request") -> None:
        """Insist on one of ``scopes``.

        Raises:
            ForbiddenError: the token carries none of them.
        """
        if any(self.allows(scope) for scope in scopes):
            return
        needed = " or ".join(f"'{scope.value}'" for scope in scopes)
        held = ", ".join(sorted(self.scopes)) or "none"
        raise ForbiddenError(
            f"{self.describe()} lacks the scope {needed} that {action} needs (it has: {held})",
            field="x-token",
        )

    def check_project(self, project: str | None, *, field: str = "project") -> None:
        """Insist that a restricted token touches only its project.

        Args:
            project: the project the request names; None when it names none.
            field: the parameter or field that named it, for the message.

        Raises:
            ForbiddenError: the token is restricted to another project, or the request names none.
        """
        if self.project is None or project == self.project:
            return
        if project is None:
            raise ForbiddenError(
                f"{self.describe()} is restricted to project '{self.project}': {field} must name it",
                field=field,
            )
        raise ForbiddenError(
            f"{self.describe()} is restricted to project '{self.project}' and cannot access project "
            f"'{project}' ({field})",
            field=field,
        )

    def project_filter(self, given: str | None, *, field: str = "project") -> str | None:
        """The project a list must be limited to: ``given``, or the token's project when it has one.

        Raises:
            ForbiddenError: a restricted token asked for another project.
        """
        if given:
            self.check_project(given, field=field)
            return given
        return self.project

    def require_all_projects(self, action: str = "this request") -> None:
        """Insist on an unrestricted token, for things that belong to no single project.

        Raises:
            ForbiddenError: the token is restricted to a project.
        """
        if self.project is not None:
            raise ForbiddenError(
                f"{self.describe()} is restricted to project '{self.project}', but {action} concerns "
                "every project and needs a token that is not restricted to one",
                field="x-token",
            )


ADMIN_PRINCIPAL = Principal(name="admin", token_id=None, scopes=frozenset({Scope.ADMIN.value}))


def _invalid() -> UnauthorizedError:
    return UnauthorizedError("invalid API token in x-token header", field="x-token")


async def principal_for_token(services: Services, token: str) -> Principal:
    """The caller a token stands for (the admin token, or a stored, unrevoked API token).

    Raises:
        UnauthorizedError: an unknown, wrong or revoked token.
    """
    # Constant-time comparison so the token cannot be guessed byte by byte from response times.
    if hmac.compare_digest(token.encode(), services.api_token.encode()):
        return ADMIN_PRINCIPAL
    parts = token_store.parse_token(token)
    if parts is None:
        raise _invalid()
    stored = await token_store.find_token(services.pool, parts.id)
    if stored is None or not hmac.compare_digest(stored.secret_hash, token_store.hash_secret(parts.secret)):
        raise _invalid()
    info = stored.info
    if info.revoked_at is not None:
        raise UnauthorizedError(f"the API token in x-token header ({info.id}) was revoked", field="x-token")
    return Principal(name=info.name, token_id=info.id, scopes=frozenset(info.scopes), project=info.project)


async def authenticate(
    request: Request, services: ServicesDep, token: Annotated[str | None, Depends(_token_header)]
) -> Principal:
    """The caller of this request, from its ``x-token``.

    Raises:
        HTTPException: 429, the client address failed too often within the last minute.
        UnauthorizedError: no token, an unknown or wrong one, or a revoked one.
    """
    address = request.client.host if request.client else "unknown"
    limiter = services.auth_limiter
    wait = limiter.retry_after(address)
    if wait is not None:
        raise HTTPException(
            status_code=429,
            detail=f"too many failed authentication attempts from {address}; retry in {wait} seconds",
            headers={"Retry-After": str(wait)},
        )
    if not token:
        # Not counted: a client without a token is misconfigured, not guessing.
        raise UnauthorizedError("missing x-token header", field="x-token")
    try:
        return await principal_for_token(services, token)
    except UnauthorizedError as exc:
        limiter.record_failure(address)
        log.info("authentication failed", address=address, path=request.url.path, reason=exc.message)
        raise


@dataclass(frozen=True)
class ScopeRequirement:
    """The dependency a route declares its scope with; FastAPI calls it per request.

    Attributes:
        scopes: any one of these suffices; empty means any valid token.
        all_projects: the route concerns no single project: restricted tokens get 403.
    """

    scopes: tuple[Scope, ...]
    all_projects: bool = False

    async def __call__(self, principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        """Check the caller against the requirement and hand it to the route."""
        if self.scopes:
            principal.require(*self.scopes)
        if self.all_projects:
            principal.require_all_projects()
        return principal


def scoped(*scopes: Scope, all_projects: bool = False) -> Any:
    """``Depends`` of a route that needs one of ``scopes`` (returns the :class:`Principal`).

    Use it as a parameter, ``principal: Annotated[Principal, scoped(Scope.EVENTS_READ)]``, or in
    the decorator's ``dependencies`` when the route needs no principal.
    """
    if not scopes:
        raise ValueError("scoped() needs at least one scope; use any_valid_token() for none")
    return Depends(ScopeRequirement(scopes, all_projects))


def any_valid_token() -> Any:
    """``Depends`` of a route every valid token may call (Keptn's ``/v1/auth`` and ``/v1/metadata``)."""
    return Depends(ScopeRequirement(()))


def authorize_event(principal: Principal, event_type: str, data: dict[str, Any]) -> None:
    """Check that the caller may send an event of this type and project.

    ``approval.finished`` needs ``approvals:write`` (so an integration with ``events:write`` cannot
    approve), every other type ``events:write``; a restricted token may only send events whose
    ``data.project`` is its project.

    Raises:
        ForbiddenError: the scope is missing or the project is not the token's.
    """
    if event_type == APPROVAL_FINISHED:
        principal.require(Scope.APPROVALS_WRITE, action=f"sending {APPROVAL_FINISHED}")
    else:
        principal.require(Scope.EVENTS_WRITE, action="sending events")
    project = data.get("project")
    principal.check_project(project if isinstance(project, str) and project else None, field="data.project")
