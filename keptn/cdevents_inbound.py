"""CDEvents as Keptn triggers: which CDEvents start which sequence, and the event they become (pure).

A CDEvent says *what* happened (an artifact was published, a service deployed, an incident
detected) but not which Keptn project, service and stage it concerns. The sender says so in
``customData.keptn`` (``docs/cdevents.md``)::

    "customData": {"keptn": {"project": "sockshop", "service": "carts",
                             "stage": "dev", "sequence": "delivery", "labels": {"by": "ci"}}}

``project`` and ``service`` are required; ``stage`` defaults to the project's first stage and
``sequence`` to the type's default below. Accepted types:

=====================================  =================================================
CDEvent                                Keptn event
=====================================  =================================================
``artifact.published/packaged``        ``<stage>.delivery.triggered``, image from the purl
``service.deployed/upgraded/rolledback`` ``<stage>.evaluation.triggered`` (a quality gate)
``incident.detected/reported``         ``<stage>.remediation.triggered`` with ``problem``
``incident.resolved``                  ``sh.keptn.events.problem`` ``State: RESOLVED``
                                       (ends the service's open remediations)
=====================================  =================================================

The Keptn event's id is a UUIDv5 of the CDEvent's ``source``, ``id`` and ``type``, so a
redelivered CDEvent is stored once; ``chainId`` (if any) becomes ``shkeptncontext``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from keptn.errors import InvalidEventError
from keptn.event_types import PROBLEM_EVENT_TYPE, EventKind, sequence_event_type

__all__ = [
    "ACCEPTED_TYPES",
    "KEPTN_ID_NAMESPACE",
    "KeptnTarget",
    "is_trigger",
    "keptn_target",
    "purl_to_image",
    "to_keptn_event",
]

KEPTN_ID_NAMESPACE = uuid.UUID("0b7f1c1e-3f7a-4a7e-a0d4-8a4f2f6c9e55")
"""Namespace of the UUIDv5 that names the Keptn event of a CDEvent (its ``source``, ``id``, ``type``)."""

_RESOLVED = "problem-resolved"
ACCEPTED_TYPES: dict[str, str] = {
    "dev.cdevents.artifact.published.0.3.0": "delivery",
    "dev.cdevents.artifact.packaged.0.3.0": "delivery",
    "dev.cdevents.service.deployed.0.3.0": "evaluation",
    "dev.cdevents.service.upgraded.0.3.0": "evaluation",
    "dev.cdevents.service.rolledback.0.3.0": "evaluation",
    "dev.cdevents.incident.detected.0.3.0": "remediation",
    "dev.cdevents.incident.reported.0.3.0": "remediation",
    "dev.cdevents.incident.resolved.0.3.0": _RESOLVED,
}
"""Every CDEvents type accepted as a trigger, with its default sequence."""


@dataclass(frozen=True)
class KeptnTarget:
    """Where a CDEvent lands in Keptn, from ``customData.keptn``.

    Attributes:
        project: the project (required).
        service: the service (required).
        stage: the stage; None means the project's first stage (for a trigger, see
            :func:`is_trigger`).
        sequence: the sequence to trigger; the type's default when None.
        labels: Keptn labels to put on the event.
    """

    project: str
    service: str
    stage: str | None = None
    sequence: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def _string(keptn: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = keptn.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        what = "is required and must" if required else "must"
        raise InvalidEventError(
            f"customData.keptn.{name}: {what} be a non-empty string", field=f"customData.keptn.{name}"
        )
    return value


def keptn_target(cdevent: Mapping[str, Any]) -> KeptnTarget:
    """Read ``customData.keptn`` of an accepted CDEvent (its type already checked).

    Raises:
        InvalidEventError: the type is not accepted as a trigger, or ``customData.keptn`` is
            missing or malformed; ``field`` names the offending value.
    """
    event_type = str(cdevent.get("context", {}).get("type", ""))
    if event_type not in ACCEPTED_TYPES:
        accepted = ", ".join(sorted(ACCEPTED_TYPES))
        raise InvalidEventError(
            f"context.type: {event_type!r} is not accepted as a Keptn trigger (accepted: {accepted})",
            field="context.type",
        )
    custom = cdevent.get("customData")
    keptn = custom.get("keptn") if isinstance(custom, Mapping) else None
    if not isinstance(keptn, Mapping):
        raise InvalidEventError(
            "customData.keptn: required, a JSON object naming at least project and service",
            field="customData.keptn",
        )
    labels = keptn.get("labels", {})
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidEventError(
            "customData.keptn.labels: must be an object of strings", field="customData.keptn.labels"
        )
    return KeptnTarget(
        project=str(_string(keptn, "project", required=True)),
        service=str(_string(keptn, "service", required=True)),
        stage=_string(keptn, "stage", required=False),
        sequence=_string(keptn, "sequence", required=False),
        labels={str(k): v for k, v in labels.items()},
    )


def is_trigger(event_type: str) -> bool:
    """Whether an accepted CDEvents type starts a sequence (and so needs a stage)."""
    return ACCEPTED_TYPES.get(event_type) not in (None, _RESOLVED)


def purl_to_image(purl: str) -> str | None:
    """The container image a ``pkg:docker`` or ``pkg:oci`` package URL names; None for other types.

    ``pkg:docker/keptnexamples/carts@0.13.1?repository_url=docker.io`` →
    ``docker.io/keptnexamples/carts:0.13.1``; ``pkg:oci/app@sha256%3Aab?repository_url=ghcr.io/o/app``
    → ``ghcr.io/o/app@sha256:ab`` (for ``oci`` the repository URL already ends in the name).
    """
    if not purl.startswith("pkg:"):
        return None
    parts = urlsplit(purl[4:].split("#", 1)[0])
    path, _, version = parts.path.partition("@")
    kind, _, name = path.partition("/")
    kind = kind.lower()
    if kind not in ("docker", "oci") or not name:
        return None
    repository = parse_qs(parts.query).get("repository_url", [""])[0]
    name = unquote(name)
    if kind == "oci":
        location = repository or name.rsplit("/", 1)[-1]
    else:
        location = f"{repository}/{name}" if repository else name
    version = unquote(version)
    if not version:
        return location
    return f"{location}@{version}" if ":" in version else f"{location}:{version}"


def _artifact(cdevent: Mapping[str, Any]) -> str | None:
    subject = cdevent.get("subject", {})
    if str(cdevent["context"]["type"]).startswith("dev.cdevents.artifact."):
        return str(subject.get("id"))
    artifact = subject.get("content", {}).get("artifactId")
    return artifact if isinstance(artifact, str) else None


def to_keptn_event(cdevent: Mapping[str, Any], target: KeptnTarget, *, stage: str | None) -> dict[str, Any]:
    """The Keptn event (as ``POST /api/v1/event`` takes it) that an accepted CDEvent stands for.

    Args:
        cdevent: a CDEvent that passed :func:`keptn.cdevents_schema.validate_cdevent`.
        target: its :func:`keptn_target`.
        stage: the stage to use (``target.stage``, or the project's first stage).

    Returns:
        The partial Keptn event: ``type``, ``source``, ``id``, ``shkeptncontext`` (if the
        CDEvent has a ``chainId``) and ``data``; the gateway stamps ``time`` as for any event.
    """
    context = cdevent["context"]
    subject = cdevent["subject"]
    content = subject.get("content", {})
    sequence = target.sequence or ACCEPTED_TYPES[str(context["type"])]
    data: dict[str, Any] = {"project": target.project, "service": target.service}
    if stage:
        data["stage"] = stage
    if target.labels:
        data["labels"] = dict(target.labels)
    artifact = _artifact(cdevent)
    image = purl_to_image(artifact) if artifact else None
    if image:
        data["configurationChange"] = {"values": {"image": image}}
    # Where it came from, for integrations and people reading the event store.
    data["cdevent"] = {"type": context["type"], "id": context["id"], "source": context["source"]}
    if artifact:
        data["cdevent"]["artifactId"] = artifact
    if sequence == _RESOLVED or str(context["type"]).startswith("dev.cdevents.incident."):
        problem: dict[str, Any] = {
            "ProblemID": str(subject["id"]),
            "problemTitle": content.get("description") or f"incident {subject['id']}",
            "State": "RESOLVED" if sequence == _RESOLVED else "OPEN",
        }
        if sequence == _RESOLVED:
            data.update(problem)
        else:
            data["problem"] = problem
    event_type = (
        PROBLEM_EVENT_TYPE
        if sequence == _RESOLVED
        else sequence_event_type(str(stage), sequence, EventKind.TRIGGERED)
    )
    event: dict[str, Any] = {
        "specversion": "1.0",
        "type": event_type,
        "source": str(context["source"]),
        "id": str(uuid.uuid5(KEPTN_ID_NAMESPACE, f"{context['source']}\n{context['id']}\n{context['type']}")),
        "datacontenttype": "application/json",
        "data": data,
    }
    if context.get("chainId"):
        event["shkeptncontext"] = str(context["chainId"])
    return event
