"""The approval task: Keptn's approval-service rules, plus Capstan's timeouts and several approvers (spec §5).

Keptn's approval-service answered every ``approval.triggered`` with an ``approval.started``
(``Approval strategy for result '<r>': <strategy>``) and then, by the decisive result:

* ``pass`` with strategy ``automatic``, or ``warning`` with strategy ``automatic`` → an
  ``approval.finished`` with ``result: pass``;
* ``fail`` → an ``approval.finished`` with ``result: fail`` (auto-decline), whatever the strategy;
* anything else (strategy ``manual`` or unset, an empty or unknown result) → nothing: a human
  answers with ``approval.finished``.

The strategies come from the shipyard task's properties, which reach the service as
``data.approval`` (``pass``, ``warning``). Keptn's specification documents ``automatic`` as the
default, but its code treats an unset strategy as ``manual``; Capstan follows the code.

Capstan adds, in the same ``data.approval`` block: ``timeout`` (a Go duration after which the
approval decides itself), ``onTimeout`` (``decline``, the default, or ``pass``) and ``approvers``
(how many distinct users must approve; default 1, as in Keptn). Votes are counted by
:class:`ApprovalTally`; :func:`approval_finished_data` records them under ``approval.approvers``.

Pure functions over event ``data`` dicts; the workflow side is ``workflows/approval.py``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from keptn.durations import parse_duration
from keptn.errors import InvalidInputError
from keptn.evaluation_payload import scope_data

__all__ = [
    "APPROVAL_SOURCE",
    "ApprovalPolicy",
    "ApprovalTally",
    "AutomaticDecision",
    "Decision",
    "Strategy",
    "Vote",
    "approval_finished_data",
    "approval_policy",
    "automatic_decision",
    "decisive_result",
    "started_message",
]

APPROVAL_SOURCE = "approval-service"
"""The source of every event the built-in approval service emits (Keptn's service name)."""

Strategy = Literal["automatic", "manual"]
Decision = Literal["approved", "declined"]

_AUTOMATIC: Strategy = "automatic"
_MANUAL: Strategy = "manual"
_ON_TIMEOUT = ("decline", "pass")


class ApprovalPolicy(BaseModel):
    """How an approval task decides, read from ``data.approval`` of its ``approval.triggered``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pass_strategy: Strategy | None = None
    """Strategy for result ``pass`` (shipyard ``pass``); ``None`` when unset, which acts as manual."""
    warning_strategy: Strategy | None = None
    """Strategy for result ``warning`` (shipyard ``warning``); ``None`` when unset (manual)."""
    timeout: datetime.timedelta | None = None
    """Capstan: how long a manual approval waits for a decision; ``None`` waits for ever (Keptn)."""
    on_timeout: Literal["decline", "pass"] = "decline"
    """Capstan: the outcome when ``timeout`` passes without a decision."""
    approvers: int = Field(1, ge=1)
    """Capstan: how many distinct users must approve; one decline declines."""


def _strategy(value: Any, key: str) -> Strategy | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInputError(
            f"approval.{key}: invalid approval strategy {value!r}: expected 'automatic' or 'manual'",
            field=f"approval.{key}",
        )
    # Keptn compares with "automatic" exactly; every other string (e.g. "Automatic") is manual.
    return _AUTOMATIC if value == _AUTOMATIC else _MANUAL


def _timeout(value: Any) -> datetime.timedelta | None:
    if value is None or value == "":
        return None
    field = "approval.timeout"
    timeout = parse_duration(value, field=field)
    if timeout <= datetime.timedelta(0):
        raise InvalidInputError(
            f"{field}: invalid timeout {value!r}: must be longer than 0s (leave it out to wait for ever)",
            field=field,
        )
    return timeout


def _on_timeout(value: Any) -> Literal["decline", "pass"]:
    if value is None or value == "":
        return "decline"
    if value == "decline":
        return "decline"
    if value == "pass":
        return "pass"
    raise InvalidInputError(
        f"approval.onTimeout: invalid value {value!r}: expected 'decline' or 'pass'",
        field="approval.onTimeout",
    )


def _approvers(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(
            f"approval.approvers: invalid number of approvers {value!r}: "
            "expected a whole number of at least 1",
            field="approval.approvers",
        )
    return value


def approval_policy(data: Mapping[str, Any]) -> ApprovalPolicy:
    """Read the approval policy from the ``data`` of an ``approval.triggered`` event.

    The policy is ``data["approval"]``: Keptn's shipyard properties ``pass`` and ``warning``,
    and Capstan's ``timeout``, ``onTimeout`` and ``approvers``. A missing block, a missing key,
    ``null`` and ``""`` all mean "not set". Unknown keys are ignored (Keptn ignored them too).

    A strategy other than ``automatic`` or ``manual`` is not an error: Keptn approved
    automatically only for exactly ``automatic`` and treated every other string as manual, so
    Capstan reads it as ``manual`` (and reports ``manual`` in the started message, where Keptn
    echoed the string as written).

    Args:
        data: ``data`` of the ``approval.triggered`` event (not the ``approval`` block itself).

    Returns:
        The policy.

    Raises:
        InvalidInputError: naming ``approval.<key>`` and the bad value, for a strategy that is
            not a string, a timeout that is not a positive Go duration (e.g. ``"30m"``), an
            ``onTimeout`` other than ``decline``/``pass``, or ``approvers`` that is not a whole
            number of at least 1.
    """
    block = data.get("approval")
    if block is None:
        return ApprovalPolicy()
    if not isinstance(block, Mapping):
        raise InvalidInputError(f"approval: expected a mapping, found {block!r}", field="approval")
    return ApprovalPolicy(
        pass_strategy=_strategy(block.get("pass"), "pass"),
        warning_strategy=_strategy(block.get("warning"), "warning"),
        timeout=_timeout(block.get("timeout")),
        on_timeout=_on_timeout(block.get("onTimeout")),
        approvers=_approvers(block.get("approvers")),
    )


def decisive_result(data: Mapping[str, Any]) -> str:
    """The result an approval decides on (§5 step 1), as Keptn's ``getResult``.

    ``data.result`` (the result of the previous task, or the trigger's result when approval is
    the first task); if that is empty, ``data.evaluation.result``; else ``""``. A value that is
    not a string counts as missing.

    Args:
        data: ``data`` of the ``approval.triggered`` event.

    Returns:
        ``pass``, ``warning``, ``fail``, another string as given, or ``""``.
    """
    result = data.get("result")
    if isinstance(result, str) and result:
        return result
    evaluation = data.get("evaluation")
    if isinstance(evaluation, Mapping):
        fallback = evaluation.get("result")
        if isinstance(fallback, str):
            return fallback
    return ""


def _effective_strategy(result: str, policy: ApprovalPolicy) -> Strategy:
    """Keptn's ``getApprovalStrategyForEvent``: fail is automatic, unset and unknown are manual."""
    if result == "pass":
        return policy.pass_strategy or _MANUAL
    if result == "warning":
        return policy.warning_strategy or _MANUAL
    if result == "fail":
        return _AUTOMATIC
    return _MANUAL


def started_message(result: str, policy: ApprovalPolicy) -> str:
    """The message of ``approval.started``: ``Approval strategy for result '<r>': <strategy>``.

    As Keptn's approval-service: the strategy is the one configured for ``pass``/``warning``
    (``manual`` when unset), ``automatic`` for ``fail`` (it is declined automatically) and
    ``manual`` for an empty or unknown result, e.g. ``Approval strategy for result '': manual``.

    Args:
        result: the decisive result (:func:`decisive_result`).
        policy: the approval policy.
    """
    return f"Approval strategy for result '{result}': {_effective_strategy(result, policy)}"


class AutomaticDecision(BaseModel):
    """An outcome the approval service sends without waiting for a human."""

    model_config = ConfigDict(frozen=True)

    result: Literal["pass", "fail"]
    message: str


def automatic_decision(result: str, policy: ApprovalPolicy) -> AutomaticDecision | None:
    """Decide automatically if Keptn did (§5 step 3); ``None`` means a human decides.

    ``pass`` with ``pass: automatic`` and ``warning`` with ``warning: automatic`` approve;
    ``fail`` declines whatever the strategy. Everything else waits: a manual or unset strategy,
    an empty result, an unknown result (compared exactly, so ``PASS`` is unknown).

    Keptn's automatic ``approval.finished`` carried an empty message; Capstan says what happened,
    in the words of Keptn's log lines ("Automatically approve release ...", "Disapprove release
    ... because the previous step failed").

    Args:
        result: the decisive result (:func:`decisive_result`).
        policy: the approval policy.
    """
    if result in ("pass", "warning") and _effective_strategy(result, policy) == _AUTOMATIC:
        return AutomaticDecision(
            result="pass",
            message=f"Automatically approved: the approval strategy for result '{result}' is automatic",
        )
    if result == "fail":
        return AutomaticDecision(
            result="fail", message="Automatically declined because the previous step failed"
        )
    return None


class Vote(BaseModel):
    """One user's decision on an approval."""

    model_config = ConfigDict(frozen=True)

    user: str
    approved: bool
    message: str = ""


class ApprovalTally:
    """The votes on one approval, in arrival order.

    Each user decides once: a later vote by a user who has already voted is not counted and is
    listed in :attr:`ignored` instead (users are compared exactly). The outcome is fixed by the
    vote that first settles it: a decline declines at once; otherwise the approval is approved when
    ``required`` distinct users have approved. Votes after that are kept but do not change it.

    Args:
        required: the number of approvers :attr:`decided` asks for (:meth:`decision` takes its own).
    """

    def __init__(self, required: int = 1) -> None:
        if required < 1:
            raise ValueError(f"an approval needs at least one approver, not {required}")
        self.required = required
        self._votes: list[Vote] = []
        self._ignored: list[Vote] = []

    def add(self, vote: Vote) -> None:
        """Count ``vote``, unless its user has voted already (then it goes to :attr:`ignored`)."""
        if any(counted.user == vote.user for counted in self._votes):
            self._ignored.append(vote)
        else:
            self._votes.append(vote)

    @property
    def votes(self) -> list[Vote]:
        """The counted votes (one per user), in arrival order."""
        return list(self._votes)

    @property
    def ignored(self) -> list[Vote]:
        """Repeated votes that were not counted, in arrival order."""
        return list(self._ignored)

    @property
    def approvers(self) -> list[str]:
        """The distinct users who approved, in arrival order."""
        return [vote.user for vote in self._votes if vote.approved]

    @property
    def declined_by(self) -> Vote | None:
        """The first counted decline, if any."""
        return next((vote for vote in self._votes if not vote.approved), None)

    def decision(self, required: int) -> Decision | None:
        """The outcome with ``required`` approvers: the first vote that settles it decides.

        Args:
            required: how many distinct users must approve (at least 1).

        Returns:
            ``declined`` if a decline came before ``required`` approvals, ``approved`` once
            ``required`` users approved, else ``None`` (still open).
        """
        if required < 1:
            raise ValueError(f"an approval needs at least one approver, not {required}")
        approvals = 0
        for vote in self._votes:
            if not vote.approved:
                return "declined"
            approvals += 1
            if approvals >= required:
                return "approved"
        return None

    @property
    def decided(self) -> Decision | None:
        """:meth:`decision` for the ``required`` given to the constructor."""
        return self.decision(self.required)


def approval_finished_data(
    triggered_data: Mapping[str, Any], *, result: str, message: str, votes: list[Vote]
) -> dict[str, Any]:
    """The data of the ``approval.finished`` the approval service sends.

    ``project``, ``stage``, ``service`` and ``labels`` are copied from the triggered event,
    ``status`` is ``succeeded`` (a decline is a successful task with ``result: fail``, as in
    Keptn). Capstan extension: when there are votes, ``approval.approvers`` lists them
    (``user``, ``approved``, ``message``); an automatic or timed-out decision without votes has
    no ``approval`` key, so it looks exactly like Keptn's.

    Args:
        triggered_data: ``data`` of the ``approval.triggered`` event.
        result: ``pass`` (approved) or ``fail`` (declined).
        message: what decided, e.g. ``approved by alice, bob``.
        votes: the counted votes (:attr:`ApprovalTally.votes`).
    """
    data = scope_data(triggered_data)
    data.update(result=result, status="succeeded", message=message)
    if votes:
        data["approval"] = {
            "approvers": [
                {"user": vote.user, "approved": vote.approved, "message": vote.message} for vote in votes
            ]
        }
    return data


def human_decision_event(
    triggered: Mapping[str, Any], *, approved: bool, user: str, message: str, source: str
) -> dict[str, Any]:
    """The ``approval.finished`` a person sends to decide an open ``approval.triggered``.

    The shape Keptn's CLI (``keptn send event approval.finished``) and Bridge sent: the scope and
    labels of the triggered event, ``status: succeeded``, ``result`` pass (approve) or fail
    (decline), plus Capstan's ``approval`` block naming who decided and why.

    Args:
        triggered: the open ``approval.triggered`` event (``id``, ``shkeptncontext``, ``data``).
        approved: approve (True) or decline.
        user: who decides.
        message: why; may be empty.
        source: the event's ``source`` (the client that sends it).
    """
    given = triggered.get("data")
    given = given if isinstance(given, Mapping) else {}
    data: dict[str, Any] = {key: given.get(key) for key in ("project", "stage", "service")}
    labels = given.get("labels")
    if isinstance(labels, Mapping) and labels:
        data["labels"] = {str(key): str(value) for key, value in labels.items()}
    data.update(
        status="succeeded",
        result="pass" if approved else "fail",
        message=message,
        approval={"user": user, "approved": approved, "message": message},
    )
    return {
        "type": "sh.keptn.event.approval.finished",
        "specversion": "1.0",
        "source": source,
        "contenttype": "application/json",
        "triggeredid": str(triggered.get("id", "")),
        "shkeptncontext": str(triggered.get("shkeptncontext", "")),
        "data": data,
    }
