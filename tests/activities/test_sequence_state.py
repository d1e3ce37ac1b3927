from datetime import timedelta

import pytest
from temporalio.testing import ActivityEnvironment

from activities.sequence_state import RecordSequenceResult, SequenceStateActivities
from activities.sequence_state_models import (
    CurrentTaskSnapshot,
    PreviousTaskSnapshot,
    SequenceExecutionUpdate,
    TaskEventSnapshot,
)
from store import projects
from store.sequence_states import StateQuery, get_sequence_states
from store.sequences import ExecutionQuery, query_executions
from tests.store.factories import BASE_TIME, shipyard


@pytest.fixture
async def project(pool):
    await projects.create_project(pool, "sockshop", shipyard())


def update(state: str = "started", *, updated: int = 1, project: str = "sockshop") -> SequenceExecutionUpdate:
    return SequenceExecutionUpdate(
        triggered_id="t-1",
        keptn_context="ctx-1",
        project=project,
        stage="dev",
        service="carts",
        sequence="delivery",
        state=state,
        triggered_at=BASE_TIME,
        updated_at=BASE_TIME + timedelta(seconds=updated),
        tasks=["deployment", "release"],
        current_task=CurrentTaskSnapshot(
            name="release",
            triggeredID="r-1",
            events=[TaskEventSnapshot(eventType="sh.keptn.event.release.started", source="helm", time="t")],
        ),
        previous_tasks=[
            PreviousTaskSnapshot(name="deployment", triggeredID="d-1", result="pass", status="succeeded")
        ],
        input_properties={"configurationChange": {"values": {"image": "carts:1"}}},
        gitcommitid="c0ffee",
    )


async def test_record_sequence_stores_the_picture_and_the_context_state(pool, project):
    record = SequenceStateActivities(pool).record_sequence
    env = ActivityEnvironment()
    assert await env.run(record, update()) == RecordSequenceResult(stored=True)
    # a retry of the same picture is harmless
    assert await env.run(record, update()) == RecordSequenceResult(stored=True)
    (stored,) = (await query_executions(pool, ExecutionQuery(project="sockshop"))).executions
    assert stored.model_dump() == update().model_dump(mode="python")
    (state,) = (await get_sequence_states(pool, StateQuery(project="sockshop"))).states
    assert (state.state, [s.state for s in state.stages]) == ("started", ["triggered"])


async def test_an_older_picture_cannot_roll_the_state_back(pool, project):
    record = SequenceStateActivities(pool).record_sequence
    env = ActivityEnvironment()
    assert await env.run(record, update("finished", updated=9)) == RecordSequenceResult(stored=True)
    assert await env.run(record, update("started", updated=2)) == RecordSequenceResult(stored=False)
    (state,) = (await get_sequence_states(pool, StateQuery(project="sockshop"))).states
    assert state.state == "finished"


async def test_a_deleted_project_is_skipped_without_failing(pool):
    result = await ActivityEnvironment().run(
        SequenceStateActivities(pool).record_sequence, update(project="gone")
    )
    assert result == RecordSequenceResult(stored=False)


async def test_registered_under_its_name(pool, temporal_client):
    import httpx

    from activities.registry import build_activities

    async with httpx.AsyncClient() as http:
        activities = build_activities(pool, http, client=temporal_client, task_queue="q")
    names = [fn.__temporal_activity_definition.name for fn in activities]  # type: ignore[attr-defined]
    assert "record_sequence" in names
