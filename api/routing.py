"""Handing stored events to their Keptn context's workflow.

A sequence trigger starts the context workflow or joins the running one (signal-with-start); an
integration's ``.started``/``.finished`` is signalled to it. The gateway answers only after this
succeeded, so a client that got a 503 retries, and the retry — a duplicate id in the store — is
routed again: routing is idempotent because the workflow ignores event ids it has seen.
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio.client import Client
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from capstan.settings import Settings
from keptn.errors import NotFoundError, UnavailableError
from keptn.event_types import EventKind, SequenceEventType, TaskEventType, maybe_parse_event_type
from keptn.events import KeptnEvent
from workflows.context_models import (
    CONTEXT_WORKFLOW,
    CONTROL_SIGNAL,
    SEQUENCE_TRIGGERED_SIGNAL,
    TASK_EVENT_SIGNAL,
    ContextInput,
    ControlRequest,
    SequenceTriggered,
    TaskEventReceived,
    TaskSettings,
    context_workflow_id,
)
from workflows.delivery_models import DELIVERY_WORKFLOW, DeliveryInput, delivery_workflow_id

log = structlog.get_logger(__name__)

KEPTN_PROJECT = SearchAttributeKey.for_keyword("KeptnProject")
KEPTN_CONTEXT = SearchAttributeKey.for_keyword("KeptnContext")

ANSWER_KINDS = (EventKind.STARTED, EventKind.FINISHED)

# The workflow is gone (finished, or never existed): the answer is stored, nothing waits for it.
_GONE = (RPCStatusCode.NOT_FOUND,)


def task_settings(settings: Settings) -> TaskSettings:
    """The timeouts and counting rule a new context runs with."""
    return TaskSettings(
        started_timeout=settings.task_started_wait_duration,
        finished_timeout=settings.task_finished_timeout,
        completion=settings.task_completion,
        lighthouse=settings.lighthouse_enabled,
        approval_service=settings.approval_service_enabled,
        remediation_service=settings.remediation_service_enabled,
        get_sli_timeout=settings.get_sli_timeout,
    )


def _unavailable(err: RPCError | RuntimeError) -> UnavailableError:
    detail = err.message if isinstance(err, RPCError) else str(err).splitlines()[0]
    return UnavailableError(f"the workflow engine (Temporal) is unavailable; retry later ({detail})")


def _is_connect_failure(err: RuntimeError) -> bool:
    # A lazy client raises a plain RuntimeError when its first connection attempt fails.
    return str(err).startswith("Failed client connect")


async def route_event(client: Client, settings: Settings, event: KeptnEvent, wire: dict[str, Any]) -> None:
    """Hand a stored event to the workflow of its context, if one is concerned.

    Raises:
        UnavailableError: Temporal cannot be reached (the event is stored; the client retries).
    """
    parsed = maybe_parse_event_type(event.type)
    project = str(event.data.get("project", ""))
    service = str(event.data.get("service", ""))
    workflow_id = context_workflow_id(project, event.shkeptncontext)
    try:
        if isinstance(parsed, SequenceEventType) and parsed.kind is EventKind.TRIGGERED:
            await client.start_workflow(
                CONTEXT_WORKFLOW,
                ContextInput(
                    project=project, keptn_context=event.shkeptncontext, settings=task_settings(settings)
                ),
                id=workflow_id,
                task_queue=settings.temporal_task_queue,
                start_signal=SEQUENCE_TRIGGERED_SIGNAL,
                start_signal_args=[SequenceTriggered(event=wire)],
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(KEPTN_PROJECT, project),
                        SearchAttributePair(KEPTN_CONTEXT, event.shkeptncontext),
                    ]
                ),
                static_summary=f"{parsed.stage}.{parsed.sequence} of {project}/{service}",
            )
        elif isinstance(parsed, TaskEventType) and parsed.kind in ANSWER_KINDS:
            try:
                await client.get_workflow_handle(workflow_id).signal(
                    TASK_EVENT_SIGNAL, TaskEventReceived(event=wire)
                )
            except RPCError as err:
                if err.status not in _GONE:
                    raise
                # Its sequence has ended (Keptn ignored such answers); subscribers still get it.
                log.info("no running sequence for event", event_id=event.id, workflow_id=workflow_id)
                await _deliver(client, settings, wire)
        else:
            await _deliver(client, settings, wire)
    except RPCError as err:
        raise _unavailable(err) from err
    except RuntimeError as err:
        if _is_connect_failure(err):
            raise _unavailable(err) from err
        raise


async def _deliver(client: Client, settings: Settings, wire: dict[str, Any]) -> None:
    """Start the delivery workflow of an event no context workflow handles (idempotent by id)."""
    try:
        await client.start_workflow(
            DELIVERY_WORKFLOW,
            DeliveryInput(event=wire),
            id=delivery_workflow_id(str(wire["id"])),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass  # a retry of an event whose delivery is already under way or done


async def control_sequence(client: Client, project: str, keptn_context: str, request: ControlRequest) -> None:
    """Send a pause/resume/abort to a context's workflow.

    Raises:
        NotFoundError: no sequence of that context is running.
        UnavailableError: Temporal cannot be reached.
    """
    try:
        await client.get_workflow_handle(context_workflow_id(project, keptn_context)).signal(
            CONTROL_SIGNAL, request
        )
    except RPCError as err:
        if err.status in _GONE:
            raise NotFoundError(
                f"no running sequence with keptnContext '{keptn_context}' in project '{project}'",
                field="keptnContext",
            ) from err
        raise _unavailable(err) from err
    except RuntimeError as err:
        if _is_connect_failure(err):
            raise _unavailable(err) from err
        raise
