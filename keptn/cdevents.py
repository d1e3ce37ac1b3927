"""Keptn events as CDEvents v0.5.1: the translation Keptn planned and never shipped (pure, no I/O).

:func:`to_cdevents` turns one stored Keptn event into zero or more CDEvents (``docs/cdevents.md``
has the whole table):

* a sequence (``<stage>.<sequence>.triggered/started/finished``) is a ``pipelinerun``
  (``queued``/``started``/``finished``), subject id ``<shkeptncontext>/<stage>/<sequence>``;
* a task's ``.started``/``.finished`` is a ``taskrun``, subject id the task's ``triggeredid``;
* ``test.*`` and ``evaluation.*`` are also ``testsuiterun`` events (the evaluation as test suite
  ``keptn-quality-gate``, its score and objectives in ``customData``);
* a passed ``deployment.finished`` is ``service.deployed`` (first time in the stage) or
  ``service.upgraded``; ``rollback.finished`` is ``service.rolledback``, ``release.finished``
  ``service.published``;
* a ``remediation`` sequence and the legacy ``sh.keptn.events.problem`` are ``incident.detected``
  and, once resolved, ``incident.resolved``.

Context: ``id`` is the Keptn event id for the first CDEvent of an event and a UUIDv5 of it for the
others (stable across retries, so receivers can deduplicate), ``source`` and ``timestamp`` are
the Keptn event's, ``chainId`` is ``shkeptncontext``, and ``triggeredid`` becomes a ``RELATION``
link of kind ``TRIGGER``. :func:`to_cloudevent` wraps a CDEvent as the binding says and keeps
``shkeptncontext`` as a CloudEvents extension.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from keptn.cdevents_schema import CDEVENTS_SPEC_VERSION
from keptn.event_types import (
    PROBLEM_EVENT_TYPE,
    EventKind,
    SequenceEventType,
    TaskEventType,
    maybe_parse_event_type,
)

__all__ = [
    "CDEVENT_ID_NAMESPACE",
    "INTERNAL_TASKS",
    "QUALITY_GATE_SUITE",
    "Related",
    "cdevent_type",
    "image_to_purl",
    "to_cdevents",
    "to_cloudevent",
]

CDEVENT_ID_NAMESPACE = uuid.UUID("5f0c2a4e-8f0b-4c55-9d0e-6b1f3c3f2a11")
"""Namespace of the UUIDv5 ids of a Keptn event's second and later CDEvents."""

INTERNAL_TASKS = frozenset({"get-sli", "monitoring", "configure-monitoring"})
"""Tasks that are plumbing between Keptn services, not steps of a delivery: never emitted."""

QUALITY_GATE_SUITE = "keptn-quality-gate"
"""``testSuite.id`` of an evaluation (CDEvents has no quality-gate subject)."""

_SERVICE_TYPES = {
    "deployment": None,  # deployed or upgraded, decided by Related.deployed_before
    "rollback": "service.rolledback",
    "release": "service.published",
}
_URI_SAFE = ":/?#[]@!$&'()*+,;=%-._~"
_EVALUATION_KEYS = ("result", "score", "indicatorResults", "comparedEvents", "timeStart", "timeEnd")
_OPEN_STATES = frozenset({"OPEN"})
_RESOLVED_STATES = frozenset({"RESOLVED", "CLOSED"})


def cdevent_type(short: str) -> str:
    """The full type of ``<subject>.<predicate>``: every type used here is at version 0.3.0."""
    return f"dev.cdevents.{short}.0.3.0"


@dataclass(frozen=True)
class Related:
    """What the event store knows about an event beyond its own body (found by the forwarder).

    Attributes:
        sequence: for a task event, the sequence of its stage that it belongs to (the newest
            ``<stage>.<sequence>.triggered`` of its context before it). Default None.
        trigger_data: ``data`` of the task's ``.triggered`` event (where the image usually is).
        deployed_before: whether the service already had a passed deployment in the stage.
        base_url: the control plane's public URL, for ``uri`` fields. Default ``""``.
    """

    sequence: str | None = None
    trigger_data: Mapping[str, Any] | None = None
    deployed_before: bool = False
    base_url: str = ""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def image_to_purl(image: str) -> str:
    """A container image reference as a package URL (``pkg:docker/...``), as CDEvents wants.

    ``docker.io/keptnexamples/carts:0.13.1`` →
    ``pkg:docker/keptnexamples/carts@0.13.1?repository_url=docker.io``; a digest becomes the
    version (``@sha256%3A...``); no tag means ``latest``; no registry means no ``repository_url``.
    """
    reference = image.strip()
    digest: str | None = None
    if "@" in reference:
        reference, digest = reference.split("@", 1)
    tag: str | None = None
    last_slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > last_slash:
        reference, tag = reference[:colon], reference[colon + 1 :]
    parts = reference.split("/")
    registry: str | None = None
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, parts = parts[0], parts[1:]
    name = "/".join(quote(part, safe="") for part in parts if part) or "unknown"
    version = quote(digest or tag or "latest", safe="")
    purl = f"pkg:docker/{name}@{version}"
    return f"{purl}?repository_url={quote(registry, safe='')}" if registry else purl


def _image(data: Mapping[str, Any]) -> str | None:
    change = data.get("configurationChange")
    values = change.get("values") if isinstance(change, Mapping) else None
    return _text(values.get("image")) if isinstance(values, Mapping) else None


def _outcome(data: Mapping[str, Any]) -> str:
    status = data.get("status")
    if status == "errored":
        return "error"
    if status == "aborted":
        return "cancel"
    return "failure" if data.get("result") == "fail" else "success"


class _Builder:
    """Collects the CDEvents of one Keptn event, with the shared context fields."""

    def __init__(self, event: Mapping[str, Any], related: Related) -> None:
        self.event = event
        self.related = related
        data = event.get("data")
        self.data: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
        self.project = str(self.data.get("project") or "")
        self.stage = str(self.data.get("stage") or "")
        self.service = str(self.data.get("service") or "")
        self.context_id = str(event.get("shkeptncontext") or "")
        self.out: list[dict[str, Any]] = []

    def add(
        self,
        short: str,
        subject_id: str,
        content: dict[str, Any],
        *,
        custom: dict[str, Any] | None = None,
    ) -> None:
        full_type = cdevent_type(short)
        event_id = str(self.event["id"])
        if self.out:
            event_id = str(uuid.uuid5(CDEVENT_ID_NAMESPACE, f"{event_id}/{full_type}"))
        context: dict[str, Any] = {
            "specversion": CDEVENTS_SPEC_VERSION,
            "id": event_id,
            # CDEvents wants a URI reference; Keptn sources are mostly plain names, which are.
            "source": quote(str(self.event.get("source") or "capstan"), safe=_URI_SAFE),
            "type": full_type,
            "timestamp": str(self.event["time"]),
        }
        if self.context_id:
            context["chainId"] = self.context_id
        triggered_id = _text(self.event.get("triggeredid"))
        if triggered_id:
            context["links"] = [
                {"linkType": "RELATION", "linkKind": "TRIGGER", "target": {"contextId": triggered_id}}
            ]
        document: dict[str, Any] = {
            "context": context,
            "subject": {"id": subject_id, "source": context["source"], "content": content},
        }
        if custom:
            document["customData"] = custom
            document["customDataContentType"] = "application/json"
        self.out.append(document)

    def sequence_uri(self) -> str:
        base = self.related.base_url.rstrip("/")
        # The Bridge's page of the sequence (``api/bridge/sequences.py``).
        return f"{base}/project/{quote(self.project, safe='')}/sequence/{self.context_id}"

    def environment(self) -> dict[str, Any]:
        return {"id": f"{self.project}/{self.stage}"}

    def pipeline_id(self, sequence: str) -> str:
        return f"{self.context_id}/{self.stage}/{sequence}"


def _sequence_events(b: _Builder, parsed: SequenceEventType) -> None:
    subject = b.pipeline_id(parsed.sequence)
    content: dict[str, Any] = {
        "pipelineName": f"{b.project}/{parsed.stage}/{parsed.sequence}",
        "uri": b.sequence_uri(),
    }
    if parsed.kind is EventKind.TRIGGERED:
        b.add("pipelinerun.queued", subject, content)
        if parsed.sequence == "remediation":
            _incident(b, "incident.detected", _problem_title(b.data))
    elif parsed.kind is EventKind.STARTED:
        b.add("pipelinerun.started", subject, content)
    elif parsed.kind is EventKind.FINISHED:
        outcome = _outcome(b.data)
        content["outcome"] = outcome
        message = _text(b.data.get("message"))
        if message and outcome != "success":
            content["errors"] = message
        b.add("pipelinerun.finished", subject, content)
        if parsed.sequence == "remediation" and outcome == "success":
            _incident(b, "incident.resolved", _problem_title(b.data))


def _problem_title(data: Mapping[str, Any]) -> str | None:
    problem = data.get("problem")
    if isinstance(problem, Mapping):
        return _text(problem.get("problemTitle")) or _text(problem.get("ProblemTitle"))
    return _text(data.get("problemTitle")) or _text(data.get("ProblemTitle"))


def _incident(b: _Builder, short: str, description: str | None) -> None:
    content: dict[str, Any] = {
        "environment": b.environment(),
        "service": {"id": f"{b.project}/{b.stage}/{b.service}"},
    }
    if description:
        content["description"] = description
    image = _image(b.data)
    if image:
        content["artifactId"] = image_to_purl(image)
    # One incident per Keptn context: the remediation's detected and resolved share the subject.
    b.add(short, f"{b.context_id}/incident", content)


def _task_events(b: _Builder, parsed: TaskEventType) -> None:
    task, kind = parsed.task, parsed.kind
    if task in INTERNAL_TASKS or kind in (EventKind.STATUS_CHANGED, EventKind.INVALIDATED):
        return
    run_id = _text(b.event.get("triggeredid")) or str(b.event["id"])
    sequence = b.related.sequence
    pipeline = {"id": b.pipeline_id(sequence) if sequence else f"{b.context_id}/{b.stage}"}
    if kind in (EventKind.STARTED, EventKind.FINISHED):
        content: dict[str, Any] = {"taskName": task, "uri": b.sequence_uri(), "pipelineRun": pipeline}
        if kind is EventKind.FINISHED:
            content["outcome"] = _outcome(b.data)
            message = _text(b.data.get("message"))
            if message and content["outcome"] != "success":
                content["errors"] = message
        b.add(f"taskrun.{kind.value}", run_id, content)
    if task in ("test", "evaluation"):
        _test_suite(b, task, kind, run_id)
    if kind is EventKind.FINISHED and task in _SERVICE_TYPES and _outcome(b.data) == "success":
        _service(b, task)


def _test_suite(b: _Builder, task: str, kind: EventKind, run_id: str) -> None:
    if task == "evaluation":
        suite: dict[str, Any] = {"id": QUALITY_GATE_SUITE, "name": "Keptn quality gate"}
    else:
        test = b.data.get("test")
        strategy = _text(test.get("teststrategy")) if isinstance(test, Mapping) else None
        suite = {"id": strategy or "keptn-test"}
    content: dict[str, Any] = {"environment": b.environment(), "testSuite": suite}
    custom: dict[str, Any] | None = None
    if kind is EventKind.FINISHED:
        content["outcome"] = _outcome(b.data)
        message = _text(b.data.get("message"))
        if message:
            content["reason"] = message
        evaluation = b.data.get("evaluation")
        if task == "evaluation" and isinstance(evaluation, Mapping):
            custom = {"keptn": {key: evaluation[key] for key in _EVALUATION_KEYS if key in evaluation}}
    predicate = {EventKind.TRIGGERED: "queued", EventKind.STARTED: "started", EventKind.FINISHED: "finished"}
    b.add(f"testsuiterun.{predicate[kind]}", run_id, content, custom=custom)


def _service(b: _Builder, task: str) -> None:
    short = _SERVICE_TYPES[task]
    content: dict[str, Any] = {"environment": b.environment()}
    if short is None:
        short = "service.upgraded" if b.related.deployed_before else "service.deployed"
    if short != "service.published":
        # The finished event seldom repeats the image; the task's .triggered carries it.
        image = _image(b.data) or (_image(b.related.trigger_data) if b.related.trigger_data else None)
        if image is None:
            return  # artifactId is required and nothing names the artifact: nothing to say
        content["artifactId"] = image_to_purl(image)
    b.add(short, f"{b.project}/{b.stage}/{b.service}", content)


def _legacy_problem(b: _Builder) -> None:
    state = b.data.get("State", b.data.get("state"))
    state = state.upper() if isinstance(state, str) else ""
    if state in _OPEN_STATES:
        _incident(b, "incident.detected", _problem_title(b.data))
    elif state in _RESOLVED_STATES:
        _incident(b, "incident.resolved", _problem_title(b.data))


def to_cdevents(event: Mapping[str, Any], related: Related | None = None) -> list[dict[str, Any]]:
    """The CDEvents v0.5.1 a stored Keptn event stands for (often none, sometimes several).

    Args:
        event: the Keptn wire event (``id``, ``source``, ``type``, ``time``, ``shkeptncontext``,
            ``data``, perhaps ``triggeredid``).
        related: what the store knows around it; defaults when omitted.

    Returns:
        CDEvent JSON objects (``{"context", "subject", "customData"?}``), in the order to send.
    """
    b = _Builder(event, related or Related())
    event_type = str(event.get("type") or "")
    if event_type == PROBLEM_EVENT_TYPE:
        _legacy_problem(b)
        return b.out
    parsed = maybe_parse_event_type(event_type)
    if isinstance(parsed, SequenceEventType):
        _sequence_events(b, parsed)
    elif isinstance(parsed, TaskEventType):
        _task_events(b, parsed)
    return b.out


def to_cloudevent(cdevent: Mapping[str, Any], *, shkeptncontext: str | None = None) -> dict[str, Any]:
    """A CDEvent as a structured-mode CloudEvent, by the CDEvents CloudEvents binding.

    ``id``, ``source`` and ``type`` are the CDEvent context's, ``subject`` is ``subject.id``,
    ``time`` is ``context.timestamp`` and ``data`` the whole CDEvent; ``shkeptncontext`` stays
    as an extension attribute, so Keptn tools can still follow the context.
    """
    context = cdevent["context"]
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": context["id"],
        "source": context["source"],
        "type": context["type"],
        "time": context["timestamp"],
        "datacontenttype": "application/json",
        "data": dict(cdevent),
    }
    subject = cdevent.get("subject", {}).get("id")
    if isinstance(subject, str):
        envelope["subject"] = subject
    if shkeptncontext:
        envelope["shkeptncontext"] = shkeptncontext
    return envelope
