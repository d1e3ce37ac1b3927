"""The payloads lighthouse sends around an evaluation: ``get-sli.triggered`` and ``evaluation.finished``.

Pure functions over event ``data`` dicts; the scoring that decides the outcome is
:mod:`keptn.lighthouse`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keptn.lighthouse_numbers import to_go_json_numbers

LIGHTHOUSE_SOURCE = "lighthouse-service"
"""The source of every event lighthouse emits (the sequence state view looks for it)."""
EVALUATION_STARTED = "sh.keptn.event.evaluation.started"
EVALUATION_FINISHED = "sh.keptn.event.evaluation.finished"
GET_SLI_TRIGGERED = "sh.keptn.event.get-sli.triggered"
GET_SLI_STARTED = "sh.keptn.event.get-sli.started"
GET_SLI_FINISHED = "sh.keptn.event.get-sli.finished"


def scope_data(triggered: Mapping[str, Any]) -> dict[str, Any]:
    """``project``, ``stage``, ``service`` and ``labels`` of an event's data, as lighthouse copies them."""
    data: dict[str, Any] = {key: triggered.get(key, "") for key in ("project", "stage", "service")}
    labels = triggered.get("labels")
    if isinstance(labels, dict) and labels:
        data["labels"] = labels
    return data


def deployment_name(triggered: Mapping[str, Any]) -> str:
    """``deployment.deploymentNames[0]`` of an ``evaluation.triggered``, or ``""``."""
    deployment = triggered.get("deployment")
    names = deployment.get("deploymentNames") if isinstance(deployment, dict) else None
    if isinstance(names, list) and names and isinstance(names[0], str):
        return names[0]
    return ""


def get_sli_triggered_data(
    triggered: Mapping[str, Any],
    *,
    provider: str,
    start: str,
    end: str,
    indicators: Sequence[str],
    custom_filters: Mapping[str, str],
) -> dict[str, Any]:
    """The data of the ``get-sli.triggered`` lighthouse sends for an ``evaluation.triggered`` (§4.3 step 6).

    Args:
        triggered: ``data`` of the ``evaluation.triggered`` event.
        provider: the project's SLI provider.
        start: window start, formatted.
        end: window end, formatted.
        indicators: the SLI of every objective, informational ones included, in file order.
        custom_filters: the SLO's ``filter`` map.
    """
    data = scope_data(triggered)
    data["get-sli"] = {
        "sliProvider": provider,
        "start": start,
        "end": end,
        "indicators": list(indicators),
        "customFilters": [{"key": key, "value": value} for key, value in custom_filters.items()],
    }
    deployment = deployment_name(triggered)
    if deployment:
        data["deployment"] = deployment
    return data


def evaluation_finished_data(
    triggered: Mapping[str, Any],
    outcome: Mapping[str, Any],
    *,
    time_start: str = "",
    time_end: str = "",
    slo_content: str = "",
) -> dict[str, Any]:
    """The data of ``evaluation.finished``: scope, the outcome and the evaluation details.

    Args:
        triggered: ``data`` of the ``evaluation.triggered`` event.
        outcome: what scoring decided: ``result``, ``status``, ``message`` and ``evaluation``
            (``result``, ``score``, ``indicatorResults``, ``comparedEvents``).
        time_start: window start, formatted (empty when there was no window).
        time_end: window end, formatted.
        slo_content: base64 of the raw ``slo.yaml`` (empty when there was none).
    """
    data = scope_data(triggered)
    data.update(
        result=outcome.get("result", "fail"),
        status=outcome.get("status", "errored"),
        message=outcome.get("message", ""),
    )
    evaluation: dict[str, Any] = {"timeStart": time_start, "timeEnd": time_end}
    inner = outcome.get("evaluation")
    if isinstance(inner, Mapping):
        evaluation.update(inner)
    evaluation["sloFileContent"] = slo_content
    data["evaluation"] = evaluation
    # Whole numbers as Go's encoder wrote them (score 100, not 100.0): consumers compare text too.
    document: dict[str, Any] = to_go_json_numbers(data)
    return document


def sli_finished_data(
    triggered: Mapping[str, Any],
    *,
    result: str,
    status: str,
    message: str,
    indicator_values: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The data of the ``get-sli.finished`` a built-in SLI provider answers with."""
    data = scope_data(triggered)
    get_sli = triggered.get("get-sli")
    window = get_sli if isinstance(get_sli, Mapping) else {}
    data.update(result=result, status=status, message=message)
    data["get-sli"] = {
        "start": window.get("start", ""),
        "end": window.get("end", ""),
        "indicatorValues": [dict(value) for value in indicator_values],
    }
    return data
