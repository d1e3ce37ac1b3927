"""Every workflow class the worker registers."""

from __future__ import annotations

from workflows.cdevents import CDEventsForwarderWorkflow
from workflows.context import ContextWorkflow
from workflows.delivery import DeliveryWorkflow
from workflows.queue_lock import QueueLockWorkflow

ALL_WORKFLOWS: list[type] = [ContextWorkflow, DeliveryWorkflow, QueueLockWorkflow, CDEventsForwarderWorkflow]
"""Workflow classes (``@workflow.defn``) the worker runs."""
