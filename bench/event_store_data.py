"""Realistic Keptn events for the event-store benchmark: whole contexts, as Keptn's datastore held them.

Two kinds of Keptn context, in the proportion ``DELIVERY_SHARE``:

* a **delivery** through the stages ``dev``, ``staging``, ``prod`` (one context for all three, as
  Keptn links them): per stage the sequence trigger, ``deployment``/``test``/``evaluation``/
  ``release`` task events (triggered, started, finished) with the lighthouse's ``get-sli``
  round trip, and the sequence end: 17 events a stage, 51 a context;
* an **evaluation** (``keptn trigger evaluation``) in one stage: 8 events.

Every evaluation ends in an ``evaluation.finished`` of the lighthouse with K indicator results and
the ``slo.yaml`` (base64), results mostly ``pass``; one in ``INVALIDATED_EVERY`` is invalidated by an
``evaluation.invalidated``. Times run over ``SPAN_DAYS`` and are strictly increasing inside a
context. Everything derives from one seed, so a run can be repeated.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from keptn._keptntime import format_keptn_time

STAGES = ("dev", "staging", "prod")
DELIVERY_SHARE = 1 / 3
"""Share of delivery contexts; the rest are evaluations of one stage."""
INVALIDATED_EVERY = 50
SPAN_DAYS = 90
EPOCH = datetime(2026, 8, 1, tzinfo=UTC)
EVALUATION_FINISHED = "sh.keptn.event.evaluation.finished"
SLO_YAML = base64.b64encode(
    b"spec_version: '1.0'\ncomparison:\n  compare_with: several_results\n  number_of_comparison_results: 3\n"
    b"  include_result_with_score: pass_or_warn\n  aggregate_function: avg\nobjectives:\n"
    + b"".join(
        f"  - sli: sli_{i}\n    pass:\n      - criteria: ['<=+10%', '<600']\n    warning:\n"
        f"      - criteria: ['<=800']\n    weight: 1\n".encode()
        for i in range(8)
    )
    + b"total_score:\n  pass: '90%'\n  warning: '75%'\n"
).decode()


@dataclass
class Scope:
    """Where the generated events live: ``projects`` × ``STAGES`` × ``services``."""

    projects: int = 20
    services: int = 10
    indicators: int = 8
    """Indicator results per evaluation."""

    def project(self, index: int) -> str:
        """The name of project ``index``."""
        return f"bench-project-{index:03d}"

    def service(self, index: int) -> str:
        """The name of service ``index`` (the same names in every project)."""
        return f"svc-{index:02d}"


@dataclass
class Generated:
    """What the generator produced besides the events: the keys the queries pick from."""

    contexts: dict[str, int] = field(default_factory=dict)
    """Keptn context → how many events it holds."""
    evaluations: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(project, stage, service) → how many ``evaluation.finished`` events it holds."""
    events: int = 0
    evaluation_events: int = 0
    invalidated: int = 0


class EventFactory:
    """Builds the wire events of whole contexts, deterministically from ``seed``.

    Args:
        scope: projects, services and indicators.
        seed: the random seed.
    """

    def __init__(self, scope: Scope, seed: int) -> None:
        self.scope = scope
        self.rng = random.Random(seed)
        self.generated = Generated()

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def contexts(self, events: int) -> Iterator[list[dict[str, Any]]]:
        """Whole contexts, until at least ``events`` events were produced (the last is cut there)."""
        while self.generated.events < events:
            built = self._context()
            built = built[: events - self.generated.events]
            self.generated.events += len(built)
            context = str(built[0]["shkeptncontext"])
            self.generated.contexts[context] = len(built)
            for event in built:
                if event["type"] == EVALUATION_FINISHED:
                    data = event["data"]
                    key = (data["project"], data["stage"], data["service"])
                    self.generated.evaluations[key] = self.generated.evaluations.get(key, 0) + 1
                    self.generated.evaluation_events += 1
                elif event["type"].endswith(".invalidated"):
                    self.generated.invalidated += 1
            yield built

    def _context(self) -> list[dict[str, Any]]:
        rng = self.rng
        project = self.scope.project(rng.randrange(self.scope.projects))
        service = self.scope.service(rng.randrange(self.scope.services))
        clock = _Clock(EPOCH + timedelta(seconds=rng.uniform(0, SPAN_DAYS * 86400)), rng)
        context = self._id()
        built: list[dict[str, Any]] = []
        if rng.random() < DELIVERY_SHARE:
            image = f"ghcr.io/bench/{service}:1.{rng.randrange(100)}.{rng.randrange(10)}"
            for stage in STAGES:
                built += self._delivery(clock, context, project, stage, service, image)
        else:
            built += self._evaluation_sequence(clock, context, project, rng.choice(STAGES), service)
        return built

    def _event(
        self,
        clock: _Clock,
        context: str,
        kind: str,
        source: str,
        data: dict[str, Any],
        triggeredid: str | None = None,
    ) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "specversion": "1.0",
            "id": self._id(),
            "source": source,
            "type": f"sh.keptn.event.{kind}",
            "time": format_keptn_time(clock.tick()),
            "datacontenttype": "application/json",
            "shkeptncontext": context,
        }
        if triggeredid is not None:
            wire["triggeredid"] = triggeredid
        wire["shkeptnspecversion"] = "0.2.4"
        wire["data"] = data
        return wire

    def _task(
        self,
        clock: _Clock,
        context: str,
        scope: dict[str, str],
        task: str,
        source: str,
        triggered_data: dict[str, Any],
        finished_data: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """``<task>.triggered`` by the shipyard controller, ``.started`` and ``.finished`` by ``source``."""
        triggered = self._event(
            clock, context, f"{task}.triggered", "shipyard-controller", scope | triggered_data
        )
        tid = triggered["id"]
        started = self._event(clock, context, f"{task}.started", source, scope | {"status": "succeeded"}, tid)
        result = {"status": "succeeded", "result": "pass"}
        finished = self._event(
            clock, context, f"{task}.finished", source, scope | result | finished_data, tid
        )
        return [triggered, started, finished]

    def _delivery(
        self, clock: _Clock, context: str, project: str, stage: str, service: str, image: str
    ) -> list[dict[str, Any]]:
        scope = {"project": project, "stage": stage, "service": service}
        change = {"configurationChange": {"values": {"image": image}}, "labels": {"buildId": image[-5:]}}
        built = [
            self._event(
                clock,
                context,
                f"{stage}.delivery.triggered",
                "https://github.com/keptn/keptn/cli",
                scope | change,
            )
        ]
        deployment = {"deployment": {"deploymentstrategy": "direct"}} | change
        deployed = {
            "deployment": {
                "deploymentURIsLocal": [f"http://{service}.{project}-{stage}:80"],
                "deploymentNames": ["direct"],
                "gitCommit": self._id().replace("-", "")[:40],
            }
        }
        built += self._task(clock, context, scope, "deployment", "helm-service", deployment, deployed)
        test = {"test": {"teststrategy": "performance"}, "deployment": deployed["deployment"]}
        built += self._task(
            clock, context, scope, "test", "jmeter-service", test, {"test": {"start": "", "end": ""}}
        )
        built += self._evaluation(clock, context, scope)
        built += self._task(clock, context, scope, "release", "helm-service", {}, {})
        built.append(
            self._event(
                clock,
                context,
                f"{stage}.delivery.finished",
                "shipyard-controller",
                scope | {"status": "succeeded", "result": "pass"},
            )
        )
        return built

    def _evaluation_sequence(
        self, clock: _Clock, context: str, project: str, stage: str, service: str
    ) -> list[dict[str, Any]]:
        scope = {"project": project, "stage": stage, "service": service}
        window = {"evaluation": {"timeframe": "5m"}}
        built = [
            self._event(
                clock,
                context,
                f"{stage}.evaluation.triggered",
                "https://github.com/keptn/keptn/cli",
                scope | window,
            )
        ]
        built += self._evaluation(clock, context, scope)
        built.append(
            self._event(
                clock,
                context,
                f"{stage}.evaluation.finished",
                "shipyard-controller",
                scope | {"status": "succeeded", "result": "pass"},
            )
        )
        return built

    def _evaluation(self, clock: _Clock, context: str, scope: dict[str, str]) -> list[dict[str, Any]]:
        """``evaluation.triggered``/``.started``, the ``get-sli`` round trip, ``evaluation.finished``."""
        rng = self.rng
        end = clock.now
        window = {"start": format_keptn_time(end - timedelta(minutes=5)), "end": format_keptn_time(end)}
        triggered = self._event(
            clock,
            context,
            "evaluation.triggered",
            "shipyard-controller",
            scope | {"evaluation": window | {"timeframe": "5m"}},
        )
        tid = triggered["id"]
        started = self._event(
            clock, context, "evaluation.started", "lighthouse-service", scope | {"status": "succeeded"}, tid
        )
        names = [f"sli_{i}" for i in range(self.scope.indicators)]
        sli_triggered = self._event(
            clock,
            context,
            "get-sli.triggered",
            "lighthouse-service",
            scope | {"get-sli": window | {"sliProvider": "prometheus", "indicators": names}},
        )
        sid = sli_triggered["id"]
        sli_started = self._event(
            clock, context, "get-sli.started", "prometheus-service", scope | {"status": "succeeded"}, sid
        )
        measured = [round(rng.uniform(100, 700), 3) for _ in names]
        values = [{"metric": n, "value": v, "success": True} for n, v in zip(names, measured, strict=True)]
        sli_finished = self._event(
            clock,
            context,
            "get-sli.finished",
            "prometheus-service",
            scope
            | {"status": "succeeded", "result": "pass", "get-sli": window | {"indicatorValues": values}},
            sid,
        )
        roll = rng.random()
        result = "pass" if roll < 0.8 else "warning" if roll < 0.9 else "fail"
        indicators = [
            {
                "score": 1 if v < 600 else 0.5,
                "status": "pass" if v < 600 else "warning",
                "value": value,
                "keySli": False,
                "passTargets": [{"criteria": "<600", "targetValue": 600, "violated": v >= 600}],
                "warningTargets": [{"criteria": "<=800", "targetValue": 800, "violated": False}],
            }
            for value, v in zip(values, measured, strict=True)
        ]
        evaluation = window | {
            "result": result,
            "score": round(rng.uniform(75, 100), 2),
            "sloFileContent": SLO_YAML,
            "indicatorResults": indicators,
            "comparedEvents": [self._id() for _ in range(3)],
            "timeStart": window["start"],
            "timeEnd": window["end"],
        }
        finished = self._event(
            clock,
            context,
            "evaluation.finished",
            "lighthouse-service",
            scope | {"status": "succeeded", "result": result, "evaluation": evaluation},
            tid,
        )
        built = [triggered, started, sli_triggered, sli_started, sli_finished, finished]
        if rng.randrange(INVALIDATED_EVERY) == 0:
            built.append(
                self._event(
                    clock,
                    context,
                    "evaluation.invalidated",
                    "https://github.com/keptn/keptn/bridge",
                    scope,
                    tid,
                )
            )
        return built


class _Clock:
    """Event times of one context: a few seconds (up to minutes for tests) between events."""

    def __init__(self, start: datetime, rng: random.Random) -> None:
        self.now = start
        self._rng = rng

    def tick(self) -> datetime:
        # whole milliseconds, as Keptn's wire format keeps them, so the stored time equals the text
        self.now += timedelta(milliseconds=self._rng.randrange(50, 90_000))
        return self.now
