"""Keptn's api-service: ``/api/v1/event``, ``/api/v1/auth``, ``/api/v1/metadata``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, any_valid_token, scoped
from api.cloudevents_http import read_incoming_event
from api.deps import ServicesDep
from api.schemas.common import ErrorBody
from api.submit import submit_event
from capstan.scopes import Scope
from keptn.events import IncomingEvent

router = APIRouter(prefix="/v1", tags=["api-service"])

KEPTN_COMPATIBLE_VERSION = "1.4.5"
"""The Keptn release whose API Capstan implements; the keptn CLI compares it with its own."""
SHIPYARD_VERSION = "spec.keptn.sh/0.2.4"
CAPSTAN_VERSION = "0.1.0"


class EventContext(BaseModel):
    """Keptn's answer to an accepted event."""

    keptnContext: str = Field(description="the Keptn context (shkeptncontext) the event belongs to")


class Metadata(BaseModel):
    """Keptn's metadata document, plus Capstan's own version."""

    model_config = ConfigDict(extra="forbid")

    namespace: str
    keptnlabel: str
    keptnversion: str
    shipyardversion: str
    bridgeversion: str
    keptnservices: dict[str, str]
    automaticprovisioning: bool
    capstanversion: str


ERRORS = {
    400: {"model": ErrorBody, "description": "the event breaks Keptn's rules; the message names the field"},
    401: {"model": ErrorBody, "description": "missing or wrong x-token"},
    404: {"model": ErrorBody, "description": "a sequence trigger names an unknown project or service"},
    409: {"model": ErrorBody, "description": "the event id is already used by a different event"},
    503: {"model": ErrorBody, "description": "PostgreSQL or Temporal is down; retry with the same event id"},
    413: {"model": ErrorBody, "description": "event larger than 1 MiB"},
    415: {"model": ErrorBody, "description": "unsupported content type (e.g. batched CloudEvents)"},
}


@router.post(
    "/event",
    response_model=EventContext,
    responses=ERRORS,  # type: ignore[arg-type]
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": IncomingEvent.model_json_schema()},
                "application/cloudevents+json": {"schema": IncomingEvent.model_json_schema()},
            },
        }
    },
)
async def post_event(
    request: Request,
    services: ServicesDep,
    # Either scope gets in; which one the event needs depends on its type (authorize_event).
    principal: Annotated[Principal, scoped(Scope.EVENTS_WRITE, Scope.APPROVALS_WRITE)],
) -> EventContext:
    """Accept a Keptn CloudEvent: validate it, stamp id/time/context, store it, hand it to its sequence.

    Accepts Keptn's partial JSON event, a structured CloudEvent or a binary-mode CloudEvent. The
    answer comes only after the event is stored and its context workflow has it; after a 503 the
    client retries with the same id, which is stored once and routed again.

    ``sh.keptn.event.approval.finished`` needs the scope ``approvals:write``, every other event
    ``events:write``; a token restricted to a project may send only events of that project.
    """
    event = await submit_event(services, principal, await read_incoming_event(request))
    return EventContext(keptnContext=event.shkeptncontext)


@router.post("/auth", responses={401: {"model": ErrorBody}}, dependencies=[any_valid_token()])
async def auth() -> dict[str, str]:
    """Check the API token (the router's token dependency has already done it); any valid token."""
    return {}


@router.get(
    "/metadata",
    response_model=Metadata,
    responses={401: {"model": ErrorBody}},
    dependencies=[any_valid_token()],
)
async def metadata() -> Metadata:
    """Describe the control plane the way Keptn's metadata endpoint does."""
    return Metadata(
        namespace="capstan",
        keptnlabel="capstan",
        keptnversion=KEPTN_COMPATIBLE_VERSION,
        shipyardversion=SHIPYARD_VERSION,
        bridgeversion=CAPSTAN_VERSION,
        keptnservices={},
        automaticprovisioning=False,
        capstanversion=CAPSTAN_VERSION,
    )
