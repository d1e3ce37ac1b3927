"""The gateway's routers, one module per Keptn service the paths come from."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.auth import authenticate
from api.routes import (
    api_service,
    cdevents,
    datastore,
    dora,
    evaluations,
    health,
    integration_logs,
    projects,
    resources,
    secrets,
    sequence_control,
    sequences,
    tokens,
    triggered_events,
    uniform,
)
from api.schemas.common import error_responses


def build_router() -> APIRouter:
    """All routes; everything under ``/api`` except health requires the ``x-token`` header.

    The router authenticates every request (401/429); each route then declares the scope it
    needs (``api.auth.scoped``), which gives 403.
    """
    router = APIRouter()
    router.include_router(health.router)
    protected = APIRouter(
        prefix="/api", dependencies=[Depends(authenticate)], responses=error_responses(401, 403, 429)
    )
    protected.include_router(api_service.router)
    protected.include_router(datastore.router)
    protected.include_router(dora.router)
    protected.include_router(projects.router)
    protected.include_router(evaluations.router)
    protected.include_router(resources.router)
    protected.include_router(sequences.router)
    protected.include_router(sequence_control.router)
    protected.include_router(uniform.router)
    protected.include_router(triggered_events.router)
    protected.include_router(integration_logs.router)
    protected.include_router(tokens.router)
    protected.include_router(secrets.router)
    protected.include_router(cdevents.router)
    router.include_router(protected)
    return router
