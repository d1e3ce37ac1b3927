"""What a task handler receives (:class:`TaskContext`) and how it reports a failed result.

Example::

    @integration.task("test")
    async def run_tests(ctx: TaskContext) -> dict[str, Any]:
        ctx.logger.info("testing %s in %s", ctx.service, ctx.stage)
        if not await smoke_test(ctx.data["deployment"]["deploymentURIsLocal"][0]):
            raise TaskFailed("smoke test failed")       # .finished with result fail, status succeeded
        return {"test": {"start": start, "end": end}}   # .finished with result pass
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from keptn.event_types import EventKind

from ._client import ControlPlaneError
from ._events import answer_event, finished_data, parse_triggered, scope_data

__all__ = ["SendEvent", "TaskContext", "TaskFailed", "TaskHandler", "TryAgainLater"]

SendEvent = Callable[[Mapping[str, Any]], Awaitable[None]]
"""Sends one complete event to the control plane (retrying as :class:`~capstan.sdk.Backoff` says)."""


class TryAgainLater(Exception):
    """Raise it in a handler, before it sent anything, to give the event back for a later poll.

    For a passing obstacle, such as the control plane being unreachable while the handler reads
    what it needs: the SDK forgets that it took the event, sends nothing, and the pull loop hands
    it to the handler again when a poll next lists it (it stays open until a ``.finished``). In
    push mode nothing offers it again. Raised after ``.started`` was sent, it counts as any other
    exception (automatic responses: ``.finished`` errored).

    Args:
        message: why, for the log.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TaskFailed(Exception):
    """Raise it in a handler to finish the task with a failed *result* but no error.

    Keptn tells the two apart: ``status`` says whether the integration worked (``errored`` for an
    unexpected exception), ``result`` whether the thing it checked is good. ``TaskFailed`` sends
    ``.finished`` with ``result`` (default ``fail``), ``status`` (default ``succeeded``),
    ``message`` and any ``data``.

    Example::

        raise TaskFailed("3 of 40 tests failed", result="warning", data={"test": {"failed": 3}})

    Args:
        message: why, shown in the sequence's history.
        result: ``pass``, ``warning`` or ``fail``. Default ``fail``.
        status: ``succeeded``, ``errored`` or ``unknown``. Default ``succeeded``.
        data: task-specific data for the ``.finished`` event.
    """

    def __init__(
        self,
        message: str,
        *,
        result: str = "fail",
        status: str = "succeeded",
        data: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.result = result
        self.status = status
        self.data = dict(data or {})


class _EventLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds the event's identifiers to every record, as ``extra`` fields and in the message."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return f"[{extra.get('task')} {extra.get('triggered_id')}] {msg}", kwargs


class TaskContext:
    """One ``.triggered`` event handed to a task handler, and the means to answer it.

    With automatic responses (the default) the SDK sends ``.started`` before the handler runs
    and ``.finished`` after it returns; the handler only returns data. A handler registered with
    ``auto_response=False`` sends its answers itself with :meth:`send_started` and
    :meth:`send_finished` — exactly one of each, or Keptn's counting never completes the task.

    Attributes:
        event: the ``.triggered`` event as a JSON object (a private copy).
        data: ``event["data"]``.
        task: the task name, e.g. ``deployment``.
        project: ``data.project``.
        stage: ``data.stage``.
        service: ``data.service``.
        labels: ``data.labels`` (empty if none).
        keptn_context: ``shkeptncontext``, shared by every event of the run.
        triggered_id: the ``.triggered`` event's id, referenced by every answer.
        git_commit_id: the configuration commit the task works on, if the event names one.
        subscription_id: the matched subscription's id (also in
            ``data.temporaryData.distributor.subscriptionID``), if known.
        logger: a logger that tags every line with the task and the triggered id.
    """

    def __init__(
        self,
        event: Mapping[str, Any],
        *,
        source: str,
        send: SendEvent,
        auto_response: bool,
        subscription_id: str | None = None,
    ) -> None:
        parsed = parse_triggered(event)
        self.event: dict[str, Any] = copy.deepcopy(dict(event))
        self.data: dict[str, Any] = self.event["data"]
        self.task = parsed.task
        self.project: str = self.data["project"]
        self.stage: str = self.data["stage"]
        self.service: str = self.data["service"]
        labels = self.data.get("labels")
        self.labels: dict[str, str] = dict(labels) if isinstance(labels, Mapping) else {}
        self.keptn_context: str = self.event["shkeptncontext"]
        self.triggered_id: str = self.event["id"]
        commit = self.event.get("gitcommitid")
        self.git_commit_id: str | None = commit if isinstance(commit, str) and commit else None
        self.subscription_id = subscription_id
        self.logger = _EventLogger(
            logging.getLogger("capstan.sdk.task"),
            {"task": self.task, "triggered_id": self.triggered_id, "keptn_context": self.keptn_context},
        )
        self._source = source
        self._send = send
        self._auto_response = auto_response
        self._started_sent = False
        self._finished_sent = False

    def _check_manual(self, what: str, *, already: bool) -> None:
        if self._auto_response:
            raise RuntimeError(
                f"{what}: this handler has automatic responses; register it with "
                "auto_response=False to send .started/.finished itself"
            )
        if already:
            # Keptn completes a task when #finished == #started: a second one would stall it.
            raise RuntimeError(f"{what}: already sent for this task")

    async def _answer(self, kind: EventKind, data: Mapping[str, Any]) -> str:
        event = answer_event(self.event, kind, source=self._source, data=data)
        await self._send(event)
        self.logger.info("sent %s %s", event["type"], event["id"], extra={"event_id": event["id"]})
        event_id: str = event["id"]
        return event_id

    async def send_started(self, data: Mapping[str, Any] | None = None) -> str:
        """Send ``<task>.started``.

        Args:
            data: extra data beyond the scope (project, stage, service, labels).

        Returns:
            The id of the event sent.

        Raises:
            RuntimeError: the handler has automatic responses, or ``.started`` was already sent.
            ControlPlaneError: the control plane rejected the event or stayed unreachable.
        """
        self._check_manual("send_started", already=self._started_sent)
        return await self._started(data)

    async def send_status_changed(self, data: Mapping[str, Any] | None = None) -> str | None:
        """Report progress with ``<task>.status.changed``; allowed with automatic responses too.

        Best effort: a failure is logged, never raised, so a progress report cannot fail the
        task. Keptn's api-service refused this type (HTTP 400) and its controller ignored it.

        Args:
            data: extra data beyond the scope, e.g. ``{"message": "50 % done"}``.

        Returns:
            The id of the event sent, or None if the control plane did not take it.
        """
        try:
            return await self._answer(EventKind.STATUS_CHANGED, {**scope_data(self.event), **(data or {})})
        except ControlPlaneError as exc:
            self.logger.warning("status.changed not delivered: %s", exc.message)
            return None

    async def send_finished(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        result: str | None = None,
        status: str | None = None,
        message: str | None = None,
    ) -> str:
        """Send ``<task>.finished``.

        Args:
            data: task-specific data, merged over the scope.
            result: wins over ``data["result"]``; ``pass`` if neither is set.
            status: wins over ``data["status"]``; ``succeeded`` if neither is set.
            message: wins over ``data["message"]``.

        Returns:
            The id of the event sent.

        Raises:
            RuntimeError: the handler has automatic responses, or ``.finished`` was already sent.
            TypeError: the data is not a JSON-serialisable mapping.
            ControlPlaneError: the control plane rejected the event or stayed unreachable.
        """
        self._check_manual("send_finished", already=self._finished_sent)
        return await self._finished(data, result=result, status=status, message=message)

    async def _started(self, data: Mapping[str, Any] | None = None) -> str:
        event_id = await self._answer(EventKind.STARTED, {**scope_data(self.event), **(data or {})})
        self._started_sent = True
        return event_id

    async def _finished(
        self,
        data: Mapping[str, Any] | None,
        *,
        result: str | None = None,
        status: str | None = None,
        message: str | None = None,
    ) -> str:
        body = finished_data(self.event, data, result=result, status=status, message=message)
        event_id = await self._answer(EventKind.FINISHED, body)
        self._finished_sent = True
        return event_id


TaskHandler = Callable[[TaskContext], Awaitable[Mapping[str, Any] | None]]
"""An ``async def handler(ctx: TaskContext) -> dict | None``; its dict is the ``.finished`` data."""
