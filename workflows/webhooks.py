"""Delivering a task's ``.triggered`` event, with the built-in webhook service's answers.

The webhook service (``activities/webhooks.py``) runs as a delivery target: for a ``.triggered``
event it returns the ``.started``/``.finished`` answers Keptn's webhook-service sent, which this
emits as ``webhook-service`` answers to the task, stored before they are routed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.delivery import PushTarget
    from workflows import activity_calls as calls
    from workflows.builtin_task import BuiltinHost, BuiltinTask

WEBHOOK_SOURCE = "webhook-service"


class TaskDelivery(BuiltinTask):
    """Push a task ``.triggered`` event to its subscribers; answer for the webhook service."""

    def __init__(
        self,
        host: BuiltinHost,
        triggered: dict[str, Any],
        over: Callable[[], bool],
        targets: list[PushTarget] | None = None,
    ) -> None:
        super().__init__(host, triggered, over, WEBHOOK_SOURCE)
        self.targets = targets
        """The event's push targets if ``emit_event`` returned them; None: look them up."""

    async def run(self) -> None:
        """Deliver, then emit the webhook service's answers in order."""
        for answer in await calls.push(self.triggered, self.targets):
            await self.answer(answer.type, answer.data)
