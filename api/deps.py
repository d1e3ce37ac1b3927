"""Dependencies shared by the routers, as ``Annotated`` aliases that keep route signatures short."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from temporalio.client import Client

from capstan.settings import Settings
from keptn.errors import UnauthorizedError


@dataclass
class Services:
    """What the gateway holds for its whole life: settings, the pool and the Temporal client."""

    settings: Settings
    pool: asyncpg.Pool
    temporal: Client
    api_token: str


def get_services(request: Request) -> Services:
    """The gateway's long-lived services, created in the app's lifespan."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_pool(services: ServicesDep) -> asyncpg.Pool:
    """The asyncpg pool of the event store."""
    return services.pool


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]

# auto_error=False: a missing header must give Keptn's 401 body, not FastAPI's 403.
_token_header = APIKeyHeader(name="x-token", auto_error=False, description="Capstan API token")


def require_token(services: ServicesDep, token: Annotated[str | None, Depends(_token_header)]) -> None:
    """Reject the request unless it carries the API token in ``x-token``.

    Raises:
        UnauthorizedError: the header is missing or the token is wrong.
    """
    if not token:
        raise UnauthorizedError("missing x-token header", field="x-token")
    # Constant-time comparison so the token cannot be guessed byte by byte from response times.
    if not hmac.compare_digest(token.encode(), services.api_token.encode()):
        raise UnauthorizedError("invalid API token in x-token header", field="x-token")
