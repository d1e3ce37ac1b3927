"""Name, id and input of the CDEvents forwarder workflow, importable without the workflow's code."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from activities.cdevents import ForwardInput

CDEVENTS_FORWARDER_WORKFLOW = "CDEventsForwarder"
CDEVENTS_FORWARDER_ID = "capstan-cdevents-forwarder"
"""Prefix of the forwarder's id; every worker asks for it at start, the first one starts it."""


class ForwarderInput(BaseModel):
    """Input of the forwarder (carried over on continue-as-new)."""

    round: ForwardInput = ForwardInput()
    """How each forwarding round behaves."""
    rounds_per_run: int = 500
    """Rounds before the workflow continues as new, keeping its history short. Default 500."""


async def start_forwarder(
    client: Client,
    task_queue: str,
    *,
    input: ForwarderInput | None = None,
    workflow_id: str | None = None,
) -> None:
    """Start the forwarder unless it already runs (every worker calls this at start).

    Args:
        client: the Temporal client.
        task_queue: Capstan's task queue.
        input: the forwarder's options; the defaults when omitted.
        workflow_id: its id; default ``capstan-cdevents-forwarder-<task queue>``, one per queue
            (a forwarder left on an old queue would never run; the database lock keeps two
            forwarders of one database from sending at the same time).
    """
    await client.start_workflow(
        CDEVENTS_FORWARDER_WORKFLOW,
        input or ForwarderInput(),
        id=workflow_id or f"{CDEVENTS_FORWARDER_ID}-{task_queue}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
