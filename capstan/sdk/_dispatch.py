"""Handing received ``.triggered`` events to task handlers, once each, with Keptn's answers.

For a handler with automatic responses (go-utils ``Keptn.OnEvent``): ``.started`` is sent
first (if that fails, the handler does not run; if the control plane could not be reached, the
event is given back, to be taken again when a poll lists it), then the handler runs, then
``.finished``:

* the handler returned a dict (or None): its data over the scope, default ``pass``/``succeeded``;
* it raised :class:`~capstan.sdk.TaskFailed`: that exception's result, status, message and data;
* it raised anything else: ``result: fail``, ``status: errored``, the error as ``message``;
* it was still running when the shutdown grace period ended: it is cancelled and ``.finished``
  says ``fail``/``errored`` "the integration stopped …" (sent within :data:`CANCEL_WAIT`).

Deviation from go-utils: a handler returning None still gets its ``.finished`` (go-utils sent
nothing, leaving the task to time out); handlers that answer themselves opt out instead.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ._client import ControlPlaneError
from ._context import SendEvent, TaskContext, TaskFailed, TaskHandler, TryAgainLater
from ._events import InvalidTriggeredEvent, parse_triggered
from ._subscriptions import Subscription, SubscriptionBook

__all__ = ["Dispatcher", "IdCache", "Outcome", "TaskSpec"]

_log = logging.getLogger("capstan.sdk")

CANCEL_WAIT = 5.0
"""Seconds cancelled handlers get to send their last ``.finished`` at shutdown."""
STOPPED_MESSAGE = "the integration stopped before the task finished"


class Outcome(StrEnum):
    """What became of an offered event."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    BUSY = "busy"


class IdCache:
    """The ids of events already taken, least recently seen dropped first beyond ``capacity``."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def seen(self, event_id: str) -> bool:
        """Whether the id was taken; a hit counts as recent use (an id still listed stays)."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return True
        return False

    def discard(self, event_id: str) -> None:
        """Forget an id (its event may be taken again)."""
        self._ids.pop(event_id, None)

    def add(self, event_id: str) -> None:
        """Remember an id, forgetting the least recently seen one if full."""
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A registered handler: its task, the function, and whether the SDK answers for it."""

    task: str
    handler: TaskHandler
    auto_response: bool
    subscription: Subscription


def _with_subscription_id(event: Mapping[str, Any], subscription: Subscription) -> dict[str, Any]:
    # As Keptn's connector does before calling the handler (webhook-service reads it).
    copied = copy.deepcopy(dict(event))
    if subscription.id is not None and isinstance(copied.get("data"), dict):
        temporary = copied["data"].setdefault("temporaryData", {})
        if isinstance(temporary, dict):
            temporary["distributor"] = {"subscriptionID": subscription.id}
    return copied


class Dispatcher:
    """Runs handlers for offered events: at most ``max_concurrency`` at once, each id once.

    Args:
        source: the integration's name (``source`` of every answer).
        tasks: the handlers by task name.
        book: the current subscriptions; an event must match one of them.
        send: sends one event to the control plane.
        max_concurrency: handlers running at the same time.
        cache_size: how many taken event ids are remembered.
    """

    def __init__(
        self,
        *,
        source: str,
        tasks: Mapping[str, TaskSpec],
        book: SubscriptionBook,
        send: SendEvent,
        max_concurrency: int,
        cache_size: int = 10_000,
    ) -> None:
        self._source = source
        self._tasks = dict(tasks)
        self._book = book
        self._send = send
        self._limit = max_concurrency
        self._slots = asyncio.Semaphore(max_concurrency)
        self._taken = IdCache(cache_size)
        self._running: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        """Handlers running or waiting for a slot."""
        return len(self._running)

    def has_capacity(self) -> bool:
        """Whether another handler could start right now."""
        return len(self._running) < self._limit

    def offer(
        self, event: Mapping[str, Any], *, subscription: Subscription | None = None, wait: bool = True
    ) -> Outcome:
        """Start handling an event in the background, unless it was taken or is not ours.

        Args:
            event: a received event as a JSON object.
            subscription: the subscription it arrived through; else the first one it matches.
            wait: queue the event when all slots are busy; False answers ``BUSY`` instead and
                leaves it untaken (the pull loop will see it again).

        Returns:
            What became of it.
        """
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            _log.warning("ignoring an event without an id (type %s)", event.get("type"))
            return Outcome.IGNORED
        if self._taken.seen(event_id):
            return Outcome.DUPLICATE
        try:
            task = parse_triggered(event).task
        except InvalidTriggeredEvent as exc:
            _log.warning("ignoring event %s: %s", event_id, exc, extra={"event_id": event_id})
            return Outcome.IGNORED
        spec = self._tasks.get(task)
        matched = subscription if subscription is not None else self._book.first_match(event)
        if spec is None or matched is None or not matched.matches(event):
            _log.debug("ignoring event %s: no handler or subscription for it", event_id)
            return Outcome.IGNORED
        if not wait and not self.has_capacity():
            return Outcome.BUSY
        self._taken.add(event_id)
        runner = asyncio.create_task(
            self._handle(_with_subscription_id(event, matched), spec, matched),
            name=f"capstan-sdk {task} {event_id}",
        )
        self._running.add(runner)
        runner.add_done_callback(self._done)
        return Outcome.ACCEPTED

    def _done(self, runner: asyncio.Task[None]) -> None:
        self._running.discard(runner)
        if not runner.cancelled() and (error := runner.exception()) is not None:
            _log.error("handler runner failed: %r", error, exc_info=error)

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for running handlers, then cancel the rest."""
        if not self._running:
            return
        _log.info("waiting up to %.0f s for %d running handler(s)", grace, len(self._running))
        _, pending = await asyncio.wait(set(self._running), timeout=grace)
        if pending:
            _log.warning("cancelling %d handler(s) still running after %.0f s", len(pending), grace)
            self.cancel_all()
            _, pending = await asyncio.wait(pending, timeout=CANCEL_WAIT)
            for runner in pending:
                runner.cancel()

    def cancel_all(self) -> None:
        """Cancel every running handler (each still tries to send its ``.finished``)."""
        for runner in list(self._running):
            runner.cancel()

    async def _handle(self, event: dict[str, Any], spec: TaskSpec, subscription: Subscription) -> None:
        async with self._slots:
            ctx = TaskContext(
                event,
                source=self._source,
                send=self._send,
                auto_response=spec.auto_response,
                subscription_id=subscription.id,
            )
            ctx.logger.info("handling %s (%s/%s/%s)", event["type"], ctx.project, ctx.stage, ctx.service)
            begun = time.monotonic()
            if spec.auto_response:
                await self._run_automatic(ctx, spec)
            else:
                await self._run_manual(ctx, spec)
            ctx.logger.info("done in %.2f s", time.monotonic() - begun)

    async def _run_automatic(self, ctx: TaskContext, spec: TaskSpec) -> None:
        try:
            await ctx._started()
        except ControlPlaneError as exc:
            if exc.retryable:
                # Nothing was stored (or, if it was, the same .started id makes a resend harmless):
                # the task is still open, so the next poll that lists it gets another try.
                self._taken.discard(ctx.triggered_id)
                ctx.logger.error(
                    "could not send .started, giving the event back for a later poll: %s", exc.message
                )
            else:
                ctx.logger.error("could not send .started, not running the handler: %s", exc.message)
            return
        try:
            returned = await spec.handler(ctx)
        except TaskFailed as failed:
            ctx.logger.info("task failed: %s", failed.message)
            await self._finish(
                ctx, failed.data, result=failed.result, status=failed.status, message=failed.message
            )
        except asyncio.CancelledError:
            ctx.logger.warning("cancelled: sending .finished errored")
            await self._finish(ctx, None, result="fail", status="errored", message=STOPPED_MESSAGE)
            raise
        except Exception as exc:
            ctx.logger.exception("handler raised %s", type(exc).__name__)
            await self._finish(ctx, None, result="fail", status="errored", message=_error_message(exc))
        else:
            await self._finish(ctx, returned)

    async def _finish(
        self,
        ctx: TaskContext,
        data: Mapping[str, Any] | None,
        *,
        result: str | None = None,
        status: str | None = None,
        message: str | None = None,
    ) -> None:
        try:
            try:
                await ctx._finished(data, result=result, status=status, message=message)
            except TypeError as exc:
                ctx.logger.error("the handler's data cannot be sent: %s", exc)
                await ctx._finished(
                    None, result="fail", status="errored", message=f"invalid task data: {exc}"
                )
        except ControlPlaneError as exc:
            ctx.logger.error("could not send .finished: %s", exc.message)

    async def _run_manual(self, ctx: TaskContext, spec: TaskSpec) -> None:
        try:
            await spec.handler(ctx)
        except TryAgainLater as later:
            if ctx._started_sent:
                ctx.logger.error("TryAgainLater after .started is not honoured: %s", later.message)
            else:
                self._taken.discard(ctx.triggered_id)
                ctx.logger.warning("given back for a later poll: %s", later.message)
        except Exception as exc:
            ctx.logger.exception("handler raised %s (no automatic response)", type(exc).__name__)
        if ctx._started_sent and not ctx._finished_sent:
            ctx.logger.warning("the handler sent .started but no .finished; the task waits for it")


def _error_message(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
