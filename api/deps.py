"""Dependencies shared by the routers, as ``Annotated`` aliases that keep route signatures short."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from temporalio.client import Client

from api.ratelimit import AuthFailureLimiter
from capstan.settings import Settings


@dataclass
class Services:
    """What the gateway holds for its whole life: settings, the pool and the Temporal client."""

    settings: Settings
    pool: asyncpg.Pool
    temporal: Client
    api_token: str
    """The admin token (all scopes, all projects); stored tokens are checked in ``api/auth.py``."""
    auth_limiter: AuthFailureLimiter
    """Failed authentications per client address; ``create_app`` sizes it from the settings."""


def get_services(request: Request) -> Services:
    """The gateway's long-lived services, created in the app's lifespan."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_pool(services: ServicesDep) -> asyncpg.Pool:
    """The asyncpg pool of the event store."""
    return services.pool


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
