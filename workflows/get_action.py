"""The built-in remediation service: Keptn's ``get-action`` task.

It chooses the next action of a remediation loop from the service's ``remediation.yaml`` (§6.3):
the action list of the problem's root cause, else its title, else ``default``, at the index the
payload carries (``get-action.actionIndex``, which the loop's payload merge advances).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from keptn.evaluation_payload import scope_data
    from workflows import activity_calls as calls
    from workflows.builtin_task import BuiltinHost, BuiltinTask

REMEDIATION_SOURCE = "remediation-service"
GET_ACTION_STARTED = "sh.keptn.event.get-action.started"
GET_ACTION_FINISHED = "sh.keptn.event.get-action.finished"


class GetAction(BuiltinTask):
    """One ``get-action.triggered`` event, answered as Keptn's remediation-service did."""

    def __init__(self, host: BuiltinHost, triggered: dict[str, Any], over: Callable[[], bool]) -> None:
        super().__init__(host, triggered, over, REMEDIATION_SOURCE)

    async def run(self) -> None:
        """Answer ``get-action``: ``.started``, then the chosen action (or why there is none)."""
        scope = scope_data(self.data)
        await self.answer(GET_ACTION_STARTED, {**scope, "status": "succeeded"})
        try:
            chosen = await calls.choose_action(self.triggered)
            data = chosen.data
        except ActivityError as err:
            cause = err.cause.message if err.cause is not None else str(err)  # type: ignore[attr-defined]
            data = {**scope, "result": "fail", "status": "errored", "message": cause}
        await self.answer(GET_ACTION_FINISHED, data)
