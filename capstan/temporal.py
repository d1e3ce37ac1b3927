"""Connecting to Temporal the one way every Capstan process does, and its search attributes."""

from __future__ import annotations

import functools
import logging
from datetime import timedelta

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
from temporalio.service import RetryConfig, RPCError, RPCStatusCode

from capstan.settings import Settings

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
        RuntimeError: the server cannot be reached (only without ``lazy``).
    """
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
        retry_config=retry_config,
        runtime=_runtime(),
    )


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register Capstan's Keyword search attributes on ``namespace`` where they are missing.

    Idempotent, and safe when several workers race to do it at start-up.

    Args:
        client: a connected client.
        namespace: the namespace to register them on.

    Raises:
        temporalio.service.RPCError: listing or adding failed (e.g. no permission on Temporal Cloud,
            where attributes are created with ``tcld`` or the Cloud UI instead).
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = [name for name in SEARCH_ATTRIBUTES if name not in listed.custom_attributes]
    if not missing:
        return
    request = AddSearchAttributesRequest(
        namespace=namespace,
        search_attributes=dict.fromkeys(missing, IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD),
    )
    try:
        await client.operator_service.add_search_attributes(request)
    except RPCError as exc:
        # Another worker registered them between our list and add.
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    _log.info("registered search attributes", extra={"names": missing, "namespace": namespace})


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
