"""The one ``Settings`` object, read from ``CAPSTAN_*`` environment variables.

Every process (``capstan up``, the gateway, the worker) builds its settings here. ``capstan up``
passes the values it resolved (the embedded database URL, the generated API token, the dev
server's address) to its children through the same environment variables, so a gateway or worker
started by hand behaves exactly like one started by ``capstan up``.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TOKEN_FILE_NAME = "api-token"
SECRET_KEY_FILE_NAME = "secret-key"


class PrometheusEndpoint(BaseModel):
    """Where one project's Prometheus is and how to log in."""

    url: str
    user: str | None = None
    password: SecretStr | None = None


class Settings(BaseSettings):
    """Configuration of a Capstan control plane.

    All fields are read from environment variables named ``CAPSTAN_<FIELD>`` (case-insensitive),
    except the Keptn-compatible ones, which also accept Keptn's own variable names.
    """

    model_config = SettingsConfigDict(env_prefix="CAPSTAN_", extra="ignore")

    data_dir: Path = Path(".capstan")
    """Where ``capstan up`` keeps the embedded PostgreSQL, the Temporal SQLite file, logs and the
    generated API token. Default ``./.capstan``."""

    api_host: str = "127.0.0.1"
    """Address the gateway binds to. Default ``127.0.0.1``."""

    api_port: int = Field(default=8080, ge=1, le=65535)
    """Port of the gateway; the API lives under ``/api``. Default 8080."""

    api_token: SecretStr | None = None
    """The admin API token sent as ``x-token``. Default: generated on first start and kept in
    ``<data_dir>/api-token``."""

    temporal_address: str | None = None
    """``host:port`` of an existing Temporal frontend. When set, ``capstan up`` starts no dev
    server. Default: unset (a dev server is started)."""

    temporal_namespace: str = "default"
    """Temporal namespace for Capstan's workflows. Default ``default``."""

    temporal_port: int = Field(default=7233, ge=1, le=65535)
    """gRPC port of the dev server ``capstan up`` starts. Default 7233."""

    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    """Port of the Temporal Web UI of that dev server. Default 8233."""

    temporal_ui_url: str | None = None
    """Base URL of the Temporal Web UI the Bridge links each sequence to. Default
    ``http://127.0.0.1:<temporal_ui_port>`` (the dev server's UI)."""

    temporal_task_queue: str = "capstan"
    """Task queue the worker polls and workflows are started on. Default ``capstan``."""

    temporal_tls: bool = False
    """Connect to Temporal over TLS, verifying the server against the system's CAs unless
    ``temporal_tls_ca_file`` is set. Implied by any other ``temporal_tls_*`` setting and by
    ``temporal_api_key``. Default false."""

    temporal_tls_ca_file: Path | None = None
    """PEM file of the CA that signed the Temporal server's certificate. Default: unset (the
    system's CAs)."""

    temporal_tls_cert_file: Path | None = None
    """PEM file of the client certificate for mutual TLS (Temporal Cloud's mTLS, a cluster with
    ``requireClientAuth``); needs ``temporal_tls_key_file``. Default: unset."""

    temporal_tls_key_file: Path | None = None
    """PEM file of the private key of ``temporal_tls_cert_file``. Default: unset."""

    temporal_tls_server_name: str | None = None
    """Name the server's certificate is checked against (and sent as SNI) when it differs from
    the host of ``temporal_address``. Default: unset (that host)."""

    temporal_api_key: SecretStr | None = None
    """API key sent as a bearer token on every Temporal call (Temporal Cloud's API-key
    authentication); turns TLS on. Default: unset."""

    database_url: SecretStr | None = None
    """PostgreSQL URL (``postgresql://user:pass@host:port/db``). When set, no embedded PostgreSQL is
    started. Default: unset (embedded PostgreSQL under ``<data_dir>/postgres``)."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Minimum level of log lines. Default ``info``."""

    log_format: Literal["json", "console"] = "json"
    """``json`` (one object a line, for machines) or ``console`` (for people). Default ``json``."""

    task_started_wait_duration: timedelta = Field(
        default=timedelta(minutes=10),
        validation_alias=AliasChoices("CAPSTAN_TASK_STARTED_WAIT_DURATION", "TASK_STARTED_WAIT_DURATION"),
    )
    """How long a task may wait for its first ``.started``/``.finished`` answer before the sequence
    times out (Keptn's ``TASK_STARTED_WAIT_DURATION``). Default 10 minutes."""

    task_finished_timeout: timedelta | None = None
    """Beyond Keptn: once a task has been answered, it must finish within this long, or its
    sequence times out (errored/fail). Unset (the default) waits forever, as Keptn did; a task's
    shipyard ``properties.timeout`` (Go duration) overrides it."""

    task_completion: Literal["keptn", "per-source"] = "keptn"
    """How a task's answers are counted: ``keptn`` (finished when #finished == #started > 0, as
    Keptn counted) or ``per-source`` (finished when every source that answered has sent a
    ``.finished``; a ``.finished`` without ``.started`` counts). Default ``keptn``."""

    uniform_integration_ttl: timedelta = Field(
        default=timedelta(minutes=1),
        gt=timedelta(0),
        validation_alias=AliasChoices("CAPSTAN_UNIFORM_INTEGRATION_TTL", "UNIFORM_INTEGRATION_TTL"),
    )
    """How long a registered integration stays without a heartbeat before it is treated as gone:
    no longer listed, and its subscriptions receive nothing (Keptn's ``UNIFORM_INTEGRATION_TTL``).
    Default 1 minute."""

    integration_log_ttl: timedelta = Field(
        default=timedelta(hours=120),
        gt=timedelta(0),
        validation_alias=AliasChoices("CAPSTAN_INTEGRATION_LOG_TTL", "LOG_TTL"),
    )
    """How long the error logs integrations send to ``/controlPlane/v1/log`` are kept (Keptn's
    ``LOG_TTL``). Default 120 hours."""

    lighthouse_enabled: bool = True
    """Whether the built-in lighthouse answers ``evaluation.triggered`` (quality gates). Turn it off
    only to let an external lighthouse answer instead. Default true."""

    approval_service_enabled: bool = True
    """Whether the built-in approval service answers ``approval`` tasks (automatic strategies,
    manual decisions by event, ``approve`` update or ``capstan approve``). Default true."""

    remediation_service_enabled: bool = True
    """Whether the built-in remediation service answers ``get-action`` tasks from
    ``remediation.yaml``. Default true."""

    sli_provider: str | None = None
    """SLI provider of projects that never received ``sh.keptn.event.monitoring.configure``
    (Keptn's ``lighthouse-config`` ConfigMap). Default: unset (such evaluations pass with score 0,
    as in Keptn)."""

    builtin_sli_providers: str = "prometheus,web"
    """Comma-separated SLI provider names the control plane answers itself (``prometheus``,
    ``web``); remove one to let an external integration of that name answer
    ``get-sli.triggered``. Default ``prometheus,web``."""

    get_sli_timeout: timedelta = Field(default=timedelta(minutes=10), gt=timedelta(0))
    """Beyond Keptn (which waited forever): how long an evaluation waits for the SLI provider's
    ``get-sli.finished`` before it finishes errored/fail. Default 10 minutes."""

    sli_query_timeout: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0))
    """Timeout of one query of a built-in SLI provider (one Prometheus query, one web GET).
    Default 30 seconds."""

    prometheus_url: str | None = None
    """Prometheus the built-in ``prometheus`` SLI provider queries, e.g. ``http://127.0.0.1:9090``
    (Keptn's ``PROMETHEUS_ENDPOINT``). Default: unset."""

    prometheus_user: str | None = None
    """User for HTTP basic authentication to ``prometheus_url``. Default: unset (no auth)."""

    prometheus_password: SecretStr | None = None
    """Password for HTTP basic authentication to ``prometheus_url``. Default: unset."""

    prometheus_endpoints: dict[str, PrometheusEndpoint] = Field(default_factory=dict)
    """Per-project Prometheus, as JSON: ``{"<project>": {"url": "...", "user": "...",
    "password": "..."}}`` (Keptn's ``prometheus-credentials-<project>`` secret). A project listed
    here uses its own; others use ``prometheus_url``. Default: none."""

    secret_key: SecretStr | None = None
    """Key that encrypts secret values at rest (Fernet: 32 url-safe base64-encoded bytes).
    Default: generated by ``capstan up`` on first start and kept in ``<data_dir>/secret-key``."""

    webhook_timeout: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0))
    """Timeout of one webhook request. Default 30 seconds."""

    webhook_max_response_bytes: int = Field(default=1024 * 1024, ge=1)
    """Largest webhook response body read; the rest is cut off. Default 1 MiB."""

    webhook_deny_list: str = ""
    """Further hosts, domains (``.example.com``) or networks (CIDR) webhooks may not call,
    comma- or space-separated, on top of the built-in deny-list (loopback, link-local, cloud
    metadata, unspecified and multicast addresses, Kubernetes' internal names, the control plane
    itself). Default: none."""

    webhook_allow_list: str = ""
    """``host:port`` entries exempt from the deny-list, comma- or space-separated (e.g. a webhook
    receiver on this machine during development). Default: none."""

    cdevents_base_url: str | None = None
    """Public URL of the control plane (e.g. ``https://capstan.example.com``), used in the ``uri``
    fields of emitted CDEvents. Default ``http://<api_host>:<api_port>``."""

    auth_failures_per_minute: int = Field(default=30, ge=1)
    """Failed authentications one client address may make per minute before it gets 429.
    Default 30."""

    metrics_token: SecretStr | None = None
    """When set, the gateway's and the worker's ``/metrics`` answer only requests with
    ``Authorization: Bearer <token>`` (Prometheus' ``authorization`` scrape setting). Default: none,
    ``/metrics`` is open like Keptn's services' metrics were."""

    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Port of the worker's HTTP server with ``/metrics`` and ``/healthz``. Default: none (no
    server; each worker replica needs a port of its own when several run on one host)."""

    worker_metrics_host: str = "127.0.0.1"
    """Address the worker's metrics server listens on (``0.0.0.0`` in a container). Default
    127.0.0.1."""

    @field_validator(
        "webhook_timeout",
        "get_sli_timeout",
        "sli_query_timeout",
        "task_started_wait_duration",
        "task_finished_timeout",
        "uniform_integration_ttl",
        "integration_log_ttl",
        mode="before",
    )
    @classmethod
    def _parse_go_duration(cls, value: object) -> object:
        # Keptn operators write Go durations ("10m", "1h30m"); accept them next to ISO 8601.
        if isinstance(value, str):
            from keptn.durations import parse_duration
            from keptn.errors import InvalidInputError

            text = value.strip()
            try:
                seconds = float(text)  # plain seconds, e.g. "90"
            except ValueError:
                seconds = None
            if seconds is not None:
                if not 0 <= seconds < float("inf"):
                    raise ValueError("must be a non-negative duration")
                return timedelta(seconds=seconds)
            try:
                return parse_duration(text)
            except InvalidInputError:
                return value  # let pydantic try ISO 8601 and report what is wrong
        return value

    @property
    def temporal_target(self) -> str:
        """The Temporal frontend to connect to: the configured address, else the dev server's."""
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def temporal_ui_base(self) -> str:
        """The Temporal Web UI's base URL, without a trailing slash."""
        return (self.temporal_ui_url or f"http://127.0.0.1:{self.temporal_ui_port}").rstrip("/")

    @property
    def builtin_sli_provider_names(self) -> frozenset[str]:
        """The SLI providers answered by the control plane itself."""
        return frozenset(name.strip() for name in self.builtin_sli_providers.split(",") if name.strip())

    @property
    def secret_key_file(self) -> Path:
        """Where a generated secret-encryption key is kept."""
        return self.data_dir / SECRET_KEY_FILE_NAME

    @property
    def token_file(self) -> Path:
        """Where a generated API token is kept."""
        return self.data_dir / TOKEN_FILE_NAME


def resolve_api_token(settings: Settings, *, create: bool = True) -> str:
    """Return the admin API token: the configured one, else the one kept in the data dir.

    With ``create`` (what ``capstan up`` does on first start) a missing token file is created with a
    fresh random token readable only by its owner.

    Raises:
        FileNotFoundError: no token is configured, none is stored and ``create`` is false.
    """
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    path = settings.token_file
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise FileNotFoundError(f"no API token: set CAPSTAN_API_TOKEN or create {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # O_EXCL so that two processes racing on first start cannot each write a different token.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token
