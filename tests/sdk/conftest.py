"""Fixtures of the SDK tests: a fake control plane and fast-ticking integrations."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from capstan.sdk import Backoff, Integration
from tests.sdk.fakes import API, TOKEN, FakeControlPlane

FAST_BACKOFF = Backoff(initial=0.01, maximum=0.05, attempts=4)

MakeIntegration = Callable[..., Integration]


@pytest.fixture
def cp() -> FakeControlPlane:
    return FakeControlPlane()


@pytest.fixture
def make_integration(cp) -> MakeIntegration:
    def make(name: str = "helm-service", **options) -> Integration:
        settings = {
            "api_url": API,
            "token": TOKEN,
            "poll_interval": 0.02,
            "heartbeat_interval": 0.05,
            "backoff": FAST_BACKOFF,
            "shutdown_grace": 1.0,
            "transport": cp.transport(),
        }
        settings.update(options)
        return Integration(name, **settings)

    return make
