"""Keptn's secret-service: ``/api/secrets/v1/secret`` and ``/api/secrets/v1/scope``.

``GET /secret`` lists secrets with their keys (optionally of one ``name`` and/or ``scope``),
``POST /secret`` creates one (409 if it exists), ``PUT /secret`` replaces the values of one (404 if
missing), ``DELETE /secret?name=&scope=`` deletes one (404 if missing) and ``GET /scope`` lists the
scopes. A secret is identified by scope and name; scope defaults to ``keptn-default``.

Values go in and never come out: every answer carries names, scopes and keys only (Keptn echoed
the values of a write). The one exception is ``GET /secret/values`` for the job executor: only
scope ``keptn-job-executor-service``, only with the token scope ``secrets:use``.

Writing needs the secret key (``CAPSTAN_SECRET_KEY`` or the key file
``capstan up`` generates); without one, ``POST``/``PUT`` answer 503 saying so, while listing and
deleting, which decrypt nothing, keep working.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel

from api.auth import scoped
from api.deps import PoolDep, ServicesDep
from api.schemas.common import ErrorBody, error_responses
from api.schemas.secrets import ScopesOut, SecretBody, SecretOut, SecretsOut
from api.schemas.uniform import EmptyBody
from capstan.scopes import Scope
from capstan.secret_box import SecretBox, load_secret_box
from keptn.errors import ForbiddenError
from keptn.secrets import DEFAULT_SCOPE, validate_scope, validate_secret, validate_secret_name
from store import secrets as secret_store
from store.secrets import SecretInfo

router = APIRouter(prefix="/secrets/v1", tags=["secret-service"])

SECRET = "/secret"

# Secrets are shared by scope, not project: a token restricted to a project gets 403 here.
_READ = scoped(Scope.SECRETS_READ, all_projects=True)
_WRITE = scoped(Scope.SECRETS_WRITE, all_projects=True)

_NO_KEY: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorBody,
        "description": "PostgreSQL is unavailable, or no secret key is configured (CAPSTAN_SECRET_KEY)",
    }
}


def _responses(*codes: int, needs_key: bool = False) -> dict[int | str, dict[str, Any]]:
    return {**error_responses(*codes), **(_NO_KEY if needs_key else {})}


def get_secret_box(request: Request, services: ServicesDep) -> SecretBox:
    """The box of the configured secret key, opened once per app.

    Raises:
        UnavailableError: no usable key is configured (503 with a message saying how to set one).
    """
    box: SecretBox | None = getattr(request.app.state, "secret_box", None)
    if box is None:
        # Not cached while missing: a key file written later (a `capstan up` elsewhere) is picked up.
        box = load_secret_box(services.settings)
        request.app.state.secret_box = box
    return box


SecretBoxDep = Annotated[SecretBox, Depends(get_secret_box)]

NameQuery = Annotated[str, Query(description="the secret name")]
ScopeQuery = Annotated[str, Query(description="the secret's scope")]


def _out(info: SecretInfo) -> SecretOut:
    return SecretOut(name=info.name, scope=info.scope, keys=info.keys)


@router.get(SECRET, response_model=SecretsOut, responses=_responses(400, 401, 503), dependencies=[_READ])
async def list_secrets(
    pool: PoolDep,
    name: Annotated[str | None, Query(description="only secrets of this name")] = None,
    scope: Annotated[str | None, Query(description="only secrets of this scope")] = None,
) -> SecretsOut:
    """Secrets with their scopes and keys; never their values."""
    # An empty filter is no filter, as an absent one.
    found = await secret_store.list_secrets(
        pool,
        name=validate_secret_name(name, field="name") if name else None,
        scope=validate_scope(scope, field="scope") if scope else None,
    )
    return SecretsOut(Secrets=[_out(info) for info in found])


@router.post(
    SECRET,
    status_code=status.HTTP_201_CREATED,
    response_model=SecretOut,
    responses=_responses(400, 401, 409, needs_key=True),
    dependencies=[_WRITE],
)
async def create_secret(pool: PoolDep, box: SecretBoxDep, body: SecretBody) -> SecretOut:
    """Create a secret; the answer names its keys, not its values."""
    secret = validate_secret(body.name, body.scope, body.data)
    return _out(await secret_store.create_secret(pool, box, secret))


@router.put(
    SECRET,
    response_model=SecretOut,
    responses=_responses(400, 401, 404, needs_key=True),
    dependencies=[_WRITE],
)
async def update_secret(pool: PoolDep, box: SecretBoxDep, body: SecretBody) -> SecretOut:
    """Replace all values of a secret; keys left out are removed."""
    secret = validate_secret(body.name, body.scope, body.data)
    return _out(await secret_store.update_secret(pool, box, secret))


@router.delete(
    SECRET, response_model=EmptyBody, responses=_responses(400, 401, 404, 503), dependencies=[_WRITE]
)
async def delete_secret(pool: PoolDep, name: NameQuery, scope: ScopeQuery = DEFAULT_SCOPE) -> EmptyBody:
    """Delete a secret (an absent or empty scope is keptn-default)."""
    await secret_store.delete_secret(
        pool, validate_secret_name(name, field="name"), validate_scope(scope or DEFAULT_SCOPE, field="scope")
    )
    return EmptyBody()


EXECUTOR_SCOPE = "keptn-job-executor-service"
"""The one scope whose values leave the gateway: for ``capstan executor`` (docs/executor.md)."""
_USE = scoped(Scope.SECRETS_USE, all_projects=True)


class SecretValuesOut(BaseModel):
    """A secret with its values (``GET /secret/values``, scope ``keptn-job-executor-service`` only)."""

    name: str
    scope: str
    data: dict[str, str]

    def __repr__(self) -> str:
        return f"SecretValuesOut(name={self.name!r}, scope={self.scope!r}, keys={sorted(self.data)!r})"


@router.get(
    SECRET + "/values",
    response_model=SecretValuesOut,
    responses=_responses(400, 401, 403, 404, needs_key=True),
    dependencies=[_USE],
)
async def read_secret_values(
    pool: PoolDep, box: SecretBoxDep, name: NameQuery, scope: ScopeQuery = EXECUTOR_SCOPE
) -> SecretValuesOut:
    """The values of a secret of scope keptn-job-executor-service, for the job executor (Capstan's).

    Unlike Keptn's secret API, which never returned values, this lets an execution plane outside
    the control plane's machine read the secrets its jobs need (Keptn's job executor read them
    from its Kubernetes namespace); only that one scope, and only with ``secrets:use``.
    """
    scope = validate_scope(scope or EXECUTOR_SCOPE, field="scope")
    if scope != EXECUTOR_SCOPE:
        raise ForbiddenError(f"only secrets of scope '{EXECUTOR_SCOPE}' can be read", field="scope")
    name = validate_secret_name(name, field="name")
    return SecretValuesOut(
        name=name, scope=scope, data=await secret_store.read_secret_values(pool, box, name, scope)
    )


@router.get("/scope", response_model=ScopesOut, responses=_responses(401, 503), dependencies=[_READ])
async def list_scopes(pool: PoolDep) -> ScopesOut:
    """Keptn's default scopes and every scope a secret uses."""
    return ScopesOut(scopes=await secret_store.list_scopes(pool))
