"""The gateway's Prometheus side: a request-metrics middleware and ``GET /metrics``.

Requests are counted by route *template* (``/api/v1/project/{project}``), never by raw path, so
that the number of series stays bounded; a request no route matched counts as ``unmatched``.
"""

from __future__ import annotations

import time

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import ServicesDep
from capstan import metrics

UNMATCHED = "unmatched"
METRICS_PATH = "/metrics"

router = APIRouter(include_in_schema=False)
_log = structlog.get_logger(__name__)


def route_template(scope: Scope) -> str:
    """The matched route's full path template, ``unmatched`` when no route matched.

    FastAPI keeps included routers' routes unprefixed (``scope["route"].path`` is ``/v1/event``
    under ``/api``); the effective route it records for the request has the whole template.
    """
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    template = getattr(effective, "path_format", None) or getattr(effective, "path", None)
    if not isinstance(template, str):
        template = getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


class RequestMetricsMiddleware:
    """Observe every HTTP request's duration by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request; label it once the router has matched it (``scope["route"]``)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # what the client gets if the app fails before it answers

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            metrics.HTTP_REQUESTS.labels(scope["method"], route_template(scope), str(status)).observe(
                time.perf_counter() - began
            )


@router.get(METRICS_PATH)
async def prometheus_metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus text exposition of the gateway's metrics (401 without the metrics token if one is set)."""
    if not metrics.metrics_authorized(services.settings, request.headers.get("authorization")):
        return Response(
            '{"code": 401, "message": "missing or wrong bearer token (CAPSTAN_METRICS_TOKEN)"}',
            status_code=401,
            media_type="application/json",
            headers={"www-authenticate": "Bearer"},
        )
    try:
        await metrics.refresh_sequences(services.pool)
    except Exception as exc:  # the store is down: still serve the other metrics
        _log.warning("sequences by state not read", error=repr(exc))
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


def install_observability(app: FastAPI) -> None:
    """Add the request metrics middleware and ``GET /metrics`` to the gateway."""
    app.add_middleware(RequestMetricsMiddleware)
    app.include_router(router)
