"""The gateway's app factory: ``uvicorn --factory api.main:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.bridge import install_bridge
from api.deps import Services
from api.errors import install_error_handlers
from api.observability import install_observability
from api.ratelimit import AuthFailureLimiter
from api.routes import build_router
from capstan.settings import Settings, resolve_api_token
from capstan.telemetry import configure_tracing, flush_tracing
from capstan.temporal import FAIL_FAST_RETRY, connect_temporal
from keptn.errors import UnavailableError
from store.builtin_integrations import ensure_webhook_service
from store.db import create_pool, migrate

API_DESCRIPTION = """Capstan speaks Keptn v1's REST API: the same paths, bodies and errors
(`{"code", "message"}`). Every route under `/api` except `/api/health` needs the `x-token` header:
the admin token (every scope) or a scoped API token from `POST /api/v1/tokens`. A missing, unknown
or revoked token is a 401, a token without the route's scope or project a 403, too many failed
attempts from one address a 429."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway application.

    Args:
        settings: the configuration; read from the environment when omitted.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.database_url is None:
            raise UnavailableError(
                "CAPSTAN_DATABASE_URL is not set: start the gateway with `capstan up`, "
                "or point CAPSTAN_DATABASE_URL at a PostgreSQL database"
            )
        token = resolve_api_token(settings, create=False)
        # before the Temporal client is made: its tracing interceptor is chosen at connect
        configure_tracing("capstan-gateway")
        pool = await create_pool(settings.database_url.get_secret_value())
        try:
            await migrate(pool)
            await ensure_webhook_service(pool)
            # lazy: the gateway starts (and answers 503 on health) even while Temporal is still
            # coming up or restarting; the first real call connects. Calls fail fast while
            # Temporal is down, so that the client gets its 503 at once and retries.
            temporal = await connect_temporal(settings, lazy=True, retry_config=FAIL_FAST_RETRY)
            app.state.services = Services(
                settings=settings,
                pool=pool,
                temporal=temporal,
                api_token=token,
                auth_limiter=AuthFailureLimiter(settings.auth_failures_per_minute),
            )
            yield
        finally:
            await pool.close()
            flush_tracing()

    app = FastAPI(
        title="Capstan",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url="/api/swagger-ui",
        redoc_url=None,
        # FastAPI's native tracing (active only once tracing is configured): one span per request,
        # without a span per dependency, endpoint and serialization step
        telemetry={"operation_spans": False},
    )
    install_error_handlers(app)
    install_observability(app)
    app.include_router(build_router())
    install_bridge(app)
    return app
