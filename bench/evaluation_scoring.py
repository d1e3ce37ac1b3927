"""The ``scoring`` phase of :mod:`bench.evaluations`: quality-gate scoring in this process, no I/O.

Four operations run interleaved, in a rotating order, so that they share the machine's noise:

* ``evaluate``: :func:`keptn.lighthouse.evaluate` on parsed inputs (an SLO with ``objectives``
  objectives, as many SLI values, ``previous`` earlier evaluations, ``aggregate_function: avg``);
* ``evaluate_p95``: the same with ``aggregate_function: p95``;
* ``activity``: the in-process work of the ``score_evaluation`` activity, end to end: decode its
  input with the worker's data converter, decode the previous events as the store's JSON codec
  does, run the activity (``parse_slo``, SLI validation, comparison rules, ``evaluate``, the
  ``evaluation.finished`` payload) and encode its result. Only the database round trip is left out
  (the store is a stub that returns the decoded rows);
* ``baseline``: the unavoidable I/O floor of one evaluation, ``json.loads`` of the
  ``get-sli.finished`` payload and of the previous ``evaluation.finished`` payloads plus
  ``json.dumps`` of the resulting ``evaluation.finished`` data.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from temporalio.contrib.pydantic import pydantic_data_converter

from activities.lighthouse import EvaluationData, LighthouseActivities, ScoreEvaluationInput
from bench.evaluation_data import previous_evaluation_data, sli_values, slo_yaml
from bench.stats import percentile, ratio
from keptn.lighthouse import IndicatorValue, apply_comparison_rules, comparison_rules, evaluate
from keptn.slo import parse_slo

log = logging.getLogger("bench.scoring")

OPERATIONS = ("baseline", "evaluate", "evaluate_p95", "activity")
SCOPE = {"project": "bench", "stage": "dev", "service": "svc"}
WARMUP = 5


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """``n``, ``p50``, ``p90``, ``p99``, ``mean``, ``min``, ``max`` in ms with 3 decimals (µs resolution)."""
    values = [s * 1000 for s in seconds]
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "mean": None, "min": None, "max": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "mean": round(sum(values) / len(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def _wire(event_type: str, data: dict[str, Any], *, source: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "time": "2026-01-01T00:05:00.000Z",
        "shkeptncontext": str(uuid.uuid4()),
        "triggeredid": str(uuid.uuid4()),
        "shkeptnspecversion": "0.2.4",
        "data": data,
    }


class _Store:
    """Stands in for the asyncpg pool: ``fetch`` decodes the stored rows as the JSON codec would."""

    def __init__(self, rows: list[str]) -> None:
        self._rows = rows

    async def fetch(self, query: str, *args: object) -> list[dict[str, Any]]:
        limit = cast(int, args[-1])
        return [{"event": json.loads(text)} for text in self._rows[:limit]]


class _Gate:
    """The inputs of one evaluation, as objects and as the JSON text that carries them."""

    def __init__(self, objectives: int, previous: int) -> None:
        slo_text = slo_yaml(objectives, previous)
        self.slo = parse_slo(slo_text)
        self.slo_p95 = parse_slo(slo_yaml(objectives, previous, "p95"))
        values = sli_values(objectives, seed=1)
        self.values = [IndicatorValue.model_validate(value) for value in values]
        sli_data: dict[str, Any] = {**SCOPE, "result": "pass", "status": "succeeded", "message": ""}
        sli_data["get-sli"] = {"start": "", "end": "", "indicatorValues": values}
        get_sli = _wire("sh.keptn.event.get-sli.finished", sli_data, source="bench-sli")
        self.get_sli_text = json.dumps(get_sli)
        events = [
            _wire(
                "sh.keptn.event.evaluation.finished",
                previous_evaluation_data(SCOPE, objectives, seed=100 + k),
                source="lighthouse-service",
            )
            for k in range(previous)
        ]
        self.previous_texts = [json.dumps(event) for event in events]
        candidates = [{**event["data"], "id": event["id"]} for event in events]
        self.previous = apply_comparison_rules(comparison_rules(self.slo), candidates)
        triggered = _wire("sh.keptn.event.dev.evaluation.triggered", dict(SCOPE), source="bench")
        score_input = ScoreEvaluationInput(
            event=triggered,
            get_sli=get_sli,
            slo_content=base64.b64encode(slo_text.encode()).decode(),
            time_start="2026-01-01T00:05:00.000Z",
            time_end="2026-01-01T00:10:00.000Z",
        )
        self.input_payloads = pydantic_data_converter.payload_converter.to_payloads([score_input])
        self.activities = LighthouseActivities(
            cast(Any, _Store(self.previous_texts)), default_provider=None, builtin_providers=frozenset()
        )
        self.finished_data: dict[str, Any] = {}

    def baseline(self) -> None:
        """The I/O floor: decode the inputs, encode the output."""
        json.loads(self.get_sli_text)
        for text in self.previous_texts:
            json.loads(text)
        json.dumps(self.finished_data)

    async def activity(self) -> EvaluationData:
        """The ``score_evaluation`` activity with its payload conversions, minus the database."""
        converter = pydantic_data_converter.payload_converter
        (score_input,) = converter.from_payloads(self.input_payloads, [ScoreEvaluationInput])
        result = await self.activities.score_evaluation(score_input)
        converter.to_payloads([result])
        return result


async def run_scoring(*, iterations: int, objectives: int, previous: int) -> dict[str, Any]:
    """Run the scoring phase and return its report section.

    Args:
        iterations: measured evaluations per operation.
        objectives: SLO objectives (and SLI values).
        previous: previous evaluations compared with.
    """
    gate = _Gate(objectives, previous)
    first = await gate.activity()
    gate.finished_data = first.data
    checked = evaluate(gate.slo, gate.values, gate.previous)
    evaluation = checked["evaluation"]
    statuses: dict[str, int] = {}
    for result in evaluation["indicatorResults"] or []:
        statuses[result["status"]] = statuses.get(result["status"], 0) + 1

    async def plain(call: Callable[[], object]) -> None:
        call()

    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "baseline": lambda: plain(gate.baseline),
        "evaluate": lambda: plain(lambda: evaluate(gate.slo, gate.values, gate.previous)),
        "evaluate_p95": lambda: plain(lambda: evaluate(gate.slo_p95, gate.values, gate.previous)),
        "activity": gate.activity,
    }
    times: dict[str, list[float]] = {name: [] for name in OPERATIONS}
    log.info("scoring: %d iterations of %s", iterations, ", ".join(OPERATIONS))
    for index in range(WARMUP + iterations):
        shift = index % len(OPERATIONS)
        for name in OPERATIONS[shift:] + OPERATIONS[:shift]:
            began = time.perf_counter()
            await calls[name]()
            took = time.perf_counter() - began
            if index >= WARMUP:
                times[name].append(took)
    section: dict[str, Any] = {
        "result": checked["result"],
        "score": round(float(evaluation["score"]), 3),
        "indicator_statuses": dict(sorted(statuses.items())),
        "compared_events": len(evaluation["comparedEvents"] or []),
        "finished_data_bytes": len(json.dumps(gate.finished_data)),
    }
    for name in OPERATIONS:
        total = sum(times[name])
        section[name] = {
            "evaluations_per_s": round(len(times[name]) / total, 1) if total > 0 else None,
            "per_evaluation_ms": summary_ms(times[name]),
        }
    section["ratios"] = _ratios(section)
    return section


def _ratios(section: dict[str, Any]) -> dict[str, float | None]:
    """Each Capstan operation / the baseline: throughput (< 1 = slower) and p50/p99 time (> 1 = slower)."""
    base = section["baseline"]
    found: dict[str, float | None] = {}
    for name in OPERATIONS[1:]:
        ours = section[name]
        found[f"{name}_per_s"] = ratio(ours["evaluations_per_s"], base["evaluations_per_s"])
        for q in ("p50", "p99"):
            found[f"{name}_{q}"] = ratio(ours["per_evaluation_ms"][q], base["per_evaluation_ms"][q])
    return found
