"""The current workflows replay every history recorded from earlier versions without nondeterminism.

The histories under ``histories/<revision>/`` were recorded by ``scripts/record-histories
<revision>`` from that version's worker (delivery with evaluation and a manual approval, a
sequence queued behind another of the same service, remediation, a task answered by a webhook;
see ``record.py``). A workflow
change that alters the commands an old history expects, without ``workflow.patched``, fails here
before it can wedge the running workflows of an upgraded installation (docs/deployment.md).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowReplayResults, WorkflowRunner

from workflows.context import REAP_WHILE_WAITING_PATCH
from workflows.registry import ALL_WORKFLOWS
from workflows.sequence_run import BUILTIN_APPROVAL_PATCH, BUILTIN_GET_ACTION_PATCH, BUILTIN_LIGHTHOUSE_PATCH

HISTORIES = Path(__file__).parent / "histories"


def _histories() -> list[WorkflowHistory]:
    # the workflow id is not in a history: the file name (revision/type-id-run) stands in for it
    return [
        WorkflowHistory.from_json(f"{path.parent.name}/{path.stem}", path.read_text())
        for path in sorted(HISTORIES.glob("*/*.json"))
    ]


def _type(history: WorkflowHistory) -> str:
    name: str = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
    return name


def _patches(history: WorkflowHistory) -> set[str]:
    """The ids of the ``workflow.patched`` markers a history recorded."""
    found = set()
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):
            for payload in event.marker_recorded_event_attributes.details["patch-data"].payloads:
                found.add(json.loads(payload.data)["id"])
    return found


async def _replay(
    histories: list[WorkflowHistory], runner: WorkflowRunner | None = None
) -> WorkflowReplayResults:
    replayer = (
        Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
        if runner is None
        else Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=runner)
    )

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    return await replayer.replay_workflows(each(), raise_on_replay_failure=False)


def test_histories_of_every_scenario_are_recorded() -> None:
    histories = _histories()
    types = {_type(h) for h in histories}
    assert {"KeptnContext", "QueueLockWorkflow"} <= types, types
    text = "".join(h.to_json() for h in histories)
    for activity in ("prepare_evaluation", "choose_action", "run_webhook", "request_lock", "push_targets"):
        assert f'"{activity}"' in text, f"no recorded history runs {activity}"


async def test_current_workflows_replay_recorded_histories() -> None:
    histories = _histories()
    results = await _replay(histories)
    failures = {run: str(failure) for run, failure in results.replay_failures.items()}
    assert not failures, failures
    assert len(histories) >= 9


async def test_replay_fails_when_recorded_commands_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proof that the test above can fail.

    The built-in services (lighthouse, approval, get-action) are behind ``workflow.patched``
    markers that these histories carry. Taking their old branch (what a worker without them would
    run) stops issuing the activities and timers those services recorded, so the replay of every
    context that ran one of them must fail with a nondeterminism error (the notify context, which
    ran none, replays either way).
    """
    builtin = {BUILTIN_LIGHTHOUSE_PATCH, BUILTIN_APPROVAL_PATCH, BUILTIN_GET_ACTION_PATCH}
    patched = workflow.patched
    monkeypatch.setattr(workflow, "patched", lambda patch_id: patch_id not in builtin and patched(patch_id))
    histories = [h for h in _histories() if _patches(h) & builtin]
    assert len(histories) >= 4  # the deliveries (evaluation, approval) and the remediation (get-action)
    # unsandboxed: the workflow code then calls the monkeypatched module attribute for certain
    results = await _replay(histories, UnsandboxedWorkflowRunner())
    failures = {run: str(failure) for run, failure in results.replay_failures.items()}
    assert len(failures) == len(histories), failures
    assert all("nondetermin" in text.lower() for text in failures.values()), failures


async def test_contexts_with_the_reap_fix_do_not_replay_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Contexts recorded with the fix (here: ``prod`` and ``prod-eu`` side by side, then ended)
    cannot be replayed by code that does not take the patched branch: a worker must not be rolled
    back past a ``workflow.patched`` while such contexts run (docs/deployment.md). That the fix
    itself is needed is shown by tests/workflows/test_context_delivery.py, which fails without it.
    """
    patched = workflow.patched
    monkeypatch.setattr(
        workflow, "patched", lambda patch_id: patch_id != REAP_WHILE_WAITING_PATCH and patched(patch_id)
    )
    histories = [
        h for h in _histories() if REAP_WHILE_WAITING_PATCH in _patches(h) and "prod-eu" in h.to_json()
    ]
    assert len(histories) >= 3  # the carts delivery and the two orders deliveries
    results = await _replay(histories, UnsandboxedWorkflowRunner())
    failures = {run: str(failure) for run, failure in results.replay_failures.items()}
    assert len(failures) == len(histories), failures
