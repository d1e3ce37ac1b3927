"""The built-in approval service: Keptn's approval task, plus timeouts and several approvers.

Keptn semantics (§5): ``approval.started`` at once; an automatic pass by the task's strategy, an
automatic decline when the result to approve is ``fail``; otherwise a human decides. A human's
``approval.finished`` posted to ``/api/v1/event`` completes the task as in Keptn. Beyond Keptn, a
decision can also come as the context workflow's ``approve`` update (the Temporal Web UI's "Send an
Update"), the task may require several distinct approvers, and it may time out with a chosen
outcome; then the service itself sends ``approval.finished`` recording who decided.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from keptn.approval import (
        APPROVAL_SOURCE,
        ApprovalPolicy,
        ApprovalTally,
        Vote,
        approval_finished_data,
        approval_policy,
        automatic_decision,
        decisive_result,
        started_message,
    )
    from keptn.durations import format_duration
    from keptn.errors import InvalidInputError
    from keptn.evaluation_payload import scope_data
    from workflows.builtin_task import BuiltinHost, BuiltinTask

APPROVAL_STARTED = "sh.keptn.event.approval.started"
APPROVAL_FINISHED = "sh.keptn.event.approval.finished"


def vote_of(event: dict[str, Any]) -> Vote:
    """The decision an ``approval.finished`` from a client carries: who, approved or not, why."""
    data: dict[str, Any] = event.get("data") or {}
    details = data.get("approval")
    details = details if isinstance(details, dict) else {}
    user = details.get("user")
    message = details.get("message") or data.get("message") or ""
    return Vote(
        user=str(user) if isinstance(user, str) and user else str(event.get("source", "")),
        approved=data.get("result") == "pass",
        message=str(message),
    )


class Approval(BuiltinTask):
    """One ``approval.triggered`` event, answered as Keptn's approval-service did.

    Args:
        host: the context workflow.
        triggered: the stored ``approval.triggered`` wire event.
        over: tells when the sequence no longer waits for this task.
        waiting: the context's open approvals; a manual approval is listed there while it waits,
            so that the ``approve`` update can find it.
    """

    def __init__(
        self,
        host: BuiltinHost,
        triggered: dict[str, Any],
        over: Callable[[], bool],
        waiting: dict[str, Approval],
    ) -> None:
        super().__init__(host, triggered, over, APPROVAL_SOURCE)
        self.triggered_id = str(triggered["id"])
        self.tally = ApprovalTally()
        self.policy: ApprovalPolicy | None = None
        self.manual = False
        """A human decides (no automatic outcome applied)."""
        self.decided = False
        """A final decision was taken: by the service, or by a human's own ``.finished``."""
        self._waiting = waiting
        # Listed before the approval.triggered is stored (the service is built before the event
        # is emitted): an operator who sees the event may decide at once, and the ``approve``
        # update must find it even before this service's first step has run.
        waiting[self.triggered_id] = self

    @property
    def required(self) -> int:
        """How many distinct approvers the task needs."""
        return self.policy.approvers if self.policy else 1

    def is_open(self) -> bool:
        """Whether the approval may still take a human decision (also while its policy is read)."""
        return not self.decided and not self.over()

    async def vote(self, vote: Vote) -> None:
        """Count a decision from the ``approve`` update once the approval is known to be manual.

        Raises:
            ApplicationError: the approval was decided automatically (or ended) meanwhile.
        """
        await workflow.wait_condition(lambda: self.manual or self.decided or self.over())
        if not self.manual or not self.is_open():
            raise ApplicationError(
                f"approval '{self.triggered_id}' was decided automatically or has ended", non_retryable=True
            )
        self.tally.add(vote)

    def intercept(self, event: dict[str, Any]) -> bool:
        """Take a client's ``approval.finished`` as a vote; True if the task must not count it.

        With one approver (Keptn) the human's event is the task's ``.finished`` and completes it;
        with several, each is a vote and the service finishes the task once they are decided.
        """
        if event.get("type") != APPROVAL_FINISHED or event.get("source") == APPROVAL_SOURCE:
            return False
        if not self.manual or self.decided:
            return False
        vote = vote_of(event)
        if self.required <= 1:
            self.decided = True
            self.tally.add(vote)
            return False
        self.tally.add(vote)
        return True

    async def run(self) -> None:
        """Answer the approval task: ``.started``, then an automatic or a human decision."""
        try:
            await self._run()
        finally:
            self._waiting.pop(self.triggered_id, None)

    async def _run(self) -> None:
        try:
            self.policy = approval_policy(self.data)
        except InvalidInputError as err:
            scope = scope_data(self.data)
            await self.answer(APPROVAL_STARTED, {**scope, "status": "succeeded"})
            await self.answer(
                APPROVAL_FINISHED, {**scope, "result": "fail", "status": "errored", "message": err.message}
            )
            return
        result = decisive_result(self.data)
        started = {
            **scope_data(self.data),
            "status": "succeeded",
            "message": started_message(result, self.policy),
        }
        await self.answer(APPROVAL_STARTED, started)
        automatic = automatic_decision(result, self.policy)
        if automatic is not None:
            self.decided = True
            await self._finish(automatic.result, automatic.message)
            return
        self.manual = True
        await self._await_decision(self.policy)

    async def _await_decision(self, policy: ApprovalPolicy) -> None:
        try:
            await workflow.wait_condition(
                lambda: self.decided or self.tally.decision(self.required) is not None or self.over(),
                timeout=policy.timeout,
                timeout_summary="approval waiting for a decision",
            )
        except TimeoutError:
            if self.decided or self.over():
                return
            self.decided = True
            passed = policy.on_timeout == "pass"
            timeout = format_duration(policy.timeout) if policy.timeout else ""
            await self._finish(
                "pass" if passed else "fail",
                f"approval timed out after {timeout}: {'passed' if passed else 'declined'} automatically",
            )
            return
        if self.decided or self.over():
            return  # a human's own .finished completed the task, or the sequence stopped waiting
        self.decided = True
        decision = self.tally.decision(self.required)
        users = ", ".join(vote.user for vote in self.tally.votes if vote.approved == (decision == "approved"))
        if decision == "approved":
            await self._finish("pass", f"approved by {users}")
        else:
            await self._finish("fail", f"declined by {users}")

    async def _finish(self, result: str, message: str) -> None:
        data = approval_finished_data(self.data, result=result, message=message, votes=self.tally.votes)
        await self.answer(APPROVAL_FINISHED, data)
