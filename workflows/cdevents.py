"""The CDEvents forwarder: one long-lived workflow that drains the CDEvents outbox for ever.

The outbox (``store/migrations/0007_cdevents.sql``) is filled in the same transaction as each
stored Keptn event, so nothing here is on a sequence's path: the workflow only runs the
``forward_cdevents`` activity again and again. Each round waits for work itself (bounded), so an
idle control plane adds a few history events per ``idle_wait_seconds``; the workflow continues as
new every ``rounds_per_run`` rounds or when Temporal suggests it. If a worker dies mid-round, the
activity times out on its heartbeat and runs again elsewhere; items not yet acknowledged are
still in the outbox and are sent again (at least once, same CloudEvent ids).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.cdevents import FORWARD_CDEVENTS_ACTIVITY, ForwardResult
    from workflows.cdevents_models import CDEVENTS_FORWARDER_WORKFLOW, ForwarderInput

FORWARD_TIMEOUT = timedelta(minutes=10)
"""Bound of one round: its idle wait plus a batch of deliveries, each bounded by the webhook timeout."""
FORWARD_HEARTBEAT = timedelta(seconds=30)
"""A round heartbeats at least every 5 s; a silent one is on a dead worker and runs again."""
FORWARD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,  # unlimited: a database outage only delays forwarding
)


@workflow.defn(name=CDEVENTS_FORWARDER_WORKFLOW)
class CDEventsForwarderWorkflow:
    """Forward the outbox round after round; never ends except by continue-as-new."""

    @workflow.run
    async def run(self, input: ForwarderInput) -> None:
        """Run forwarding rounds, then continue as new with the same input."""
        for _ in range(input.rounds_per_run):
            await workflow.execute_activity(
                FORWARD_CDEVENTS_ACTIVITY,
                input.round,
                result_type=ForwardResult,
                start_to_close_timeout=FORWARD_TIMEOUT,
                heartbeat_timeout=FORWARD_HEARTBEAT,
                retry_policy=FORWARD_RETRY,
            )
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(input)
