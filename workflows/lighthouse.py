"""The built-in lighthouse: Keptn's quality gate as workflow code, beside an ``evaluation`` task.

When a sequence triggers an ``evaluation`` task, the context runs :class:`Lighthouse` next to
the task's wait for answers. It answers the task as Keptn's lighthouse-service did — ``.started``
at once, then ``get-sli.triggered`` to the project's SLI provider, then ``.finished`` with the
score — and its events are stored, pushed and routed like any integration's. Deterministic: reads,
scoring and built-in SLI providers are activities (``workflows.activity_calls``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.lighthouse import ScoreEvaluationInput
    from keptn.durations import format_duration
    from keptn.evaluation_payload import (
        EVALUATION_FINISHED,
        EVALUATION_STARTED,
        GET_SLI_FINISHED,
        GET_SLI_STARTED,
        GET_SLI_TRIGGERED,
        LIGHTHOUSE_SOURCE,
        evaluation_finished_data,
        scope_data,
        sli_finished_data,
    )
    from keptn.lighthouse import errored_outcome
    from workflows import activity_calls as calls
    from workflows.builtin_task import BuiltinHost, BuiltinTask
    from workflows.task_tracker import TaskTracker


def builtin_provider_source(provider: str) -> str:
    """The source of the events a built-in SLI provider emits (Keptn's ``<name>-service``)."""
    return f"{provider}-service"


class Lighthouse(BuiltinTask):
    """One evaluation of one ``evaluation.triggered`` event.

    Args:
        host: the context workflow.
        triggered: the stored ``evaluation.triggered`` wire event.
        over: tells when the sequence no longer waits (aborted or ended): stop quietly then.
    """

    def __init__(self, host: BuiltinHost, triggered: dict[str, Any], over: Callable[[], bool]) -> None:
        super().__init__(host, triggered, over, LIGHTHOUSE_SOURCE)

    async def run(self) -> None:
        """Answer the evaluation task: ``.started``, the SLI values, the score, ``.finished``."""
        await self.answer(EVALUATION_STARTED, {**scope_data(self.data), "status": "succeeded"})
        try:
            await self._evaluate()
        except ActivityError as err:
            # Only non-retryable failures get here (store reads retry until they succeed): the
            # task ends errored with the reason instead of hanging until its timeout.
            cause = err.cause.message if err.cause is not None else str(err)  # type: ignore[attr-defined]
            await self.answer(
                EVALUATION_FINISHED, evaluation_finished_data(self.data, errored_outcome(cause))
            )

    async def _evaluate(self) -> None:
        prepared = await calls.prepare_evaluation(self.triggered)
        if prepared.finished_data is not None or prepared.get_sli_data is None:
            await self.answer(EVALUATION_FINISHED, prepared.finished_data or {})
            return
        get_sli = self.event(GET_SLI_TRIGGERED, prepared.get_sli_data, LIGHTHOUSE_SOURCE)
        tracker = TaskTracker("get-sli", get_sli["id"], "per-source")
        self.host.register_task(tracker, lambda: None)
        try:
            await calls.emit_event(get_sli, open_task=True)
            self.host.background(calls.push(get_sli))
            if prepared.builtin:
                self.host.background(self._builtin_provider(prepared.provider, get_sli))
            finished = await self._await_sli(tracker)
        finally:
            self.host.unregister_task(tracker.triggered_id)
            self.host.background(calls.close_tasks([tracker.triggered_id]))
        if self.over():
            return
        if finished is None:
            timeout = format_duration(self.host.settings.get_sli_timeout)
            data = evaluation_finished_data(
                self.data,
                errored_outcome(
                    f"no get-sli.finished event received from SLI provider '{prepared.provider}' "
                    f"within {timeout}"
                ),
                time_start=prepared.time_start,
                time_end=prepared.time_end,
                slo_content=prepared.slo_content or "",
            )
        else:
            scored = await calls.score_evaluation(
                ScoreEvaluationInput(
                    event=self.triggered,
                    get_sli=finished,
                    slo_content=prepared.slo_content,
                    time_start=prepared.time_start,
                    time_end=prepared.time_end,
                )
            )
            data = scored.data
        await self.answer(EVALUATION_FINISHED, data)

    async def _await_sli(self, tracker: TaskTracker) -> dict[str, Any] | None:
        """The first ``get-sli.finished`` (Keptn's lighthouse took the first one), or None on timeout."""

        def finished() -> dict[str, Any] | None:
            return next((e for e in tracker.events if e.get("type") == GET_SLI_FINISHED), None)

        try:
            await workflow.wait_condition(
                lambda: finished() is not None or self.over(),
                timeout=self.host.settings.get_sli_timeout,
                timeout_summary="evaluation waiting for get-sli.finished",
            )
        except TimeoutError:
            return None
        return finished()

    async def _builtin_provider(self, provider: str, get_sli: dict[str, Any]) -> None:
        """Answer ``get-sli.triggered`` for a provider built into the control plane."""
        source = builtin_provider_source(provider)
        sli_data: dict[str, Any] = get_sli.get("data") or {}
        await self.emit_answer(
            GET_SLI_STARTED, {**scope_data(sli_data), "status": "succeeded"}, source, get_sli["id"]
        )
        try:
            fetched = await calls.fetch_slis(provider, get_sli)
            data = sli_finished_data(
                sli_data,
                result=fetched.result,
                status=fetched.status,
                message=fetched.message,
                indicator_values=fetched.indicator_values,
            )
        except ActivityError as err:
            cause = err.cause.message if err.cause is not None else str(err)  # type: ignore[attr-defined]
            data = sli_finished_data(
                sli_data, result="fail", status="errored", message=cause, indicator_values=[]
            )
        await self.emit_answer(GET_SLI_FINISHED, data, source, get_sli["id"])
