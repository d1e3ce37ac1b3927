"""The built-in approval service through the real stack: automatic, by event, by workflow update."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from capstan.devserver import temporal_cli
from tests.keptn_schemas import assert_matches_event_schema
from tests.workflows.stack import Stack, running_stack
from workflows.context_models import APPROVE_UPDATE, ApprovalDecision, ApprovalState, context_workflow_id

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: approvals}
spec:
  stages:
    - name: prod
      sequences:
        - name: manual
          tasks: [{name: deployment}, {name: approval}, {name: release}]
        - name: automatic
          tasks:
            - {name: deployment}
            - {name: approval, properties: {pass: automatic, warning: manual}}
            - {name: release}
        - name: first
          tasks: [{name: approval, properties: {pass: automatic, warning: automatic}}, {name: release}]
        - name: two-approvers
          tasks: [{name: approval, properties: {pass: manual, approvers: 2}}, {name: release}]
"""

STARTED = "sh.keptn.event.approval.started"
FINISHED = "sh.keptn.event.approval.finished"


@pytest_asyncio.fixture
async def stack(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    async with running_stack(db_url, pool, temporal_env.client, builtin=True) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        yield running


async def deployed(stack: Stack, sequence: str, **data: Any) -> tuple[str, dict[str, Any]]:
    """Trigger ``prod.<sequence>``, pass its deployment, return the context and the open approval."""
    context = await stack.trigger(stack.project, "prod", sequence, "carts", **data)
    if sequence in ("manual", "automatic"):
        await stack.answer(await stack.next_triggered("deployment", project=stack.project))
    approval = await stack.next_triggered("approval", project=stack.project)
    assert approval["shkeptncontext"] == context
    return context, approval


async def execution_state(stack: Stack, context: str, within: float = 10) -> str:
    """The sequence execution's state once it is no longer ``started`` (written asynchronously)."""
    deadline = time.monotonic() + within
    while True:
        response = await stack.api.get(
            "/api/controlPlane/v1/sequence-execution",
            params={"project": stack.project, "keptnContext": context},
        )
        state: str = response.json()["SequenceExecutions"][0]["status"]["state"]
        if state != "started" or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.05)


async def approval_answers(stack: Stack, context: str) -> list[dict[str, Any]]:
    return [e for e in await stack.events(context) if e["type"] in (STARTED, FINISHED)]


async def test_a_passing_result_is_approved_automatically(stack: Stack):
    context = await stack.trigger(stack.project, "prod", "automatic", "carts")
    await stack.answer(await stack.next_triggered("deployment", project=stack.project))
    await stack.answer(await stack.next_triggered("release", project=stack.project))
    finished = await stack.finished(context, "prod", "automatic")
    assert finished["data"]["result"] == "pass"
    started, done = await approval_answers(stack, context)
    assert (started["source"], done["source"]) == ("approval-service", "approval-service")
    assert started["data"]["message"] == "Approval strategy for result 'pass': automatic"
    assert (done["data"]["result"], done["data"]["status"]) == ("pass", "succeeded")
    assert_matches_event_schema(done)


async def test_a_failed_result_is_declined_automatically(stack: Stack):
    context = await stack.trigger(stack.project, "prod", "first", "carts", result="fail")
    finished = await stack.finished(context, "prod", "first")
    assert finished["data"]["result"] == "fail"
    _, done = await approval_answers(stack, context)
    assert done["data"]["result"] == "fail"
    assert await stack.open_triggered("release", project=stack.project) == []


async def test_a_manual_approval_waits_and_does_not_hold_the_queue(stack: Stack):
    context, approval = await deployed(stack, "manual")
    response = await stack.api.get(
        f"/api/controlPlane/v1/sequence/{stack.project}", params={"keptnContext": context}
    )
    assert response.json()["states"][0]["stages"][0]["state"] == "triggered"
    assert await execution_state(stack, context) == "waitingForApproval"
    # another sequence of the same service runs meanwhile: the approval holds no slot
    other = await stack.trigger(stack.project, "prod", "automatic", "carts")
    await stack.answer(await stack.next_triggered("deployment", project=stack.project))
    await stack.answer(await stack.next_triggered("release", project=stack.project))
    assert (await stack.finished(other, "prod", "automatic"))["data"]["result"] == "pass"
    [started] = [e for e in await approval_answers(stack, context) if e["type"] == STARTED]
    assert started["data"]["message"] == "Approval strategy for result 'pass': manual"
    assert [e["id"] for e in await stack.open_triggered("approval", project=stack.project)] == [
        approval["id"]
    ]


async def test_a_human_approves_keptns_way_with_an_event(stack: Stack):
    context, approval = await deployed(stack, "manual")
    await stack.answer(approval, source="alice", started=False, approval={"user": "alice", "message": "ok"})
    await stack.answer(await stack.next_triggered("release", project=stack.project))
    assert (await stack.finished(context, "prod", "manual"))["data"]["result"] == "pass"
    finished = [e for e in await approval_answers(stack, context) if e["type"] == FINISHED]
    assert [e["source"] for e in finished] == ["alice"]  # the human's event is the task's .finished


async def test_a_human_declines_with_an_event_and_the_sequence_fails(stack: Stack):
    context, approval = await deployed(stack, "manual")
    await stack.answer(approval, source="bob", started=False, result="fail")
    finished = await stack.finished(context, "prod", "manual")
    assert finished["data"]["result"] == "fail"
    assert await stack.open_triggered("release", project=stack.project) == []


async def test_an_operator_approves_with_the_approve_update(stack: Stack):
    context, approval = await deployed(stack, "manual")
    handle = stack.client.get_workflow_handle(context_workflow_id(stack.project, context))
    decision = ApprovalDecision(approved=True, user="carol", message="ship it")  # the only open one
    state = await handle.execute_update(APPROVE_UPDATE, decision, result_type=ApprovalState)
    assert state == ApprovalState(
        triggeredid=approval["id"], decision="approved", approvers=["carol"], required=1
    )
    release = await stack.next_triggered("release", project=stack.project)

    # the approval is decided (the sequence waits for its release): a second decision is refused
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            APPROVE_UPDATE, ApprovalDecision(triggeredid=approval["id"], approved=False, user="dave")
        )
    assert "is not open" in str(refused.value.cause)

    await stack.answer(release)
    assert (await stack.finished(context, "prod", "manual"))["data"]["result"] == "pass"
    done = [e for e in await approval_answers(stack, context) if e["type"] == FINISHED][0]
    assert done["source"] == "approval-service"
    assert done["data"]["result"] == "pass"
    assert done["data"]["approval"]["approvers"] == [
        {"user": "carol", "approved": True, "message": "ship it"}
    ]


async def temporal_update(address: str, workflow_id: str, body: dict[str, Any]) -> tuple[int, str, str]:
    """``temporal workflow update execute``: plain JSON input, as the Web UI sends it."""
    process = await asyncio.create_subprocess_exec(
        temporal_cli(),
        "workflow",
        "update",
        "execute",
        "--address",
        address,
        "--workflow-id",
        workflow_id,
        "--name",
        APPROVE_UPDATE,
        "--input",
        json.dumps(body),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_the_temporal_cli_sends_the_update_as_the_web_ui_does(
    stack: Stack, temporal_env: WorkflowEnvironment
):
    context, approval = await deployed(stack, "manual")
    address = temporal_env.client.service_client.config.target_host
    workflow_id = context_workflow_id(stack.project, context)

    code, _, err = await temporal_update(address, workflow_id, {"approved": True})
    assert code != 0 and "user" in err  # a decision must say who decides

    body = {"triggeredid": approval["id"], "approved": False, "user": "erin", "message": "not today"}
    code, out, err = await temporal_update(address, workflow_id, body)
    assert code == 0, err
    assert "declined" in out
    finished = await stack.finished(context, "prod", "manual")
    assert finished["data"]["result"] == "fail"


async def test_an_update_for_an_unknown_approval_is_refused_with_the_open_ones(stack: Stack):
    context, approval = await deployed(stack, "manual")
    handle = stack.client.get_workflow_handle(context_workflow_id(stack.project, context))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            APPROVE_UPDATE, ApprovalDecision(triggeredid="nope", approved=True, user="x")
        )
    message = str(refused.value.cause)
    assert "approval 'nope' is not open" in message and approval["id"] in message


async def test_two_approvers_are_needed_and_each_counts_once(stack: Stack):
    context, approval = await deployed(stack, "two-approvers")
    handle = stack.client.get_workflow_handle(context_workflow_id(stack.project, context))
    first = await handle.execute_update(
        APPROVE_UPDATE, ApprovalDecision(approved=True, user="alice"), result_type=ApprovalState
    )
    assert (first.decision, first.approvers, first.required) == ("waiting", ["alice"], 2)
    with pytest.raises(WorkflowUpdateFailedError) as twice:
        await handle.execute_update(APPROVE_UPDATE, ApprovalDecision(approved=True, user="alice"))
    assert "already decided" in str(twice.value.cause)
    # the second approver answers Keptn's way: a vote, not yet the task's end
    await stack.answer(
        approval, source="capstan-cli", started=False, approval={"user": "bob", "message": "+1"}
    )
    await stack.answer(await stack.next_triggered("release", project=stack.project))
    assert (await stack.finished(context, "prod", "two-approvers"))["data"]["result"] == "pass"
    done = [e for e in await approval_answers(stack, context) if e["source"] == "approval-service"][-1]
    assert done["type"] == FINISHED
    assert [v["user"] for v in done["data"]["approval"]["approvers"]] == ["alice", "bob"]
    assert done["data"]["message"] == "approved by alice, bob"
