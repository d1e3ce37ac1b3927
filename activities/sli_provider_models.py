"""Inputs, outputs and configuration of the built-in SLI providers' ``fetch_slis`` activity."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, SecretStr

if TYPE_CHECKING:
    from capstan.settings import Settings

FETCH_SLIS_ACTIVITY = "fetch_slis"


class PrometheusEndpoint(BaseModel):
    """Where a Prometheus is and how to log in (basic auth when ``user`` is set)."""

    model_config = ConfigDict(from_attributes=True)

    url: str
    """Base URL, e.g. ``http://127.0.0.1:9090``."""
    user: str | None = None
    """Basic-auth user. Default: none (no auth)."""
    password: SecretStr | None = None
    """Basic-auth password. Default: none (empty)."""


class SLIProviderConfig(BaseModel):
    """How the built-in SLI providers reach their data sources."""

    model_config = ConfigDict(from_attributes=True)

    prometheus_url: str | None = None
    """Prometheus of projects without their own endpoint. Default: none."""
    prometheus_user: str | None = None
    """Basic-auth user for ``prometheus_url``. Default: none."""
    prometheus_password: SecretStr | None = None
    """Basic-auth password for ``prometheus_url``. Default: none."""
    prometheus_endpoints: dict[str, PrometheusEndpoint] = {}
    """Per-project Prometheus, overriding ``prometheus_url``. Default: none."""
    query_timeout: timedelta = timedelta(seconds=30)
    """Timeout of one query (one Prometheus query, one web GET). Default 30 s."""
    max_concurrent_queries: int = 10
    """How many queries of one ``fetch_slis`` run at once. Default 10."""

    def prometheus_for(self, project: str) -> PrometheusEndpoint | None:
        """The project's Prometheus: its own endpoint, else the default, else None."""
        if project in self.prometheus_endpoints:
            return self.prometheus_endpoints[project]
        if not self.prometheus_url:
            return None
        return PrometheusEndpoint(
            url=self.prometheus_url, user=self.prometheus_user, password=self.prometheus_password
        )


def sli_provider_config(settings: Settings) -> SLIProviderConfig:
    """The SLI providers' configuration from Capstan's settings."""
    return SLIProviderConfig(
        prometheus_url=settings.prometheus_url,
        prometheus_user=settings.prometheus_user,
        prometheus_password=settings.prometheus_password,
        prometheus_endpoints=settings.prometheus_endpoints,  # validated by attribute (from_attributes)
        query_timeout=settings.sli_query_timeout,
    )


class FetchSLIsInput(BaseModel):
    """Input of ``fetch_slis``."""

    provider: str
    """``prometheus`` or ``web``."""
    event: dict[str, Any]
    """The stored ``get-sli.triggered`` wire event (``data.get-sli`` holds start, end,
    indicators and customFilters; ``gitcommitid`` the commit to read ``sli.yaml`` at)."""


class FetchSLIsResult(BaseModel):
    """Output of ``fetch_slis``: the fields of ``get-sli.finished`` it decides."""

    result: str
    """``pass`` (every SLI fetched), ``warning`` (some failed) or ``fail`` (all failed, or errored)."""
    status: str
    """``succeeded``, or ``errored`` when no SLI could even be attempted (no sli.yaml, ...)."""
    message: str = ""
    """Why the result is not ``pass``; empty otherwise."""
    indicator_values: list[dict[str, Any]] = []
    """Keptn ``SLIResult``s in the order requested: ``{metric, value, success, message}``."""
