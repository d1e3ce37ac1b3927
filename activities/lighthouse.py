"""Activities of the built-in lighthouse: what an evaluation reads, and its scoring.

The decisions are :mod:`keptn.lighthouse` (scoring), :mod:`keptn.slo` and
:mod:`keptn.evaluation_window`; these activities only fetch their inputs from the store and return
``evaluation.finished`` data for the workflow (``workflows/lighthouse.py``) to emit.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import BaseModel
from temporalio import activity

from keptn.errors import InvalidInputError, NotFoundError
from keptn.evaluation_payload import evaluation_finished_data, get_sli_triggered_data
from keptn.evaluation_window import evaluation_window, format_evaluation_time
from keptn.lighthouse import (
    IndicatorValue,
    aborted_sli_outcome,
    apply_comparison_rules,
    apply_sli_outcome,
    comparison_rules,
    errored_outcome,
    errored_sli_outcome,
    evaluate,
    no_provider_outcome,
    no_slo_outcome,
)
from keptn.slo import SLO, parse_slo
from store import monitoring
from store import projects as project_store
from store.evaluations import previous_evaluations
from store.resources import ResourceScope, get_resource

PREPARE_EVALUATION_ACTIVITY = "prepare_evaluation"
SCORE_EVALUATION_ACTIVITY = "score_evaluation"
SLO_FILE = "slo.yaml"


class PrepareEvaluationInput(BaseModel):
    """Input of ``prepare_evaluation``."""

    event: dict[str, Any]
    """The stored ``evaluation.triggered`` wire event."""


class PreparedEvaluation(BaseModel):
    """What an evaluation asks its SLI provider, or how it ends without asking."""

    finished_data: dict[str, Any] | None = None
    """``evaluation.finished`` data when the evaluation ends here (no window, no provider, a bad SLO)."""
    get_sli_data: dict[str, Any] | None = None
    """``get-sli.triggered`` data to send otherwise."""
    provider: str = ""
    """The project's SLI provider."""
    builtin: bool = False
    """Whether the control plane answers that provider itself."""
    slo_content: str | None = None
    """base64 of the raw ``slo.yaml``; None when the service has none."""
    time_start: str = ""
    time_end: str = ""


class ScoreEvaluationInput(BaseModel):
    """Input of ``score_evaluation``."""

    event: dict[str, Any]
    """The stored ``evaluation.triggered`` wire event."""
    get_sli: dict[str, Any]
    """The SLI provider's ``get-sli.finished`` wire event."""
    slo_content: str | None
    """base64 of the raw ``slo.yaml`` the evaluation started with; None when there was none."""
    time_start: str
    time_end: str


class EvaluationData(BaseModel):
    """``data`` of the ``evaluation.finished`` to emit."""

    data: dict[str, Any]


class LighthouseActivities:
    """The lighthouse's store reads and scoring.

    Args:
        pool: the event and resource store.
        default_provider: SLI provider of projects without ``monitoring.configure``.
        builtin_providers: the providers the control plane answers itself.
    """

    def __init__(
        self, pool: asyncpg.Pool, *, default_provider: str | None, builtin_providers: frozenset[str]
    ) -> None:
        self._pool = pool
        self._default_provider = default_provider
        self._builtin = builtin_providers

    @activity.defn(name=PREPARE_EVALUATION_ACTIVITY)
    async def prepare_evaluation(self, input: PrepareEvaluationInput) -> PreparedEvaluation:
        """Keptn's start-evaluation handler (§4.3 steps 3-6): window, SLO, provider, get-sli data."""
        event = input.event
        data: dict[str, Any] = event.get("data") or {}
        try:
            start, end = evaluation_window(data, now=datetime.now(UTC))
        except InvalidInputError as err:
            return PreparedEvaluation(
                finished_data=evaluation_finished_data(data, errored_outcome(err.message))
            )
        time_start, time_end = format_evaluation_time(start), format_evaluation_time(end)
        try:
            raw = await self._read_slo(data, event.get("gitcommitid"))
            slo = parse_slo(raw, **_scope(data)) if raw is not None else None
        except (InvalidInputError, NotFoundError) as err:
            outcome = errored_outcome(f"error retrieving SLO file: {err.message}")
            return PreparedEvaluation(
                finished_data=evaluation_finished_data(
                    data, outcome, time_start=time_start, time_end=time_end
                )
            )
        content = base64.b64encode(raw).decode() if raw is not None else None
        project = str(data.get("project", ""))
        provider = await monitoring.get_sli_provider(self._pool, project) or self._default_provider
        if not provider:
            return PreparedEvaluation(
                finished_data=evaluation_finished_data(
                    data,
                    no_provider_outcome(project),
                    time_start=time_start,
                    time_end=time_end,
                    slo_content=content or "",
                )
            )
        return PreparedEvaluation(
            get_sli_data=get_sli_triggered_data(
                data,
                provider=provider,
                start=time_start,
                end=time_end,
                indicators=[objective.sli for objective in slo.objectives] if slo else [],
                custom_filters=slo.filter if slo else {},
            ),
            provider=provider,
            builtin=provider in self._builtin,
            slo_content=content,
            time_start=time_start,
            time_end=time_end,
        )

    async def _read_slo(self, data: dict[str, Any], commit: str | None) -> bytes | None:
        """The raw ``slo.yaml`` of the event's service at its commit; None if the service has none.

        Raises:
            NotFoundError: the project, stage, service or commit does not exist.
        """
        scope = ResourceScope(
            project=str(data.get("project", "")),
            stage=str(data.get("stage", "")),
            service=str(data.get("service", "")),
        )
        try:
            return (await get_resource(self._pool, scope, SLO_FILE, commit_id=commit)).content
        except NotFoundError:
            # A missing file is an answer (the evaluation goes on without objectives); a missing
            # project, stage, service or commit is an error, as in Keptn.
            if not await project_store.service_exists(self._pool, scope.project, scope.service or ""):
                raise
            if commit and not await _commit_exists(self._pool, scope.project, commit):
                raise
            return None

    @activity.defn(name=SCORE_EVALUATION_ACTIVITY)
    async def score_evaluation(self, input: ScoreEvaluationInput) -> EvaluationData:
        """Keptn's evaluate-SLI handler (§4.3 step 8): compare, score, and build the payload."""
        data: dict[str, Any] = input.event.get("data") or {}
        sli: dict[str, Any] = input.get_sli.get("data") or {}
        details = {
            "time_start": input.time_start,
            "time_end": input.time_end,
            "slo_content": input.slo_content or "",
        }
        status = str(sli.get("status", "succeeded"))
        message = str(sli.get("message") or "")
        if status == "aborted":
            return EvaluationData(data=evaluation_finished_data(data, aborted_sli_outcome(), **details))
        if status == "errored":
            return EvaluationData(
                data=evaluation_finished_data(data, errored_sli_outcome(message), **details)
            )
        if input.slo_content is None:
            outcome = no_slo_outcome(str(data.get("project", "")))
            return EvaluationData(data=evaluation_finished_data(data, outcome, **details))
        try:
            slo = parse_slo(base64.b64decode(input.slo_content), **_scope(data))
        except InvalidInputError as err:  # it parsed when the evaluation started; be safe anyway
            outcome = errored_outcome(f"error retrieving SLO file: {err.message}")
            return EvaluationData(data=evaluation_finished_data(data, outcome, **details))
        outcome = evaluate(slo, _indicator_values(sli), await self._previous(slo, data))
        outcome = apply_sli_outcome(outcome, str(sli.get("result", "pass")), message)
        return EvaluationData(data=evaluation_finished_data(data, outcome, **details))

    async def _previous(self, slo: SLO, data: dict[str, Any]) -> list[dict[str, Any]]:
        rules = comparison_rules(slo)
        events = await previous_evaluations(
            self._pool,
            project=str(data.get("project", "")),
            stage=str(data.get("stage", "")),
            service=str(data.get("service", "")),
            results=rules.results,
            limit=rules.count,
        )
        candidates = [{**(event.get("data") or {}), "id": event.get("id")} for event in events]
        return apply_comparison_rules(rules, candidates)


def _scope(data: dict[str, Any]) -> dict[str, str]:
    return {key: str(data.get(key, "")) for key in ("project", "stage", "service")}


def _indicator_values(sli_data: dict[str, Any]) -> list[IndicatorValue]:
    """The ``indicatorValues`` of a ``get-sli.finished``; entries that are not objects are skipped."""
    get_sli = sli_data.get("get-sli")
    values = get_sli.get("indicatorValues") if isinstance(get_sli, dict) else None
    if not isinstance(values, list):
        return []
    parsed: list[IndicatorValue] = []
    for value in values:
        if isinstance(value, dict):
            try:
                parsed.append(IndicatorValue.model_validate(value))
            except ValueError:
                # A provider's malformed entry counts as a missing value (the objective fails with
                # "no value received"), not as a crash of the whole evaluation.
                continue
    return parsed


async def _commit_exists(pool: asyncpg.Pool, project: str, commit: str) -> bool:
    found: bool = await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM commits WHERE project = $1 AND id = $2)", project, commit
    )
    return found
