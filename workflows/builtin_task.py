"""What the control plane's built-in task services share: answering a task as an integration would.

Keptn ran lighthouse, the approval service and the remediation service as integrations; Capstan
runs them inside the context workflow (``workflows/lighthouse.py``, ``approval.py``,
``get_action.py``) but keeps their event stream: every answer is a stored event with the
service's source, routed to the task exactly like an integration's answer.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keptn.events import KeptnEvent
    from workflows import activity_calls as calls
    from workflows.context_models import TaskSettings
    from workflows.task_tracker import TaskTracker

SPEC_VERSION = "0.2.4"

Intercept = Callable[[dict[str, Any]], bool]
"""Sees an answer before the task's tracker does; True means it consumed the answer."""


class BuiltinHost(Protocol):
    """What a built-in task service needs from its context workflow."""

    keptn_context: str
    settings: TaskSettings

    def register_task(
        self, tracker: TaskTracker, on_answer: Callable[[], None], intercept: Intercept | None = None
    ) -> None:
        """Route answers with this triggered id to the tracker (after ``intercept``, if given)."""

    def unregister_task(self, triggered_id: str) -> None:
        """Stop routing answers to a task."""

    def answer(self, event: dict[str, Any]) -> None:
        """Route an event the control plane itself answered with, as if an integration had sent it."""

    def background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine beside the sequences."""


class BuiltinTask:
    """One built-in answer to one task ``.triggered`` event.

    Args:
        host: the context workflow.
        triggered: the stored task ``.triggered`` wire event.
        over: tells when the sequence no longer waits for this task (aborted, timed out or
            ended): the service then stops quietly and emits nothing more.
        source: the source of the events it emits (Keptn's service name).
    """

    def __init__(
        self, host: BuiltinHost, triggered: dict[str, Any], over: Callable[[], bool], source: str
    ) -> None:
        self.host = host
        self.triggered = triggered
        self.data: dict[str, Any] = dict(triggered.get("data") or {})
        self.over = over
        self.source = source

    async def run(self) -> None:
        """Answer the task (subclasses)."""
        raise NotImplementedError

    def intercept(self, event: dict[str, Any]) -> bool:
        """See an answer to the task before its tracker; True to keep the tracker from counting it."""
        return False

    async def answer(self, event_type: str, data: dict[str, Any]) -> None:
        """Answer the task with a ``.started`` or ``.finished`` of this service."""
        await self.emit_answer(event_type, data, self.source, str(self.triggered["id"]))

    async def emit_answer(
        self, event_type: str, data: dict[str, Any], source: str, triggered_id: str
    ) -> None:
        """Store an answer to ``triggered_id`` and route it, unless the sequence stopped waiting."""
        if self.over():
            return
        event = self.event(event_type, data, source)
        event["triggeredid"] = triggered_id
        await calls.emit_event(event)
        # Stored before it is routed, like an integration's answer the gateway accepted.
        self.host.answer(event)

    def event(self, event_type: str, data: dict[str, Any], source: str) -> dict[str, Any]:
        """A new wire event of this context, at the task's resource version."""
        return KeptnEvent(
            id=str(workflow.uuid4()),
            source=source,
            type=event_type,
            time=workflow.now(),
            shkeptncontext=self.host.keptn_context,
            gitcommitid=self.triggered.get("gitcommitid"),
            shkeptnspecversion=SPEC_VERSION,
            data=data,
        ).to_wire()
