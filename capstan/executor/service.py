"""The job executor as an integration: Keptn's job-executor-service on the Capstan SDK.

For every ``.triggered`` event of its tasks (pull mode by default), the executor reads
``job/config.yaml`` at the event's version (service, stage, then project level). No file, or no
matching action: the event is not the executor's, it stays silent (as Keptn's did). A matching
action: ``.started``, the tasks (:mod:`capstan.executor.job`), then ``.finished`` — always, also
when a task failed, timed out, was refused, or the executor is stopped while it runs. A config
that cannot be read is answered with ``.finished`` ``fail``/``errored`` naming the bad field.

The SDK's dispatcher takes each event id once per process, so an event stays taken while the
control plane restarts and is polled again; the journal (:mod:`capstan.executor.journal`) does
the same across restarts of the executor itself. So an action never runs twice for one triggered
id (``tests/executor`` proves both). When the control plane cannot be reached before anything
ran (the config read or the ``.started`` failed after all retries), the event is given back
(:class:`~capstan.sdk.TryAgainLater`) and handled when a poll lists it again; a ``.started``
sent twice that way has one id, so it is stored once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from capstan.sdk import Backoff, ControlPlaneError, Integration, TaskContext, TryAgainLater
from keptn.job_config import CONFIG_URI, Action, InvalidJobConfigError, find_action, parse_job_config

from .job import JobRefused, Policy, TaskReport, run_action
from .journal import Journal
from .resources import ResourceReader, Scope

__all__ = ["Executor", "ExecutorOptions"]

_log = logging.getLogger("capstan.executor")

NAME = "job-executor-service"
"""The integration's default name: Keptn's, so subscriptions made for Keptn's keep working."""
STOPPED = "the executor stopped before the task finished"
INTERRUPTED = "the executor was stopped while this task ran; it is not run a second time"


@dataclass(frozen=True)
class ExecutorOptions:
    """How the executor connects and what it answers.

    Attributes:
        api_url: the API's base URL, ending in ``/api``.
        token: the API token (scopes: ``events:read``, ``events:write``, ``projects:read``,
            ``integrations:write``, and ``secrets:use`` for secrets).
        tasks: the task names to subscribe to, e.g. ``("deployment", "test")``.
        projects: only events of these projects (empty: all).
        stages: only events of these stages (empty: all).
        services: only events of these services (empty: all; needs stages).
        name: the integration's name. Default ``job-executor-service``.
        mode: ``pull`` (default) or ``push``.
        poll_interval: seconds between polls. Default 1 s.
        heartbeat_interval: seconds between heartbeats. Default 10 s.
        max_concurrency: actions running at once. Default 4.
        host: push mode: the address to listen on.
        port: push mode: the port to listen on.
        public_url: push mode: the URL the control plane posts to.
        policy: the allow-list and limits.
        backoff: retries of calls to the control plane.
        state_dir: where the journal ``<name>.journal`` is kept. Default
            ``$XDG_STATE_HOME/capstan`` (``~/.local/state/capstan``).
    """

    api_url: str
    token: str
    tasks: tuple[str, ...]
    projects: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    name: str = NAME
    mode: Literal["pull", "push"] = "pull"
    poll_interval: float = 1.0
    heartbeat_interval: float = 10.0
    max_concurrency: int = 4
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    policy: Policy = Policy()
    backoff: Backoff = Backoff()
    state_dir: Path = field(default_factory=lambda: default_state_dir())


@dataclass(frozen=True)
class _Outcome:
    """How an action ended, as its ``.finished`` says."""

    action: str | None
    reports: Sequence[TaskReport]
    result: str
    status: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/capstan``, else ``~/.local/state/capstan``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "capstan"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Executor:
    """Runs Keptn job-executor actions for the events of its tasks.

    Args:
        options: connection, subscriptions and policy.
    """

    def __init__(self, options: ExecutorOptions) -> None:
        if not options.tasks:
            raise ValueError("the executor needs at least one task to subscribe to (--task)")
        self.options = options
        self.integration = Integration(
            options.name,
            api_url=options.api_url,
            token=options.token,
            mode=options.mode,
            poll_interval=options.poll_interval,
            heartbeat_interval=options.heartbeat_interval,
            max_concurrency=options.max_concurrency,
            host=options.host,
            port=options.port,
            public_url=options.public_url,
            backoff=options.backoff,
            # Running commands get their whole timeout before a stop cancels them.
            shutdown_grace=min(options.policy.max_timeout, 600.0),
        )
        self._reader: ResourceReader | None = None
        self.journal = Journal(options.state_dir / f"{options.name}.journal")
        for task in options.tasks:
            self.integration.task(
                task,
                projects=options.projects or None,
                stages=options.stages or None,
                services=options.services or None,
                auto_response=False,
            )(self.handle)

    async def serve(self) -> None:
        """Run until SIGINT/SIGTERM (the integration's :meth:`~capstan.sdk.Integration.serve`).

        Raises:
            JournalLockedError: another executor uses the same journal.
            OSError: the journal cannot be opened.
        """
        self.journal.open()
        self._reader = ResourceReader(self.options.api_url, self.options.token, backoff=self.options.backoff)
        try:
            await self.integration.serve()
        finally:
            await self._reader.aclose()
            self._reader = None
            self.journal.close()

    async def handle(self, ctx: TaskContext) -> None:
        """Answer one ``.triggered`` event if a ``job/config.yaml`` action matches it."""
        reader = self._reader
        if reader is None:
            raise RuntimeError("the executor is not serving")
        scope = Scope(ctx.project, ctx.stage, ctx.service, ctx.git_commit_id)
        try:
            found = await reader.read(scope, CONFIG_URI)
        except ControlPlaneError as exc:
            if exc.retryable:  # nothing was sent or run yet: the next poll lists the event again
                raise TryAgainLater(f"cannot read {CONFIG_URI}: {exc.message}") from exc
            ctx.logger.error("cannot read %s, not answering: %s", CONFIG_URI, exc.message)
            return
        if found is None:
            ctx.logger.debug("no %s for %s/%s/%s", CONFIG_URI, scope.project, scope.stage, scope.service)
            return
        content, level = found
        try:
            config = parse_job_config(content)
        except InvalidJobConfigError as exc:
            ctx.logger.warning("%s (%s) is invalid: %s", CONFIG_URI, level, exc.message)
            await self._answer(ctx, _Outcome(None, [], "fail", "errored", exc.message), started=True)
            return
        action = find_action(config, ctx.event)
        if action is None:
            ctx.logger.debug("no action of %s matches %s", CONFIG_URI, ctx.event["type"])
            return
        if await self._seen_before(ctx, action):
            return
        ctx.logger.info("running action %r (%d task(s))", action.name, len(action.tasks))
        if action.silent:
            self.journal.record(ctx.triggered_id, "started")
            outcome = await self._run(ctx, action, scope, reader)
            self.journal.record(ctx.triggered_id, "finished")
            ctx.logger.info("silent action %r: %s", action.name, outcome.message)
            return
        try:
            await ctx.send_started()
        except ControlPlaneError as exc:
            if exc.retryable:  # resent later with the same id, so stored once at most
                raise TryAgainLater(f"could not send .started: {exc.message}") from exc
            ctx.logger.error("could not send .started, not running the action: %s", exc.message)
            return
        # Journalled before anything runs: a crash from here on is never followed by a rerun.
        self.journal.record(ctx.triggered_id, "started")
        try:
            outcome = await self._run(ctx, action, scope, reader)
        except BaseException:
            # Cancelled (a stop that outlasted the grace period) or a bug: the task must not hang.
            await self._answer(ctx, _Outcome(action.name, [], "fail", "errored", STOPPED))
            raise
        await self._answer(ctx, outcome)

    async def _seen_before(self, ctx: TaskContext, action: Action) -> bool:
        """Whether an earlier executor process took this event (then it is not run again)."""
        state = self.journal.state(ctx.triggered_id)
        if state == "finished":
            ctx.logger.info("already answered by an earlier run of the executor; skipping")
            return True
        if state == "started":
            ctx.logger.warning("the executor stopped while this action ran; answering it without a rerun")
            if not action.silent:
                await self._answer(ctx, _Outcome(action.name, [], "fail", "errored", INTERRUPTED))
            else:
                self.journal.record(ctx.triggered_id, "finished")
            return True
        return False

    async def _run(self, ctx: TaskContext, action: Action, scope: Scope, reader: ResourceReader) -> _Outcome:
        start = _now()
        try:
            reports = await run_action(action, ctx.event, scope, reader, self.options.policy)
        except JobRefused as exc:
            ctx.logger.warning("action %r refused: %s", action.name, exc.message)
            return _Outcome(action.name, exc.reports, "fail", "errored", exc.message)
        except ControlPlaneError as exc:
            message = f"action '{action.name}': reading its input failed: {exc.message}"
            return _Outcome(action.name, [], "fail", "errored", message)
        # Keptn's test services report the window they tested; an evaluation after it uses it.
        extra = {"test": {"start": start, "end": _now()}} if ctx.task == "test" else {}
        failed = next((report for report in reports if not report.ok), None)
        if failed is None:
            message = f"action '{action.name}': {len(reports)} task(s) succeeded"
            return _Outcome(action.name, reports, "pass", "succeeded", message, extra)
        broken = failed.result.timed_out or failed.result.exit_code is None
        return _Outcome(
            action.name, reports, "fail", "errored" if broken else "succeeded", failed.message, extra
        )

    async def _answer(self, ctx: TaskContext, outcome: _Outcome, *, started: bool = False) -> None:
        """Send ``.finished`` (and ``.started`` first if asked)."""
        data: dict[str, Any] = {
            "jobExecutor": {"action": outcome.action, "tasks": [r.to_json() for r in outcome.reports]},
            **outcome.extra,
        }
        try:
            if started:
                try:
                    await ctx.send_started()
                except ControlPlaneError as exc:
                    if exc.retryable:  # as in handle(): nothing was sent, try on a later poll
                        raise TryAgainLater(f"could not send .started: {exc.message}") from exc
                    raise
            await ctx.send_finished(
                data, result=outcome.result, status=outcome.status, message=outcome.message
            )
        except ControlPlaneError as exc:
            ctx.logger.error("could not send .finished: %s", exc.message)
            return
        self.journal.record(ctx.triggered_id, "finished")
