"""The pure parts of ``capstan trigger --watch``: events → model, follow-ups, rendering, flags."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from rich.console import Console

from capstan.commands.trigger import image_reference, parse_labels
from capstan.commands.watch import build_model, failing_slis, parse_time, worse
from capstan.commands.watch_view import format_duration, progress_lines, render_tree, summary_lines
from keptn.shipyard import parse_shipyard

SHIPYARD = parse_shipyard("""apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: two-stages}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: evaluation}]
    - name: staging
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
        - name: rollback
          triggeredOn: [{event: staging.delivery.finished, selector: {match: {result: fail}}}]
          tasks: [{name: rollback}]
""")

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
CTX = "ctx-1"


class Events:
    """Builds a context's event log, one second apart, oldest first."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def add(
        self,
        kind: str,
        stage: str,
        *,
        source: str = "shipyard-controller",
        answers: str | None = None,
        **data: Any,
    ) -> str:
        event_id = f"e{next(self._ids)}"
        moment = T0 + timedelta(seconds=len(self.events))
        event: dict[str, Any] = {
            "id": event_id,
            "type": f"sh.keptn.event.{kind}",
            "source": source,
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "shkeptncontext": CTX,
            "data": {"project": "shop", "stage": stage, "service": "carts", **data},
        }
        if answers:
            event["triggeredid"] = answers
        self.events.append(event)
        return event_id

    def task(self, name: str, stage: str, result: str = "pass", source: str = "helm", **data: Any) -> str:
        triggered = self.add(f"{name}.triggered", stage)
        self.add(f"{name}.started", stage, source=source, answers=triggered)
        self.add(
            f"{name}.finished",
            stage,
            source=source,
            answers=triggered,
            result=result,
            status="succeeded",
            **data,
        )
        return triggered


EVALUATION = {
    "score": 50,
    "result": "fail",
    "indicatorResults": [
        {
            "score": 0,
            "status": "fail",
            "value": {"metric": "error_rate", "value": 9.5, "success": True},
            "passTargets": [{"criteria": "<5", "targetValue": 5, "violated": True}],
            "warningTargets": None,
            "keySli": True,
        },
        {
            "score": 0.5,
            "status": "warning",
            "value": {"metric": "response_time_p95", "value": 700, "success": True},
            "passTargets": [
                {"criteria": "<=+10%", "targetValue": 440, "violated": True},
                {"criteria": "<600", "targetValue": 600, "violated": True},
            ],
            "warningTargets": [{"criteria": "<=800", "targetValue": 800, "violated": False}],
        },
        {"score": 1, "status": "pass", "value": {"metric": "throughput", "value": 50}},
    ],
}


def dev_delivery(log: Events, evaluation: dict[str, Any], result: str) -> None:
    trigger = log.add("dev.delivery.triggered", "dev", source="capstan-cli")
    log.task("deployment", "dev")
    evaluating = log.add("evaluation.triggered", "dev")
    log.add("evaluation.started", "dev", source="lighthouse-service", answers=evaluating)
    get_sli = log.add("get-sli.triggered", "dev", source="lighthouse-service")
    log.add("get-sli.finished", "dev", source="my-sli", answers=get_sli, result="pass")
    log.add(
        "evaluation.finished",
        "dev",
        source="lighthouse-service",
        answers=evaluating,
        result=result,
        status="succeeded",
        evaluation=evaluation,
    )
    log.add("dev.delivery.finished", "dev", answers=trigger, result=result, status="succeeded")


def test_a_passing_stage_waits_for_its_follow_up_and_ends_with_it():
    log = Events()
    dev_delivery(log, {"score": 100, "result": "pass", "indicatorResults": None}, "pass")
    model = build_model(CTX, "shop", log.events, {"state": "finished", "name": "delivery"}, SHIPYARD)

    (dev,) = model.stages
    assert (dev.stage, dev.sequence, dev.state, dev.result) == ("dev", "delivery", "finished", "pass")
    assert [(t.name, t.state, t.result, t.nested) for t in dev.tasks] == [
        ("deployment", "finished", "pass", False),
        ("evaluation", "finished", "pass", False),
        ("get-sli", "finished", "pass", True),
    ]
    assert dev.last_task() == "evaluation"
    assert model.pending == ["staging.delivery"]  # the view says finished, staging has not begun
    assert not model.ended and model.result == "pass"

    trigger = log.add("staging.delivery.triggered", "staging")
    running = build_model(CTX, "shop", log.events, {"state": "started"}, SHIPYARD)
    assert running.pending == [] and not running.ended
    assert running.stages[1].state == "triggered"
    log.task("deployment", "staging", result="warning")
    log.add("staging.delivery.finished", "staging", answers=trigger, result="warning", status="succeeded")
    done = build_model(CTX, "shop", log.events, {"state": "finished"}, SHIPYARD)
    assert done.ended and done.succeeded and done.result == "warning"
    assert done.stages[1].tasks[0].state == "finished"


def test_a_failing_evaluation_names_its_slis_and_fails_the_context():
    log = Events()
    dev_delivery(log, EVALUATION, "fail")
    model = build_model(CTX, "shop", log.events, {"state": "finished"}, SHIPYARD)
    assert model.pending == []  # triggeredOn without a selector wants pass or warning
    assert model.ended and not model.succeeded and model.result == "fail"
    (evaluation,) = model.evaluations
    assert (evaluation.stage, evaluation.score, evaluation.result) == ("dev", 50, "fail")
    assert [(s.name, s.value, s.status, s.violated) for s in evaluation.slis] == [
        ("error_rate", 9.5, "fail", ["<5"]),
        ("response_time_p95", 700, "warning", ["<=+10%", "<600"]),
    ]
    summary = summary_lines(model)
    assert summary[0] == "evaluation in dev: score 50, result fail"
    assert summary[1] == "    fail: error_rate = 9.5 (violated: <5)"
    assert summary[-1] == f"sequence delivery finished: result fail (keptnContext {CTX})"
    document = model.to_json(T0)
    assert document["result"] == "fail" and document["state"] == "finished"
    assert document["evaluations"][0]["failingSLIs"][0] == {
        "name": "error_rate",
        "value": 9.5,
        "status": "fail",
        "violatedTargets": ["<5"],
    }
    assert document["stages"][0]["tasks"][0] == {
        "name": "deployment",
        "state": "finished",
        "result": "pass",
        "status": "succeeded",
        "source": "shipyard-controller",
        "durationSeconds": 2.0,
    }


def test_a_selector_on_fail_expects_the_rollback_and_an_abort_expects_nothing():
    log = Events()
    trigger = log.add("staging.delivery.triggered", "staging")
    log.task("deployment", "staging", result="fail")
    log.add("staging.delivery.finished", "staging", answers=trigger, result="fail", status="succeeded")
    assert build_model(CTX, "shop", log.events, {"state": "finished"}, SHIPYARD).pending == [
        "staging.rollback"
    ]
    aborted = build_model(CTX, "shop", log.events, {"state": "aborted"}, SHIPYARD)
    assert aborted.pending == [] and aborted.ended and not aborted.succeeded
    assert build_model(CTX, "shop", log.events, {"state": "finished"}, None).pending == []


def test_running_tasks_and_view_hints():
    log = Events()
    log.add("dev.delivery.triggered", "dev")
    deployment = log.add("deployment.triggered", "dev")
    log.add("deployment.started", "dev", source="helm", answers=deployment)
    log.add("deployment.started", "dev", source="argo", answers=deployment)
    log.add(
        "deployment.finished", "dev", source="helm", answers=deployment, result="pass", status="succeeded"
    )
    view = {"state": "started", "stages": [{"name": "dev", "state": "triggered", "blockedBy": "other-ctx"}]}
    model = build_model(CTX, "shop", log.events, view, SHIPYARD)
    (dev,) = model.stages
    assert dev.tasks[0].state == "started"  # one of two integrations still works on it
    assert dev.state == "waiting for other-ctx"
    assert not model.ended and model.result is None
    assert build_model(CTX, "shop", [], None, SHIPYARD).state == "triggered"

    now = T0 + timedelta(seconds=90)
    console = Console(width=120, record=True)
    console.print(render_tree(model, now))
    drawn = console.export_text()
    assert CTX in drawn and "dev delivery  waiting for other-ctx  1m30s" in drawn
    assert "deployment  started pass  1m29s" in drawn
    keys = [key for key, _, _ in progress_lines(model, now)]
    assert keys == ["s0", deployment, "context"]
    assert progress_lines(model, now)[1][2] == "dev delivery / deployment: started pass"
    assert progress_lines(model, now)[2][2] == f"keptnContext {CTX}: started"
    log.add(
        "deployment.finished", "dev", source="argo", answers=deployment, result="pass", status="succeeded"
    )
    log.add("dev.delivery.finished", "dev", answers="e1", result="pass", status="succeeded")
    finished = build_model(CTX, "shop", log.events, {"state": "finished"}, None)
    assert [line for _, _, line in progress_lines(finished, now)] == [
        "dev delivery / deployment: finished pass 4.0s",
        "dev delivery: finished pass 6.0s",
        f"keptnContext {CTX}: finished",
    ]


def test_helpers():
    assert parse_time("2024-05-01T10:00:00.123456789Z") == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert parse_time("2024-05-01T10:00:00") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_time("yesterday") is None and parse_time(None) is None
    assert worse("pass", "warning") == "warning" and worse("fail", "warning") == "fail"
    assert worse(None, "pass") == "pass" and worse("odd", "pass") == "fail"
    assert failing_slis({"indicatorResults": None}) == []
    assert [format_duration(s) for s in (None, 0.42, 75, 3723)] == ["", "0.4s", "1m15s", "1h02m"]


@pytest.mark.parametrize(
    ("image", "tag", "expected"),
    [
        ("docker.io/keptnexamples/carts", "0.13.1", "docker.io/keptnexamples/carts:0.13.1"),
        ("docker.io/keptnexamples/carts:0.13.1", None, "docker.io/keptnexamples/carts:0.13.1"),
        ("docker.io/keptnexamples/carts:0.13.1", "0.13.2", "docker.io/keptnexamples/carts:0.13.2"),
        ("carts", None, "carts:latest"),
        ("localhost:5000/carts/", None, "localhost:5000/carts:latest"),
        ("localhost:5000/carts", "1", "localhost:5000/carts:1"),
        ("carts@sha256:abc", None, "carts@sha256:abc"),
    ],
)
def test_image_reference(image: str, tag: str | None, expected: str):
    assert image_reference(image, tag) == expected


def test_labels_as_keptn_parses_them():
    assert parse_labels(["a=1,b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    assert parse_labels(None) is None and parse_labels([""]) is None
    with pytest.raises(typer.BadParameter):
        parse_labels(["novalue"])
