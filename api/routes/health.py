"""Health of the gateway and of what it depends on; needs no token."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import ServicesDep

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    """Health of the gateway and each dependency."""

    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"]
    temporal: Literal["ok", "unavailable"]


async def _database_ok(services: ServicesDep) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await services.pool.fetchval("SELECT 1")
        return True
    except Exception:  # any failure here means "not usable now", which is what we report
        return False


async def _temporal_ok(services: ServicesDep) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return await services.temporal.service_client.check_health()
    except Exception:
        return False


@router.get(
    "/api/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "a dependency is down"}},
)
@router.get("/health", response_model=Health, include_in_schema=False)
async def health(services: ServicesDep) -> JSONResponse:
    """Report whether PostgreSQL and Temporal are reachable: 200 when both are, else 503."""
    database, temporal = await asyncio.gather(_database_ok(services), _temporal_ok(services))
    body = Health(
        status="ok" if database and temporal else "unavailable",
        database="ok" if database else "unavailable",
        temporal="ok" if temporal else "unavailable",
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)
