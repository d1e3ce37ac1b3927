"""Connecting to Temporal the one way every Capstan process does, and its search attributes."""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType, TaskQueueKind, TaskQueueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.service import RetryConfig, RPCError, RPCStatusCode, TLSConfig

from capstan.settings import Settings
from capstan.telemetry import temporal_interceptors
from keptn.errors import KeptnError

SEARCH_ATTRIBUTES: tuple[str, ...] = (
    "KeptnProject",
    "KeptnStage",
    "KeptnService",
    "KeptnSequence",
    "KeptnContext",
    "KeptnStatus",
)
"""The Keyword search attributes Capstan's workflows set; they must be registered on the namespace
before a workflow upserts them (an unregistered one makes the workflow task retry forever)."""

FAIL_FAST_RETRY = RetryConfig(
    initial_interval_millis=100, max_interval_millis=1000, max_elapsed_time_millis=3000, max_retries=6
)
"""Retries of the gateway's Temporal calls: a blip is ridden out, an outage is a 503 within ~3 s.

The SDK's default retries an unreachable server for up to 10 s, so while Temporal was down
every event POST hung until it came back (or the client's own timeout fired) instead of being
answered 503 at once; the client retries anyway, with the same event id."""

_log = logging.getLogger(__name__)


@functools.cache
def _runtime() -> Runtime:
    # Forward the SDK core's (Rust) log lines into stdlib logging, so they go through the same
    # structlog chain as everything else instead of straight to stderr in another format.
    forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
    logging_config = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding=forwarding
    )
    return Runtime(telemetry=TelemetryConfig(logging=logging_config))


class TemporalSettingsError(KeptnError):
    """The Temporal connection settings cannot work as given (e.g. a TLS file is missing)."""


def _pem(path: Path, setting: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TemporalSettingsError(
            f"{setting}={path}: cannot read it ({exc.strerror})", field=setting
        ) from None
    if b"-----BEGIN " not in data:
        raise TemporalSettingsError(f"{setting}={path}: not a PEM file", field=setting)
    return data


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """The ``tls`` argument of ``Client.connect`` for these settings.

    TLS is on when ``temporal_tls`` is set, when an API key is set (Temporal Cloud accepts API
    keys over TLS only), or when any ``temporal_tls_*`` file or server name is given.

    Returns:
        False (plain TCP), True (TLS verified against the system's CAs), or a ``TLSConfig`` with
        the files' contents read now, so that a bad path fails at start-up and names its setting.

    Raises:
        TemporalSettingsError: a file cannot be read or is not PEM, or only one of the client
            certificate and its key is given.
    """
    cert, key = settings.temporal_tls_cert_file, settings.temporal_tls_key_file
    if (cert is None) != (key is None):
        missing = "CAPSTAN_TEMPORAL_TLS_KEY_FILE" if key is None else "CAPSTAN_TEMPORAL_TLS_CERT_FILE"
        raise TemporalSettingsError(
            "CAPSTAN_TEMPORAL_TLS_CERT_FILE and CAPSTAN_TEMPORAL_TLS_KEY_FILE go together "
            f"(mutual TLS): {missing} is not set",
            field=missing,
        )
    ca, name = settings.temporal_tls_ca_file, settings.temporal_tls_server_name
    if ca is None and cert is None and name is None:
        return settings.temporal_tls or settings.temporal_api_key is not None
    return TLSConfig(
        server_root_ca_cert=_pem(ca, "CAPSTAN_TEMPORAL_TLS_CA_FILE") if ca is not None else None,
        client_cert=_pem(cert, "CAPSTAN_TEMPORAL_TLS_CERT_FILE") if cert is not None else None,
        client_private_key=_pem(key, "CAPSTAN_TEMPORAL_TLS_KEY_FILE") if key is not None else None,
        domain=name,
    )


async def connect_temporal(
    settings: Settings, *, lazy: bool = False, retry_config: RetryConfig | None = None
) -> Client:
    """Connect a Temporal client with Capstan's data converter and namespace.

    Args:
        settings: where to connect (``settings.temporal_target``) and which namespace to use.
        lazy: connect on the first call instead of now, so a process can start while Temporal is
            still coming up.
        retry_config: how calls retry an unreachable server; None is the SDK's default (10 s).

    Returns:
        A client using the pydantic data converter (models with datetimes round-trip).

    Raises:
        TemporalSettingsError: the TLS settings are incomplete or name unreadable files.
        RuntimeError: the server cannot be reached (only without ``lazy``).
    """
    api_key = settings.temporal_api_key
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        tls=temporal_tls(settings),
        api_key=api_key.get_secret_value() if api_key is not None else None,
        data_converter=pydantic_data_converter,
        lazy=lazy,
        retry_config=retry_config,
        runtime=_runtime(),
        # tracing (when configured): workers inherit the client's interceptors
        interceptors=temporal_interceptors(),
    )


REFUSED = frozenset(
    {RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.UNIMPLEMENTED}
)
"""Answers of a server that does not let this client manage search attributes (Temporal Cloud)."""


def _register_yourself(namespace: str, exc: RPCError) -> None:
    # Not a crash: on Temporal Cloud the operator API is refused to API keys and mTLS client
    # certificates alike, and the attributes are created once with tcld or the Cloud UI instead.
    flags = " ".join(f"--search-attribute {name}=Keyword" for name in SEARCH_ATTRIBUTES)
    _log.error(
        "cannot register search attributes: create them on the namespace yourself, or every "
        "workflow that sets one will retry its workflow task until they exist",
        extra={
            "namespace": namespace,
            "names": list(SEARCH_ATTRIBUTES),
            "type": "Keyword",
            "refused": f"{exc.status.name}: {exc.message}",
            "temporal_cloud": f"tcld namespace search-attributes add --namespace {namespace} {flags}",
            "self_hosted": f"temporal operator search-attribute create --namespace {namespace} "
            + " ".join(f"--name {name} --type Keyword" for name in SEARCH_ATTRIBUTES),
        },
    )


async def ensure_search_attributes(client: Client, namespace: str) -> bool:
    """Register Capstan's Keyword search attributes on ``namespace`` where they are missing.

    Idempotent, and safe when several workers race to do it at start-up. A server that refuses
    the operator API (Temporal Cloud) gets one error log line naming the attributes and the
    command that creates them, and the caller carries on.

    Args:
        client: a connected client.
        namespace: the namespace to register them on.

    Returns:
        True if every attribute is registered now, False if the server refused to list or add them.

    Raises:
        temporalio.service.RPCError: listing or adding failed for another reason (e.g. no such
            namespace, the server unreachable).
    """
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as exc:
        if exc.status not in REFUSED:
            raise
        _register_yourself(namespace, exc)
        return False
    missing = [name for name in SEARCH_ATTRIBUTES if name not in listed.custom_attributes]
    if not missing:
        return True
    request = AddSearchAttributesRequest(
        namespace=namespace,
        search_attributes=dict.fromkeys(missing, IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD),
    )
    try:
        await client.operator_service.add_search_attributes(request)
    except RPCError as exc:
        if exc.status in REFUSED:
            _register_yourself(namespace, exc)
            return False
        # Another worker registered them between our list and add.
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    _log.info("registered search attributes", extra={"names": missing, "namespace": namespace})
    return True


async def task_queue_pollers(client: Client, namespace: str, task_queue: str) -> set[str]:
    """Identities of the workers polling ``task_queue`` (workflow or activity tasks) recently.

    The SDK's default identity is ``<pid>@<hostname>``. Temporal keeps a poller listed for a few
    minutes after it stopped, so match on something that is new for the worker you look for
    (its pid, its container's hostname).

    Raises:
        temporalio.service.RPCError: the server could not be asked.
    """
    queue = TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL)
    identities: set[str] = set()
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        request = DescribeTaskQueueRequest(namespace=namespace, task_queue=queue, task_queue_type=kind)
        response = await client.workflow_service.describe_task_queue(request, timeout=timedelta(seconds=5))
        identities.update(poller.identity for poller in response.pollers)
    return identities
