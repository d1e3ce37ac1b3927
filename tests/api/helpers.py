"""Small helpers shared by the API tests."""

from __future__ import annotations

import base64

import httpx

from tests.store.factories import SHIPYARD

PROJECTS = "/api/controlPlane/v1/project"


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def assert_error(response: httpx.Response, status: int, *needles: str) -> None:
    """A Keptn error body with this status whose message contains every needle."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == status
    for needle in needles:
        assert needle in body["message"], (needle, body["message"])


async def create_project(api: httpx.AsyncClient, name: str = "sockshop", *services: str) -> None:
    response = await api.post(PROJECTS, json={"name": name, "shipyard": b64(SHIPYARD)})
    assert response.status_code == 201, response.text
    for service in services:
        created = await api.post(f"{PROJECTS}/{name}/service", json={"serviceName": service})
        assert created.status_code == 200, created.text
