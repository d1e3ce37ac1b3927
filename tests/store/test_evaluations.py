"""The comparison query of the lighthouse: previous evaluations of one project/stage/service."""

from __future__ import annotations

from store.evaluations import EVALUATION_FINISHED, EVALUATION_INVALIDATED, previous_evaluations
from store.events import insert_event
from tests.store.factories import wire


async def evaluation(pool, id: str, seconds: float, result: str = "pass", **scope: str) -> None:
    event = wire(EVALUATION_FINISHED, id=id, seconds=seconds, triggeredid=f"t-{id}", result=result, **scope)
    assert await insert_event(pool, event)


async def ids(pool, results=None, limit=10, stage="dev") -> list[str]:
    events = await previous_evaluations(
        pool, project="sockshop", stage=stage, service="carts", results=results, limit=limit
    )
    return [event["id"] for event in events]


async def test_newest_first_and_limited(pool):
    for i in range(5):
        await evaluation(pool, f"e{i}", seconds=i)
    assert await ids(pool) == ["e4", "e3", "e2", "e1", "e0"]
    assert await ids(pool, limit=2) == ["e4", "e3"]
    assert await ids(pool, limit=0) == []


async def test_only_the_same_project_stage_and_service(pool):
    await evaluation(pool, "mine", 1)
    await evaluation(pool, "staging", 2, stage="staging")
    await evaluation(pool, "orders", 3, service="orders")
    await evaluation(pool, "other-project", 4, project="other")
    assert await ids(pool) == ["mine"]
    assert await ids(pool, stage="staging") == ["staging"]


async def test_filtered_by_overall_result(pool):
    await evaluation(pool, "p", 1, "pass")
    await evaluation(pool, "w", 2, "warning")
    await evaluation(pool, "f", 3, "fail")
    assert await ids(pool) == ["f", "w", "p"]
    assert await ids(pool, results=("pass",)) == ["p"]
    assert await ids(pool, results=("pass", "warning")) == ["w", "p"]


async def test_invalidated_evaluations_are_left_out(pool):
    await evaluation(pool, "kept", 1)
    await evaluation(pool, "dropped", 2)
    invalidation = wire(EVALUATION_INVALIDATED, seconds=3, triggeredid="t-dropped")
    assert await insert_event(pool, invalidation)
    # an invalidation of another task type does not count
    assert await insert_event(pool, wire("sh.keptn.event.test.invalidated", seconds=4, triggeredid="t-kept"))
    assert await ids(pool) == ["kept"]
