"""Health against the real dependencies."""

from __future__ import annotations

import httpx
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from capstan.settings import Settings


async def test_health_is_ok_when_postgres_and_temporal_are_up(db_url: str, temporal_env: WorkflowEnvironment):
    target = temporal_env.client.service_client.config.target_host
    app = create_app(Settings(database_url=db_url, api_token="t", temporal_address=target))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            response = await client.get("/api/health")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
