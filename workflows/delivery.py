"""Push delivery of an event that no context workflow handles (durable, one workflow per event).

Most events reach subscribers through their context workflow. Events without one — problems,
error logs, ``monitoring.configure``, ``evaluation.invalidated``, an answer that arrived after its
sequence ended — are handed to this workflow by the gateway, so they too are delivered at least
once even if the gateway dies right after answering.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import activity_calls as calls
    from workflows.delivery_models import DELIVERY_WORKFLOW, DeliveryInput


@workflow.defn(name=DELIVERY_WORKFLOW)
class DeliveryWorkflow:
    """Deliver one stored event to every matching push subscription."""

    @workflow.run
    async def run(self, input: DeliveryInput) -> None:
        """Push the event; failures after the bounded retries are logged by ``calls.push``."""
        await calls.push(input.event)
