import asyncio
from datetime import timedelta

import pytest

from keptn.errors import InvalidInputError, NotFoundError
from keptn.uniform import SubscriptionFilter, integration_id
from store import uniform, uniform_subscriptions
from store.uniform import IntegrationQuery, Registration, SubscriptionSpec

TTL = timedelta(minutes=1)


def registration(
    name="helm-service", *subs: SubscriptionSpec, namespace="keptn", host="node-1", version="1.0"
):
    return Registration(
        name=name,
        metadata={
            "hostname": host,
            "integrationversion": version,
            "distributorversion": version,
            "location": "control-plane",
            "kubernetesmetadata": {"namespace": namespace, "podname": "pod", "deploymentname": name},
            "lastseen": "ignored",
        },
        subscriptions=subs,
    )


DEPLOY = SubscriptionSpec("sh.keptn.event.deployment.triggered", SubscriptionFilter.of(["sockshop"]))


async def expire(pool, integration):
    await pool.execute(
        "UPDATE uniform_integrations SET expires_at = now() - interval '1 second' WHERE id = $1", integration
    )


async def test_register_creates_with_keptns_id_and_subscription_uuids(pool):
    result = await uniform.register_integration(pool, registration("helm-service", DEPLOY), ttl=TTL)
    assert result.created
    assert result.id == integration_id("helm-service", "keptn", "node-1")
    found = await uniform.get_integration(pool, result.id)
    assert found.name == "helm-service"
    assert "lastseen" not in found.metadata
    assert found.metadata["kubernetesmetadata"]["namespace"] == "keptn"
    (sub,) = found.subscriptions
    assert sub.event == DEPLOY.event and sub.filter == DEPLOY.filter and sub.url is None
    assert len(sub.id) == 36


async def test_reregistering_keeps_id_and_subscriptions_and_updates_versions(pool):
    first = await uniform.register_integration(pool, registration("helm-service", DEPLOY), ttl=TTL)
    before = await uniform.get_integration(pool, first.id)
    other = SubscriptionSpec("sh.keptn.event.test.triggered")
    again = await uniform.register_integration(
        pool, registration("helm-service", other, host="node-2", version="2.0"), ttl=TTL
    )
    assert again.id == first.id and not again.created
    after = await uniform.get_integration(pool, first.id)
    assert after.subscriptions == before.subscriptions  # edits made since are kept, as in Keptn
    assert after.metadata["integrationversion"] == "2.0"
    assert after.metadata["distributorversion"] == "2.0"
    assert after.metadata["hostname"] == "node-1"  # only versions and lastseen change
    assert after.last_seen >= before.last_seen


async def test_reregistering_adopts_subscriptions_when_it_has_none(pool):
    first = await uniform.register_integration(pool, registration("svc"), ttl=TTL)
    await uniform.register_integration(pool, registration("svc", DEPLOY), ttl=TTL)
    (sub,) = (await uniform.get_integration(pool, first.id)).subscriptions
    assert sub.event == DEPLOY.event


async def test_other_namespace_is_another_integration(pool):
    a = await uniform.register_integration(pool, registration("svc", namespace="a"), ttl=TTL)
    b = await uniform.register_integration(pool, registration("svc", namespace="b"), ttl=TTL)
    assert a.id != b.id and a.created and b.created


async def test_concurrent_registrations_yield_one_integration(pool):
    results = await asyncio.gather(
        *(
            uniform.register_integration(pool, registration("svc", DEPLOY, host=f"n{i}"), ttl=TTL)
            for i in range(6)
        )
    )
    assert len({r.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len(await uniform.list_integrations(pool)) == 1


async def test_invalid_subscriptions_are_rejected_naming_the_index(pool):
    bad = SubscriptionSpec("sh.keptn.>", SubscriptionFilter.of(services=["carts"]))
    with pytest.raises(InvalidInputError) as caught:
        await uniform.register_integration(pool, registration("svc", DEPLOY, bad), ttl=TTL)
    assert caught.value.field == "subscriptions[1].filter.stages"
    with pytest.raises(InvalidInputError) as caught:
        await uniform.register_integration(
            pool, registration("webhook-service", SubscriptionSpec("a")), ttl=TTL
        )
    assert caught.value.field == "subscriptions[0].filter.projects"
    assert await uniform.list_integrations(pool) == []


async def test_expired_integrations_are_gone_and_purged(pool):
    result = await uniform.register_integration(pool, registration("svc", DEPLOY), ttl=TTL)
    await expire(pool, result.id)
    assert await uniform.get_integration(pool, result.id) is None
    assert await uniform.list_integrations(pool) == []
    with pytest.raises(NotFoundError):
        await uniform.heartbeat(pool, result.id, ttl=TTL)
    # registering again starts afresh (the old subscriptions died with it)
    again = await uniform.register_integration(pool, registration("svc", SubscriptionSpec("x.y")), ttl=TTL)
    assert again.created and again.id == result.id
    assert [s.event for s in (await uniform.get_integration(pool, result.id)).subscriptions] == ["x.y"]
    assert await pool.fetchval("SELECT count(*) FROM uniform_subscriptions") == 1


async def test_heartbeat_extends_life_and_returns_subscriptions(pool):
    result = await uniform.register_integration(pool, registration("svc", DEPLOY), ttl=timedelta(seconds=1))
    renewed = await uniform.heartbeat(pool, result.id, ttl=timedelta(hours=1))
    assert [s.event for s in renewed.subscriptions] == [DEPLOY.event]
    left = await pool.fetchval("SELECT expires_at - now() FROM uniform_integrations WHERE id = $1", result.id)
    assert left > timedelta(minutes=59)
    with pytest.raises(NotFoundError) as caught:
        await uniform.heartbeat(pool, "unknown", ttl=TTL)
    assert caught.value.field == "integrationID"


async def test_list_filters(pool):
    a = await uniform.register_integration(
        pool,
        registration(
            "a",
            SubscriptionSpec("e", SubscriptionFilter.of(["p1"], ["dev"])),
            SubscriptionSpec("e", SubscriptionFilter.of(["p2"], [], [])),
        ),
        ttl=TTL,
    )
    b = await uniform.register_integration(pool, registration("b", SubscriptionSpec("e")), ttl=TTL)

    async def ids(**query):
        return [i.id for i in await uniform.list_integrations(pool, IntegrationQuery(**query))]

    assert await ids() == [a.id, b.id]
    assert await ids(id=b.id) == [b.id]
    assert await ids(name="a") == [a.id]
    assert await ids(project="p2") == [a.id]
    # each dimension may be matched by a different subscription, as Keptn's query did
    assert await ids(project="p2", stage="dev") == [a.id]
    assert await ids(project="p3") == []
    assert await ids(service="x") == []


async def test_subscription_crud(pool):
    result = await uniform.register_integration(pool, registration("svc", DEPLOY), ttl=TTL)
    spec = SubscriptionSpec("sh.keptn.event.test.triggered", url="http://127.0.0.1:9/x")
    created = await uniform_subscriptions.create_subscription(pool, result.id, spec)
    got = await uniform_subscriptions.get_subscription(pool, result.id, created)
    assert (got.event, got.url) == (spec.event, spec.url)
    assert [s.id for s in await uniform_subscriptions.list_subscriptions(pool, result.id)][1] == created

    await uniform_subscriptions.put_subscription(pool, result.id, created, SubscriptionSpec("a.b"))
    assert (await uniform_subscriptions.get_subscription(pool, result.id, created)).url is None
    await uniform_subscriptions.put_subscription(pool, result.id, "my-own-id", SubscriptionSpec("c.d"))
    assert (await uniform_subscriptions.get_subscription(pool, result.id, "my-own-id")).event == "c.d"

    await uniform_subscriptions.delete_subscription(pool, result.id, created)
    with pytest.raises(NotFoundError) as caught:
        await uniform_subscriptions.get_subscription(pool, result.id, created)
    assert caught.value.field == "subscriptionID"
    with pytest.raises(NotFoundError):
        await uniform_subscriptions.delete_subscription(pool, result.id, created)


async def test_subscription_writes_need_a_live_integration_and_valid_input(pool):
    with pytest.raises(NotFoundError):
        await uniform_subscriptions.create_subscription(pool, "nope", SubscriptionSpec("a"))
    with pytest.raises(NotFoundError):
        await uniform_subscriptions.list_subscriptions(pool, "nope")
    hook = await uniform.register_integration(
        pool, registration("webhook-service", SubscriptionSpec("a", SubscriptionFilter.of(["p"]))), ttl=TTL
    )
    with pytest.raises(InvalidInputError) as caught:
        await uniform_subscriptions.create_subscription(pool, hook.id, SubscriptionSpec("a"))
    assert caught.value.field == "filter.projects"
    with pytest.raises(InvalidInputError) as caught:
        await uniform_subscriptions.put_subscription(
            pool, hook.id, "x", SubscriptionSpec("a", SubscriptionFilter.of(["p"]), url="x")
        )
    assert caught.value.field == "url"


async def test_delete_integration(pool):
    result = await uniform.register_integration(pool, registration("svc", DEPLOY), ttl=TTL)
    await uniform.delete_integration(pool, result.id)
    assert await uniform.get_integration(pool, result.id) is None
    assert await pool.fetchval("SELECT count(*) FROM uniform_subscriptions") == 0
    with pytest.raises(NotFoundError):
        await uniform.delete_integration(pool, result.id)


async def test_push_subscriptions_match_pattern_filter_and_liveness(pool):
    event = {"type": "sh.keptn.event.deployment.triggered", "data": {"project": "sockshop", "stage": "dev"}}
    a = await uniform.register_integration(
        pool,
        registration(
            "a",
            SubscriptionSpec("sh.keptn.event.deployment.triggered", url="http://a/1"),
            SubscriptionSpec("sh.keptn.>", SubscriptionFilter.of(["sockshop"]), url="http://a/2"),
            SubscriptionSpec("sh.keptn.>"),  # pull only
            SubscriptionSpec("sh.keptn.>", SubscriptionFilter.of(["other"]), url="http://a/3"),
            SubscriptionSpec("sh.keptn.event.test.triggered", url="http://a/4"),
        ),
        ttl=TTL,
    )
    dead = await uniform.register_integration(
        pool, registration("dead", SubscriptionSpec(">", url="http://d")), ttl=TTL
    )
    await expire(pool, dead.id)
    targets = await uniform.push_subscriptions(pool, event)
    assert [(t.integration_id, t.integration_name, t.url) for t in targets] == [
        (a.id, "a", "http://a/1"),
        (a.id, "a", "http://a/2"),
    ]
    assert len({t.subscription_id for t in targets}) == 2
