"""Keptn events → CDEvents v0.5.1 (pure): the mapping, and every result valid against its schema."""

from __future__ import annotations

from typing import Any

import pytest

from keptn.cdevents import QUALITY_GATE_SUITE, Related, image_to_purl, to_cdevents, to_cloudevent
from keptn.cdevents_inbound import purl_to_image
from tests.cdevents.schemas import assert_valid_cdevent

CONTEXT = "2b4b6a1e-6d0e-4c1b-9a8e-3d2f5c6b7a81"
DATA = {"project": "sockshop", "stage": "dev", "service": "carts"}
IMAGE = "docker.io/keptnexamples/carts:0.13.1"
PURL = "pkg:docker/keptnexamples/carts@0.13.1?repository_url=docker.io"


def keptn(event_type: str, *, triggeredid: str | None = "t-1", **data: Any) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": f"e-{event_type}",
        "source": "helm-service",
        "type": f"sh.keptn.event.{event_type}",
        "time": "2026-11-26T10:00:00.000Z",
        "shkeptncontext": CONTEXT,
        "datacontenttype": "application/json",
        "data": {**DATA, **data},
    }
    if triggeredid:
        event["triggeredid"] = triggeredid
    return event


def translate(event: dict[str, Any], related: Related | None = None) -> list[dict[str, Any]]:
    found = to_cdevents(event, related or Related(sequence="delivery", base_url="http://capstan:8080"))
    for cdevent in found:
        assert_valid_cdevent(cdevent)
    return found


def types(found: list[dict[str, Any]]) -> list[str]:
    return [c["context"]["type"].removeprefix("dev.cdevents.").removesuffix(".0.3.0") for c in found]


def test_a_sequence_is_a_pipeline_run() -> None:
    queued = translate(keptn("dev.delivery.triggered", triggeredid=None, configurationChange={}))
    finished = translate(keptn("dev.delivery.finished", result="pass", status="succeeded"))
    assert types(queued) == ["pipelinerun.queued"]
    assert types(finished) == ["pipelinerun.finished"]
    assert queued[0]["subject"]["id"] == finished[0]["subject"]["id"] == f"{CONTEXT}/dev/delivery"
    content = finished[0]["subject"]["content"]
    assert content["pipelineName"] == "sockshop/dev/delivery"
    assert content["uri"] == f"http://capstan:8080/project/sockshop/sequence/{CONTEXT}"
    assert content["outcome"] == "success"
    context = queued[0]["context"]
    # The first CDEvent keeps the Keptn id; shkeptncontext is the chain.
    assert context["id"] == "e-dev.delivery.triggered"
    assert context["chainId"] == CONTEXT
    assert context["source"] == "helm-service"
    assert context["timestamp"] == "2026-11-26T10:00:00.000Z"
    assert "links" not in context
    assert finished[0]["context"]["links"] == [
        {"linkType": "RELATION", "linkKind": "TRIGGER", "target": {"contextId": "t-1"}}
    ]
    assert types(translate(keptn("dev.delivery.started"))) == ["pipelinerun.started"]


@pytest.mark.parametrize(
    ("result", "status", "outcome"),
    [("pass", "succeeded", "success"), ("warning", "succeeded", "success"), ("fail", "succeeded", "failure"),
     ("fail", "errored", "error"), ("pass", "aborted", "cancel")],
)  # fmt: skip
def test_outcomes(result: str, status: str, outcome: str) -> None:
    finished = translate(keptn("dev.delivery.finished", result=result, status=status, message="it broke"))
    content = finished[0]["subject"]["content"]
    assert content["outcome"] == outcome
    assert content.get("errors") == (None if outcome == "success" else "it broke")


def test_a_first_deployment_is_deployed_then_upgraded() -> None:
    finished = keptn("deployment.finished", result="pass", status="succeeded")
    trigger = {"configurationChange": {"values": {"image": IMAGE}}}
    first = translate(finished, Related(sequence="delivery", trigger_data=trigger))
    assert types(first) == ["taskrun.finished", "service.deployed"]
    run, deployed = first
    assert run["subject"]["id"] == "t-1"
    assert run["subject"]["content"]["taskName"] == "deployment"
    assert run["subject"]["content"]["pipelineRun"] == {"id": f"{CONTEXT}/dev/delivery"}
    assert deployed["subject"]["id"] == "sockshop/dev/carts"
    assert deployed["subject"]["content"] == {"environment": {"id": "sockshop/dev"}, "artifactId": PURL}
    assert deployed["context"]["id"] != run["context"]["id"]
    assert deployed["context"]["id"] == translate(finished, Related(trigger_data=trigger))[1]["context"]["id"]
    again = translate(finished, Related(sequence="delivery", trigger_data=trigger, deployed_before=True))
    assert types(again) == ["taskrun.finished", "service.upgraded"]


def test_service_events_need_an_artifact_and_success() -> None:
    assert types(translate(keptn("deployment.finished", result="pass"))) == ["taskrun.finished"]
    failed = keptn("deployment.finished", result="fail", configurationChange={"values": {"image": IMAGE}})
    assert types(translate(failed)) == ["taskrun.finished"]
    rollback = keptn("rollback.finished", result="pass", configurationChange={"values": {"image": IMAGE}})
    assert types(translate(rollback)) == ["taskrun.finished", "service.rolledback"]
    assert types(translate(keptn("release.finished", result="pass"))) == [
        "taskrun.finished",
        "service.published",
    ]


def test_tests_and_evaluations_are_test_suite_runs() -> None:
    queued = translate(keptn("test.triggered", triggeredid=None, test={"teststrategy": "performance"}))
    assert types(queued) == ["testsuiterun.queued"]
    assert queued[0]["subject"]["id"] == "e-test.triggered"
    assert queued[0]["subject"]["content"]["testSuite"] == {"id": "performance"}
    assert types(translate(keptn("test.started"))) == ["taskrun.started", "testsuiterun.started"]
    evaluation = {"result": "warning", "score": 80, "indicatorResults": None, "sloFileContent": "..."}
    found = translate(keptn("evaluation.finished", result="warning", evaluation=evaluation))
    assert types(found) == ["taskrun.finished", "testsuiterun.finished"]
    suite = found[1]
    assert suite["subject"]["content"]["testSuite"]["id"] == QUALITY_GATE_SUITE
    assert suite["subject"]["content"]["outcome"] == "success"
    assert suite["customData"] == {"keptn": {"result": "warning", "score": 80, "indicatorResults": None}}


def test_remediation_and_problems_are_incidents() -> None:
    problem = {"problemTitle": "Response time degradation"}
    detected = translate(keptn("production.remediation.triggered", triggeredid=None, problem=problem))
    assert types(detected) == ["pipelinerun.queued", "incident.detected"]
    incident = detected[1]["subject"]
    assert incident["id"] == f"{CONTEXT}/incident"
    assert incident["content"]["description"] == "Response time degradation"
    assert incident["content"]["service"] == {"id": "sockshop/dev/carts"}
    resolved = translate(keptn("production.remediation.finished", result="pass", status="succeeded"))
    assert types(resolved) == ["pipelinerun.finished", "incident.resolved"]
    assert resolved[1]["subject"]["id"] == incident["id"]
    failed = translate(keptn("production.remediation.finished", result="fail", status="succeeded"))
    assert types(failed) == ["pipelinerun.finished"]
    legacy = keptn("x.y.z", triggeredid=None, State="OPEN", ProblemTitle="cpu")
    legacy["type"] = "sh.keptn.events.problem"
    assert types(translate(legacy)) == ["incident.detected"]
    legacy["data"]["State"] = "RESOLVED"
    assert types(translate(legacy)) == ["incident.resolved"]


def test_internal_and_intermediate_events_are_not_emitted() -> None:
    assert translate(keptn("get-sli.finished", result="pass")) == []
    assert translate(keptn("deployment.triggered", triggeredid=None)) == []
    assert translate(keptn("deployment.status.changed")) == []
    assert translate({**keptn("deployment.finished"), "type": "sh.keptn.log.error"}) == []


def test_a_task_without_a_known_sequence_names_the_stage_run() -> None:
    found = translate(keptn("deployment.started"), Related())
    assert found[0]["subject"]["content"]["pipelineRun"] == {"id": f"{CONTEXT}/dev"}


def test_the_cloudevents_binding() -> None:
    cdevent = translate(keptn("dev.delivery.finished", result="pass"))[0]
    envelope = to_cloudevent(cdevent, shkeptncontext=CONTEXT)
    assert envelope["specversion"] == "1.0"
    assert envelope["id"] == cdevent["context"]["id"]
    assert envelope["source"] == cdevent["context"]["source"]
    assert envelope["type"] == cdevent["context"]["type"]
    assert envelope["subject"] == cdevent["subject"]["id"]
    assert envelope["time"] == cdevent["context"]["timestamp"]
    assert envelope["data"] == cdevent
    assert envelope["shkeptncontext"] == CONTEXT


@pytest.mark.parametrize(
    ("image", "purl"),
    [
        (IMAGE, PURL),
        ("nginx", "pkg:docker/nginx@latest"),
        ("ghcr.io/org/app@sha256:ab12", "pkg:docker/org/app@sha256%3Aab12?repository_url=ghcr.io"),
        ("localhost:5000/app:1.0", "pkg:docker/app@1.0?repository_url=localhost%3A5000"),
    ],
)
def test_images_and_package_urls(image: str, purl: str) -> None:
    assert image_to_purl(image) == purl
    expected = image if ":" in image.rsplit("/", 1)[-1] or "@" in image else f"{image}:latest"
    assert purl_to_image(purl) == expected


def test_package_urls_that_are_not_images() -> None:
    assert purl_to_image("pkg:golang/mygit.com/myorg/myapp@234fd47e07d1004f0aed9c") is None
    assert purl_to_image("not a purl") is None
    oci = "pkg:oci/myapp@sha256%3A0b31?repository_url=ghcr.io/org/myapp"
    assert purl_to_image(oci) == "ghcr.io/org/myapp@sha256:0b31"


def test_a_source_that_is_not_a_uri_reference_is_escaped() -> None:
    event = {**keptn("dev.delivery.started"), "source": "my service"}
    assert translate(event)[0]["context"]["source"] == "my%20service"
