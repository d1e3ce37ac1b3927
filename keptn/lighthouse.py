"""Quality-gate scoring exactly as Keptn's lighthouse (spec §4.4, §4.5, §4.6).

:func:`evaluate` turns an SLO, the SLI values of the provider and the previous evaluations into
the data fields of an ``evaluation.finished`` event::

    {"result", "status", "message",
     "evaluation": {"result", "score", "indicatorResults", "comparedEvents"}}

Each ``indicatorResults`` entry has lighthouse's shape::

    {"score", "value": {"metric", "value", "comparedValue", "success", "message"},
     "displayName", "passTargets", "warningTargets", "keySli", "status"}

with targets ``{"criteria", "targetValue", "violated"}``. Like lighthouse (Go nil slices), an
empty ``passTargets``/``warningTargets``/``indicatorResults``/``comparedEvents`` is ``None``
(JSON ``null``), never ``[]``. Numbers are floats; :func:`to_go_json_numbers` makes ``json``
print whole ones as Go did (``100``, not ``100.0``).

Outcomes that involve no scoring (no SLI provider, no SLO file, provider errors) and the
#6096 rule are in :mod:`keptn.lighthouse_outcomes`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from keptn.lighthouse_comparison import (
    ComparisonRules,
    aggregate,
    apply_comparison_rules,
    comparison_rules,
    percentile,
    previous_values_by_metric,
)
from keptn.lighthouse_numbers import go_float, parse_go_float, to_go_json_numbers
from keptn.lighthouse_outcomes import (
    NO_OBJECTIVES_MESSAGE,
    aborted_sli_outcome,
    apply_sli_outcome,
    errored_outcome,
    errored_sli_outcome,
    no_provider_outcome,
    no_slo_outcome,
    outcome,
)
from keptn.slo import SLO, CriteriaSet, InvalidCriterionError, Objective, parse_criterion

__all__ = [
    "NO_OBJECTIVES_MESSAGE",
    "NO_VALUE_MESSAGE",
    "ComparisonRules",
    "IndicatorValue",
    "aborted_sli_outcome",
    "aggregate",
    "apply_comparison_rules",
    "apply_sli_outcome",
    "comparison_rules",
    "errored_outcome",
    "errored_sli_outcome",
    "evaluate",
    "go_float",
    "no_provider_outcome",
    "no_slo_outcome",
    "percentile",
    "to_go_json_numbers",
]

NO_VALUE_MESSAGE = "no value received from SLI provider"
"""The message of an objective whose SLI the provider did not return."""


class IndicatorValue(BaseModel):
    """One SLI value from the provider (Keptn's ``SLIResult``); unknown keys are ignored.

    Types are checked strictly, as Go's JSON decoding did (``"5"`` is not a number); ``null``
    counts as absent.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    metric: str
    value: float = 0.0
    """The measured value; default 0."""
    success: bool = False
    """Whether the provider could measure it; default false."""
    message: str = ""
    """The provider's message, e.g. why it failed; default empty."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


def evaluate(
    slo: SLO, values: Sequence[IndicatorValue], previous: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Score SLI values against an SLO as lighthouse's ``evaluateObjectives`` and ``calculateScore``.

    Args:
        slo: the parsed SLO.
        values: the provider's ``indicatorValues``.
        previous: the previous evaluations to compare with (:func:`apply_comparison_rules`),
            newest first; each an ``evaluation.finished`` data object, optionally with ``"id"``.

    Returns:
        The data fields (see the module docstring). ``status`` is ``succeeded`` for every
        computed outcome, a failed gate included; ``errored`` only for a missing or unparsable
        ``total_score`` target. Apply the provider's result with :func:`apply_sli_outcome`.
    """
    compared_events = [
        entry["id"] for entry in previous if isinstance(entry, dict) and isinstance(entry.get("id"), str)
    ]
    history_by_metric = previous_values_by_metric(previous)  # once, not once per objective
    remaining = list(values)
    results: list[dict[str, Any]] = []
    max_score = 0.0
    key_sli_failure: str | None = None
    for objective in slo.objectives:
        if objective.pass_:
            max_score += objective.weight
        history = history_by_metric.get(objective.sli, [])
        value = _take(remaining, objective.sli)
        try:
            result = _evaluate_objective(objective, value, history, slo.comparison.aggregate_function)
        except InvalidCriterionError as exc:
            name = objective.display_name or objective.sli
            return outcome(
                status="succeeded",
                result="fail",
                message=f"error with {name}: {exc.reason}",
                compared_events=compared_events,
            )
        results.append(result)
        if objective.key_sli and result["status"] == "fail" and key_sli_failure is None:
            key_sli_failure = (
                f"Evaluation failed due to key_sli objective '{objective.display_name}':"
                f" {result['value']['message']}"
            )
    if not slo.objectives:
        max_score = 100.0  # Keptn scores an SLO without objectives as 0 of 100, then fails it below
    scored = _score(slo, results, max_score, key_sli_failure, _additional_slis_message(remaining))
    if scored["status"] != "succeeded":
        return scored
    scored["evaluation"]["comparedEvents"] = compared_events or None
    if not slo.objectives:
        scored["result"] = "fail"
        scored["message"] = NO_OBJECTIVES_MESSAGE
    return scored


def _take(remaining: list[IndicatorValue], sli: str) -> IndicatorValue | None:
    """Remove and return the first value of an SLI the way Go did (the last one moves into its place).

    The order matters: the leftover values are named in the "additional SLIs" message.
    """
    for index, candidate in enumerate(remaining):
        if candidate.metric == sli:
            remaining[index] = remaining[-1]
            remaining.pop()
            return candidate
    return None


def _evaluate_objective(
    objective: Objective, value: IndicatorValue | None, history: list[float], function: str
) -> dict[str, Any]:
    """Score one objective; raise InvalidCriterionError for an unparsable pass criterion."""
    baseline = aggregate(history, function) if history else 0.0
    shown = value or IndicatorValue(metric=objective.sli, success=False, message=NO_VALUE_MESSAGE)
    if not objective.pass_:
        return _result(objective, shown, "info", 0.0, [], _unevaluated(objective.warning, baseline))
    if value is None or not value.success:
        targets = _unevaluated(objective.pass_, baseline), _unevaluated(objective.warning, baseline)
        return _result(objective, shown, "fail", 0.0, *targets)
    passed, pass_targets = _evaluate_sets(objective.pass_, value.value, history, baseline, strict=True)
    status, score = ("pass", float(objective.weight)) if passed else ("fail", 0.0)
    warning_targets: list[dict[str, Any]] = []
    if objective.warning:
        warned, warning_targets = _evaluate_sets(
            objective.warning, value.value, history, baseline, strict=False
        )
        if not passed and warned:
            status, score = "warning", 0.5 * objective.weight
    return _result(objective, shown, status, score, pass_targets, warning_targets, compared=baseline)


def _evaluate_sets(
    sets: list[CriteriaSet], measured: float, history: list[float], baseline: float, *, strict: bool
) -> tuple[bool, list[dict[str, Any]]]:
    """OR over the sets of AND over their criteria; every criterion is evaluated and listed.

    With ``strict``, an unparsable criterion raises; otherwise it is listed as violated and the
    whole OR is false (lighthouse ignored the error but did not count the sets as satisfied).
    """
    satisfied = invalid = False
    targets = []
    for criteria_set in sets:
        set_holds = True
        for raw in criteria_set.criteria:
            try:
                criterion = parse_criterion(raw)
            except InvalidCriterionError:
                if strict:
                    raise
                invalid, set_holds = True, False
                targets.append(_target(raw, 0.0, violated=True))
                continue
            if criterion.relative and not history:
                # Nothing to compare with (first evaluation): a relative criterion holds.
                targets.append(_target(raw, 0.0, violated=False))
                continue
            target = criterion.target(baseline)
            holds = criterion.holds(measured, target)
            set_holds = set_holds and holds
            targets.append(_target(raw, target, violated=not holds))
        satisfied = satisfied or set_holds
    return satisfied and not invalid, targets


def _unevaluated(sets: list[CriteriaSet], baseline: float) -> list[dict[str, Any]]:
    """Targets of criteria that were not evaluated: all violated; unparsable ones left out.

    A relative criterion shows the bare baseline, without its +/-/% applied (as Keptn did).
    """
    targets = []
    for criteria_set in sets:
        for raw in criteria_set.criteria:
            try:
                criterion = parse_criterion(raw)
            except InvalidCriterionError:
                continue
            targets.append(_target(raw, baseline if criterion.relative else criterion.value, violated=True))
    return targets


def _target(criteria: str, target_value: float, *, violated: bool) -> dict[str, Any]:
    return {"criteria": criteria, "targetValue": target_value, "violated": violated}


def _result(
    objective: Objective,
    value: IndicatorValue,
    status: str,
    score: float,
    pass_targets: list[dict[str, Any]],
    warning_targets: list[dict[str, Any]],
    *,
    compared: float = 0.0,
) -> dict[str, Any]:
    return {
        "score": score,
        "value": {
            "metric": value.metric,
            "value": value.value,
            "comparedValue": compared,
            "success": value.success,
            "message": value.message,
        },
        "displayName": objective.display_name,
        "passTargets": pass_targets or None,
        "warningTargets": warning_targets or None,
        "keySli": objective.key_sli,
        "status": status,
    }


def _additional_slis_message(remaining: list[IndicatorValue]) -> str:
    """Lighthouse's note about SLI values no objective asked for (built as Go built it)."""
    names = ""
    for value in remaining:
        if names:
            names += ", "
        names += value.metric
    if not names:
        return ""
    return (
        f"Lighthouse received additional SLIs, which are not specified as SLO: {names} ."
        " Please consider using them as an SLO."
    )


def _score(
    slo: SLO, results: list[dict[str, Any]], max_score: float, key_sli_failure: str | None, message: str
) -> dict[str, Any]:
    """Lighthouse's ``calculateScore``: total score, thresholds and the message.

    The "additional SLIs" message survives only a pass: every other branch replaces it.
    """

    def scored(result: str, score: float, text: str) -> dict[str, Any]:
        return outcome(
            status="succeeded", result=result, message=text, score=score, indicator_results=results
        )

    if max_score == 0:
        return scored("pass", 100.0, message)
    total = 0.0
    for result in results:
        if result["passTargets"]:
            total += result["score"]
    score = 100.0 * (total / max_score)
    if slo.total_score is None or slo.total_score.pass_ == "":
        return errored_outcome("no target score defined")
    pass_target = parse_go_float(slo.total_score.pass_.removesuffix("%"))
    if pass_target is None:
        return errored_outcome("could not parse pass target percentage")
    if score >= pass_target and key_sli_failure is None:
        return scored("pass", score, message)
    if slo.total_score.warning != "" and key_sli_failure is None:
        warning_target = parse_go_float(slo.total_score.warning.removesuffix("%"))
        if warning_target is None:
            return errored_outcome("could not parse warning target percentage")
        if score >= warning_target:
            text = (
                f"Evaluation returned a warning: the calculated score of {go_float(score)}"
                f" is close to the warning target value of {go_float(warning_target)}"
            )
            return scored("warning", score, text)
        text = (
            f"Evaluation failed since the calculated score of {go_float(score)}"
            f" is below the warning value of {go_float(warning_target)}"
        )
        return scored("fail", score, text)
    if key_sli_failure is not None:
        return scored("fail", score, key_sli_failure)
    text = (
        f"Evaluation failed since the calculated score of {go_float(score)}"
        f" is below the target value of {go_float(pass_target)}"
    )
    return scored("fail", score, text)
