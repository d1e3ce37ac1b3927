"""The ``evaluation.finished`` outcomes lighthouse sent without scoring, and the #6096 rule.

Every builder returns the *data fields decided by lighthouse* of an ``evaluation.finished``
event, in the shape :func:`keptn.lighthouse.evaluate` returns::

    {"result", "status", "message",
     "evaluation": {"result", "score", "indicatorResults", "comparedEvents"}}

The caller adds ``project``/``stage``/``service``/``labels`` and ``evaluation.timeStart``,
``timeEnd`` and ``sloFileContent``. Lists that Keptn left empty are ``None`` (JSON ``null``), as
Go's nil slices were.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = [
    "NO_OBJECTIVES_MESSAGE",
    "aborted_sli_outcome",
    "apply_sli_outcome",
    "errored_outcome",
    "errored_sli_outcome",
    "no_provider_outcome",
    "no_slo_outcome",
    "outcome",
]

NO_OBJECTIVES_MESSAGE = "lighthouse failed because no SLO objective was provided"
"""The message of an evaluation whose SLO has no objectives (#9198)."""


def outcome(
    *,
    status: str,
    result: str,
    message: str,
    evaluation_result: str | None = None,
    score: float = 0.0,
    indicator_results: list[dict[str, Any]] | None = None,
    compared_events: list[str] | None = None,
) -> dict[str, Any]:
    """Build evaluation.finished data fields.

    Args:
        status: ``succeeded`` or ``errored``.
        result: ``data.result`` (``pass``/``warning``/``fail``).
        message: ``data.message``.
        evaluation_result: ``data.evaluation.result``; default ``result``.
        score: ``data.evaluation.score``; default 0.
        indicator_results: one entry per objective, or None.
        compared_events: ids of the previous evaluations used, or None.

    Returns:
        The data fields.
    """
    return {
        "result": result,
        "status": status,
        "message": message,
        "evaluation": {
            "result": evaluation_result if evaluation_result is not None else result,
            "score": score,
            "indicatorResults": indicator_results or None,
            "comparedEvents": compared_events or None,
        },
    }


def no_provider_outcome(project: str) -> dict[str, Any]:
    """No SLI provider is configured for the project: pass without evaluating (spec §4.3 step 5).

    Args:
        project: the project, named in the message.

    Returns:
        Data fields: succeeded/pass, evaluation pass with score 0.
    """
    return outcome(
        status="succeeded",
        result="pass",
        message=(
            f"no evaluation performed by lighthouse because no SLI-provider configured for project {project}"
        ),
    )


def no_slo_outcome(project: str) -> dict[str, Any]:
    """The service has no ``slo.yaml``: pass without evaluating (spec §4.3 step 8).

    Args:
        project: the project, named in the message.

    Returns:
        Data fields: succeeded/pass, evaluation pass with score 0.
    """
    return outcome(
        status="succeeded",
        result="pass",
        message=f"no evaluation performed by lighthouse because no SLO file configured for project {project}",
    )


def errored_outcome(message: str) -> dict[str, Any]:
    """Lighthouse could not evaluate (unreadable SLO, no window, no target score, ...).

    Args:
        message: what went wrong.

    Returns:
        Data fields: errored/fail, evaluation fail with score 0.
    """
    return outcome(status="errored", result="fail", message=message)


def aborted_sli_outcome() -> dict[str, Any]:
    """The SLI provider answered ``get-sli.finished`` with status ``aborted``.

    Returns:
        Data fields: errored/fail, "evaluation performed by lighthouse was aborted".
    """
    return errored_outcome("evaluation performed by lighthouse was aborted")


def errored_sli_outcome(message: str) -> dict[str, Any]:
    """The SLI provider answered ``get-sli.finished`` with status ``errored``.

    Args:
        message: the provider's ``data.message``.

    Returns:
        Data fields: errored/fail, "evaluation performed by lighthouse received an unexpected
        error: <message>".
    """
    return errored_outcome(f"evaluation performed by lighthouse received an unexpected error: {message}")


def apply_sli_outcome(data: dict[str, Any], sli_result: str, sli_message: str) -> dict[str, Any]:
    """Apply the SLI provider's ``get-sli.finished`` result to a computed evaluation (#6096).

    If the provider reported ``result: fail``, the evaluation fails (``data.result = fail``,
    message "lighthouse failed because SLI failed with message <msg>") while
    ``evaluation.result`` and ``evaluation.score`` keep their computed values. Not applied to an
    SLO without objectives (its own failure message takes precedence) nor to errored outcomes
    (lighthouse returned before this step).

    Args:
        data: the outcome of :func:`keptn.lighthouse.evaluate`.
        sli_result: ``data.result`` of the ``get-sli.finished`` event.
        sli_message: ``data.message`` of the ``get-sli.finished`` event.

    Returns:
        A new dict; ``data`` is not changed.
    """
    changed = copy.deepcopy(data)
    if (
        sli_result != "fail"
        or data.get("status") != "succeeded"
        or data.get("message") == NO_OBJECTIVES_MESSAGE
    ):
        return changed
    changed["result"] = "fail"
    changed["message"] = f"lighthouse failed because SLI failed with message {sli_message}"
    return changed
