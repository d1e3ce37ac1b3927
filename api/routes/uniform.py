"""Keptn's uniform: integration registration, heartbeat and subscriptions (``/controlPlane/v1/uniform``).

Status codes are shipyard-controller's: registering answers 201 for a new integration and 200 for
an existing one (same name and namespace), creating or replacing a subscription 201. Differences:
an unknown integration or subscription is a 404 on every route (Keptn answered 200 to deletes and
500 to some writes), subscriptions are validated on every write (Keptn skipped the checks when an
integration re-registered, and the ``webhook-service`` project rule on ``POST .../subscription``),
and a subscription may carry Capstan's ``url`` to receive matching events by HTTP push.

Reads need the scope ``integrations:read``, writes ``integrations:write``. Integrations belong to
no single project (a subscription may match any, and a push ``url`` receives what it matches), so
a token restricted to a project gets 403 here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from api.auth import scoped
from api.deps import PoolDep, ServicesDep
from api.schemas.common import error_responses
from api.schemas.uniform import (
    EmptyBody,
    IdBody,
    IntegrationOut,
    MetadataOut,
    RegistrationBody,
    SubscriptionBody,
    SubscriptionFilterOut,
    SubscriptionOut,
    go_time,
)
from capstan.scopes import Scope
from keptn.uniform import SubscriptionFilter
from store import uniform as uniform_store
from store import uniform_subscriptions as subscription_store
from store.uniform import Integration, IntegrationQuery, Registration, Subscription, SubscriptionSpec

router = APIRouter(prefix="/controlPlane/v1", tags=["uniform"])

REGISTRATION = "/uniform/registration"
ONE = REGISTRATION + "/{integrationID}"
SUBSCRIPTIONS = ONE + "/subscription"
ONE_SUBSCRIPTION = SUBSCRIPTIONS + "/{subscriptionID}"

_READ = scoped(Scope.INTEGRATIONS_READ, all_projects=True)
_WRITE = scoped(Scope.INTEGRATIONS_WRITE, all_projects=True)


_REGISTER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": IdBody, "description": "an integration with this name and namespace existed"},
    **error_responses(400, 401, 503),
}


def _integration_ttl(services: ServicesDep) -> timedelta:
    return services.settings.uniform_integration_ttl


IntegrationTTL = Annotated[timedelta, Depends(_integration_ttl)]


def _spec(body: SubscriptionBody) -> SubscriptionSpec:
    found = body.filter
    return SubscriptionSpec(
        event=body.event,
        filter=SubscriptionFilter.of(found.projects, found.stages, found.services)
        if found
        else SubscriptionFilter(),
        url=body.url,
    )


def _subscription(item: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=item.id,
        event=item.event,
        filter=SubscriptionFilterOut(
            projects=list(item.filter.projects),
            stages=list(item.filter.stages),
            services=list(item.filter.services),
        ),
        url=item.url,
    )


def _integration(item: Integration) -> IntegrationOut:
    metadata = MetadataOut.model_validate({**item.metadata, "lastseen": go_time(item.last_seen)})
    return IntegrationOut(
        id=item.id,
        name=item.name,
        metadata=metadata,
        subscriptions=[_subscription(s) for s in item.subscriptions],
    )


@router.post(
    REGISTRATION,
    status_code=status.HTTP_201_CREATED,
    response_model=IdBody,
    responses=_REGISTER_RESPONSES,
    dependencies=[_WRITE],
)
async def register_integration(
    pool: PoolDep, ttl: IntegrationTTL, body: RegistrationBody, response: Response
) -> IdBody:
    """Register an integration (201), or renew the existing one with the same name and namespace (200)."""
    registration = Registration(
        name=body.name,
        metadata=body.metadata.model_dump(),
        subscriptions=tuple(_spec(s) for s in body.subscriptions or ()),
    )
    result = await uniform_store.register_integration(pool, registration, ttl=ttl)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return IdBody(id=result.id)


@router.get(
    REGISTRATION,
    response_model=list[IntegrationOut],
    responses=error_responses(400, 401, 503),
    dependencies=[_READ],
)
async def list_integrations(
    pool: PoolDep,
    id: Annotated[str | None, Query(description="integration id")] = None,
    name: Annotated[str | None, Query(description="integration name")] = None,
    project: Annotated[str | None, Query(description="some subscription filter lists this project")] = None,
    stage: Annotated[str | None, Query(description="some subscription filter lists this stage")] = None,
    service: Annotated[str | None, Query(description="some subscription filter lists this service")] = None,
) -> list[IntegrationOut]:
    """Live integrations (heartbeat within the TTL) matching every given filter."""
    query = IntegrationQuery(id=id, name=name, project=project, stage=stage, service=service)
    return [_integration(i) for i in await uniform_store.list_integrations(pool, query)]


@router.delete(ONE, response_model=EmptyBody, responses=error_responses(401, 404, 503), dependencies=[_WRITE])
async def unregister_integration(pool: PoolDep, integrationID: str) -> EmptyBody:
    """Unregister an integration with its subscriptions."""
    await uniform_store.delete_integration(pool, integrationID)
    return EmptyBody()


@router.put(
    ONE + "/ping",
    response_model=IntegrationOut,
    responses=error_responses(401, 404, 503),
    dependencies=[_WRITE],
)
async def ping_integration(pool: PoolDep, ttl: IntegrationTTL, integrationID: str) -> IntegrationOut:
    """Heartbeat: keeps the integration alive and returns it with its current subscriptions."""
    return _integration(await uniform_store.heartbeat(pool, integrationID, ttl=ttl))


@router.get(
    SUBSCRIPTIONS,
    response_model=list[SubscriptionOut],
    responses=error_responses(401, 404, 503),
    dependencies=[_READ],
)
async def list_subscriptions(pool: PoolDep, integrationID: str) -> list[SubscriptionOut]:
    """The integration's subscriptions."""
    return [_subscription(s) for s in await subscription_store.list_subscriptions(pool, integrationID)]


@router.post(
    SUBSCRIPTIONS,
    status_code=status.HTTP_201_CREATED,
    response_model=IdBody,
    responses=error_responses(400, 401, 404, 503),
    dependencies=[_WRITE],
)
async def create_subscription(pool: PoolDep, integrationID: str, body: SubscriptionBody) -> IdBody:
    """Add a subscription; its id is a new UUID."""
    return IdBody(id=await subscription_store.create_subscription(pool, integrationID, _spec(body)))


@router.get(
    ONE_SUBSCRIPTION,
    response_model=SubscriptionOut,
    responses=error_responses(401, 404, 503),
    dependencies=[_READ],
)
async def get_subscription(pool: PoolDep, integrationID: str, subscriptionID: str) -> SubscriptionOut:
    """One subscription."""
    return _subscription(await subscription_store.get_subscription(pool, integrationID, subscriptionID))


@router.put(
    ONE_SUBSCRIPTION,
    status_code=status.HTTP_201_CREATED,
    response_model=IdBody,
    responses=error_responses(400, 401, 404, 503),
    dependencies=[_WRITE],
)
async def put_subscription(
    pool: PoolDep, integrationID: str, subscriptionID: str, body: SubscriptionBody
) -> IdBody:
    """Replace a subscription, or create it under this id."""
    await subscription_store.put_subscription(pool, integrationID, subscriptionID, _spec(body))
    return IdBody(id=subscriptionID)


@router.delete(
    ONE_SUBSCRIPTION,
    response_model=EmptyBody,
    responses=error_responses(401, 404, 503),
    dependencies=[_WRITE],
)
async def delete_subscription(pool: PoolDep, integrationID: str, subscriptionID: str) -> EmptyBody:
    """Remove a subscription."""
    await subscription_store.delete_subscription(pool, integrationID, subscriptionID)
    return EmptyBody()
