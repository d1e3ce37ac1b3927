"""CDEvents: accept them as Keptn triggers, and manage who receives the CDEvents Capstan emits.

* ``POST /api/v1/cdevent``: a CDEvent v0.5.1 (plain JSON, or a CloudEvent in structured or binary
  mode as the CDEvents binding defines) is validated against its schema, translated
  (``keptn/cdevents_inbound.py``) and then submitted exactly like ``POST /api/v1/event``.
* ``POST|GET /api/v1/cdevents/subscriptions``, ``DELETE /api/v1/cdevents/subscriptions/{id}``:
  subscribers to the CDEvents translated from every stored Keptn event (``docs/cdevents.md``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, scoped
from api.cloudevents_http import MAX_EVENT_BYTES, STRUCTURED_TYPE, _json_object
from api.deps import PoolDep, ServicesDep
from api.schemas.common import ErrorBody, error_responses
from api.submit import submit_event
from capstan.scopes import Scope
from keptn.cdevents_inbound import is_trigger, keptn_target, to_keptn_event
from keptn.cdevents_schema import validate_cdevent
from keptn.errors import InvalidEventError, InvalidInputError, NotFoundError
from keptn.events import format_keptn_time, parse_incoming_event
from keptn.names import validate_project_name
from store import cdevents as cdevent_store
from store import projects as project_store

router = APIRouter(prefix="/v1", tags=["cdevents"])


class AcceptedCDEvent(BaseModel):
    """The Keptn event a CDEvent became."""

    keptnContext: str = Field(description="the Keptn context (shkeptncontext) of the event")
    id: str = Field(description="the Keptn event's id (the same for a redelivered CDEvent)")
    type: str = Field(description="the Keptn event type, e.g. sh.keptn.event.dev.delivery.triggered")


class CreateSubscription(BaseModel):
    """A new CDEvents subscriber."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="where CDEvents are POSTed (http or https)")
    project: str | None = Field(default=None, description="only events of this project; all when absent")
    types: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="CDEvents type prefixes to send, e.g. 'dev.cdevents.service.'; all when empty",
    )


class SubscriptionOut(BaseModel):
    """A subscriber and how delivery to it is going."""

    id: str
    url: str
    project: str | None
    types: list[str]
    createdAt: str
    delivered: int = Field(description="CDEvents the subscriber acknowledged so far")
    pending: int = Field(description="stored Keptn events not yet forwarded to it")
    failures: int = Field(description="consecutive failed attempts; 0 when delivery works")
    nextAttemptAt: str | None = Field(description="while backing off: when the next attempt is")
    lastError: str | None


class SubscriptionList(BaseModel):
    """All subscriptions the token may see."""

    subscriptions: list[SubscriptionOut]


def _out(found: cdevent_store.CDEventSubscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=found.id,
        url=found.url,
        project=found.project,
        types=found.types,
        createdAt=format_keptn_time(found.created_at),
        delivered=found.delivered,
        pending=found.pending,
        failures=found.failures,
        nextAttemptAt=format_keptn_time(found.next_attempt_at) if found.next_attempt_at else None,
        lastError=found.last_error,
    )


def _cdevent_document(request: Request, body: bytes) -> dict[str, Any]:
    """The CDEvent in a request: the body itself, or the ``data`` of a structured CloudEvent."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    document = _json_object(body, "body")
    if media_type == STRUCTURED_TYPE:
        data = document.get("data")
        if not isinstance(data, dict):
            raise InvalidEventError(
                "data: a CDEvents CloudEvent carries the CDEvent as a JSON object", field="data"
            )
        if document.get("type") not in (None, data.get("context", {}).get("type")):
            raise InvalidEventError("type: must equal the CDEvent's context.type", field="type")
        return data
    # Binary mode (ce-* headers) carries the whole CDEvent as the body, like plain JSON.
    return document


@router.post(
    "/cdevent",
    response_model=AcceptedCDEvent,
    responses={
        400: {"model": ErrorBody, "description": "not a valid CDEvent v0.5.1, or not an accepted trigger"},
        404: {"model": ErrorBody, "description": "customData.keptn names an unknown project or service"},
        409: {"model": ErrorBody, "description": "the Keptn event id is used by a different event"},
        413: {"model": ErrorBody, "description": "body larger than 1 MiB"},
        503: {"model": ErrorBody, "description": "PostgreSQL or Temporal is down; send it again"},
    },
)
async def post_cdevent(
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, scoped(Scope.EVENTS_WRITE)],
) -> AcceptedCDEvent:
    """Accept a CDEvent as a Keptn trigger (``docs/cdevents.md`` lists the accepted types).

    ``customData.keptn`` names the project and service (and optionally stage, sequence and
    labels). The CDEvent is validated against its v0.5.1 schema, translated, and submitted like
    ``POST /api/v1/event``; sending the same CDEvent again is answered with the same Keptn event.
    """
    body = await request.body()
    if len(body) > MAX_EVENT_BYTES:
        raise HTTPException(413, f"event body larger than {MAX_EVENT_BYTES} bytes")
    document = _cdevent_document(request, body)
    event_type = validate_cdevent(document)
    target = keptn_target(document)
    stage = target.stage
    if stage is None and is_trigger(event_type):
        project = await project_store.get_project(services.pool, target.project)
        if project is None or not project.stages:
            raise NotFoundError(
                f"project '{target.project}' not found (customData.keptn.project)",
                field="customData.keptn.project",
            )
        stage = project.stages[0].name
    incoming = parse_incoming_event(to_keptn_event(document, target, stage=stage))
    event = await submit_event(services, principal, incoming)
    return AcceptedCDEvent(keptnContext=event.shkeptncontext, id=event.id, type=event.type)


_PRINTABLE = re.compile(r"[\x21-\x7e]+")
"""URLs and type prefixes: visible ASCII (no blanks, no control characters PostgreSQL refuses)."""


def _check_subscription(body: CreateSubscription) -> None:
    if not body.url.lower().startswith(("http://", "https://")) or not _PRINTABLE.fullmatch(body.url):
        raise InvalidInputError("url: must be an http or https URL", field="url")
    for index, prefix in enumerate(body.types):
        if not prefix.startswith("dev.cdevents.") or not _PRINTABLE.fullmatch(prefix):
            raise InvalidInputError(
                f"types[{index}]: {prefix!r} is not a CDEvents type prefix (dev.cdevents.…)",
                field=f"types[{index}]",
            )
    if body.project is not None:
        validate_project_name(body.project)


@router.post(
    "/cdevents/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionOut,
    responses=error_responses(400, 404),
)
async def create_subscription(
    body: CreateSubscription,
    pool: PoolDep,
    principal: Annotated[Principal, scoped(Scope.INTEGRATIONS_WRITE)],
) -> SubscriptionOut:
    """Subscribe a URL to CDEvents; events stored from now on are forwarded to it, at least once.

    A token restricted to a project must name that project.
    """
    _check_subscription(body)
    if body.project is None:
        principal.require_all_projects("a CDEvents subscription to every project")
    else:
        principal.check_project(body.project)
        if await project_store.get_project(pool, body.project) is None:
            raise NotFoundError(f"project '{body.project}' not found (project)", field="project")
    created = await cdevent_store.create_subscription(
        pool, url=body.url, project=body.project, types=body.types
    )
    return _out(created)


@router.get("/cdevents/subscriptions", response_model=SubscriptionList, responses=error_responses(400))
async def list_subscriptions(
    pool: PoolDep,
    principal: Annotated[Principal, scoped(Scope.INTEGRATIONS_READ)],
    project: str | None = None,
) -> SubscriptionList:
    """List CDEvents subscriptions with their delivery state (a restricted token: its project's)."""
    if project:
        validate_project_name(project)
    found = await cdevent_store.list_subscriptions(pool, project=principal.project_filter(project))
    return SubscriptionList(subscriptions=[_out(s) for s in found])


@router.delete(
    "/cdevents/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    responses=error_responses(404),
)
async def delete_subscription(
    subscription_id: str,
    pool: PoolDep,
    principal: Annotated[Principal, scoped(Scope.INTEGRATIONS_WRITE)],
) -> SubscriptionOut:
    """Delete a subscription and drop what was still queued for it."""
    if not _PRINTABLE.fullmatch(subscription_id):
        raise NotFoundError(f"CDEvents subscription {subscription_id!r} not found", field="subscription_id")
    found = await cdevent_store.list_subscriptions(pool, subscription_id=subscription_id)
    if found and found[0].project:
        principal.check_project(found[0].project)
    elif found:
        principal.require_all_projects("deleting a subscription to every project")
    deleted = await cdevent_store.deleted_subscription(pool, subscription_id) if found else None
    if deleted is None:
        raise NotFoundError(f"CDEvents subscription '{subscription_id}' not found", field="subscription_id")
    return _out(deleted)
