"""Metric labels, the scrape token and the worker's metrics server (real HTTP on loopback)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from api.observability import RequestMetricsMiddleware
from capstan import metrics
from capstan.settings import Settings
from worker.health import MetricsServer


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("sh.keptn.event.deployment.triggered", "task.triggered"),
        ("sh.keptn.event.deployment.status.changed", "task.status.changed"),
        ("sh.keptn.event.dev.delivery.finished", "sequence.finished"),
        ("sh.keptn.log.error", "other"),
        ("not.keptn", "other"),
    ],
)
def test_event_kinds_keep_user_names_out_of_labels(event_type: str, kind: str) -> None:
    assert metrics.event_kind(event_type) == kind


def test_the_scrape_token_is_a_bearer_token() -> None:
    assert metrics.metrics_authorized(Settings(), None)
    guarded = Settings(metrics_token="s3cret")
    assert metrics.metrics_authorized(guarded, "Bearer s3cret")
    assert not metrics.metrics_authorized(guarded, "Bearer wrong")
    assert not metrics.metrics_authorized(guarded, None)
    # an empty token (compose's default) leaves /metrics open rather than locked to "Bearer "
    assert metrics.metrics_authorized(Settings(metrics_token=""), None)


def _count(method: str, route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "capstan_http_request_duration_seconds_count", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


async def test_requests_are_counted_by_route_template_never_by_path() -> None:
    inner = APIRouter(prefix="/v1")

    @inner.get("/thing/{name}")
    async def thing(name: str) -> dict[str, str]:
        return {"name": name}

    outer = APIRouter(prefix="/probe-api")
    outer.include_router(inner)
    app = FastAPI()
    app.include_router(outer)
    app.add_middleware(RequestMetricsMiddleware)
    before = _count("GET", "/probe-api/v1/thing/{name}", "200"), _count("GET", "unmatched", "404")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
        for name in ("a", "b", "c"):
            assert (await client.get(f"/probe-api/v1/thing/{name}")).status_code == 200
        assert (await client.get("/probe-api/nowhere/42")).status_code == 404
    after = _count("GET", "/probe-api/v1/thing/{name}", "200"), _count("GET", "unmatched", "404")
    assert (after[0] - before[0], after[1] - before[1]) == (3, 1)


async def test_the_worker_serves_metrics_and_health_over_http() -> None:
    server = MetricsServer(Settings(worker_metrics_port=0, metrics_token="s3cret"))
    server.start()
    try:
        metrics.PUSHES.labels("ok").inc(0)  # the family exists in every worker
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            assert (await http.get("/healthz")).text == "ok\n"
            assert (await http.get("/metrics")).status_code == 401
            assert (await http.get("/elsewhere")).status_code == 404
            scraped = await http.get("/metrics", headers={"authorization": "Bearer s3cret"})
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        names = {family.name for family in text_string_to_metric_families(scraped.text)}
        assert {"capstan_push_deliveries", "capstan_task_duration_seconds", "process_cpu_seconds"} <= names
    finally:
        server.stop()
