"""The gateway's routers, one module per Keptn service the paths come from."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import require_token
from api.routes import (
    api_service,
    datastore,
    evaluations,
    health,
    integration_logs,
    projects,
    resources,
    sequence_control,
    sequences,
    triggered_events,
    uniform,
)


def build_router() -> APIRouter:
    """All routes; everything under ``/api`` except health requires the ``x-token`` header."""
    router = APIRouter()
    router.include_router(health.router)
    protected = APIRouter(prefix="/api", dependencies=[Depends(require_token)])
    protected.include_router(api_service.router)
    protected.include_router(datastore.router)
    protected.include_router(projects.router)
    protected.include_router(evaluations.router)
    protected.include_router(resources.router)
    protected.include_router(sequences.router)
    protected.include_router(sequence_control.router)
    protected.include_router(uniform.router)
    protected.include_router(triggered_events.router)
    protected.include_router(integration_logs.router)
    router.include_router(protected)
    return router
