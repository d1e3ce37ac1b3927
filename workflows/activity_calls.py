"""Every activity call the context workflow makes, each with its timeout and retry policy.

Store writes retry without limit (backing off to 30 s): an event the workflow emits must not be
lost while PostgreSQL restarts, and the sequence simply waits. Push deliveries are bounded by the
delivery activities' own options, so a dead integration cannot hold anything up.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.delivery import (
        PUSH_EVENT_ACTIVITY,
        PUSH_EVENT_OPTIONS,
        PUSH_TARGETS_ACTIVITY,
        PUSH_TARGETS_OPTIONS,
        PushEventInput,
        PushTarget,
        PushTargets,
        PushTargetsInput,
    )
    from activities.lighthouse import (
        PREPARE_EVALUATION_ACTIVITY,
        SCORE_EVALUATION_ACTIVITY,
        EvaluationData,
        PreparedEvaluation,
        PrepareEvaluationInput,
        ScoreEvaluationInput,
    )
    from activities.remediation import CHOOSE_ACTION_ACTIVITY, ChooseActionInput, ChooseActionResult
    from activities.sequence import (
        CLOSE_TASKS_ACTIVITY,
        EMIT_EVENT_ACTIVITY,
        LOAD_SHIPYARD_ACTIVITY,
        CloseTasksInput,
        CloseTasksResult,
        EmitEventInput,
        EmitResult,
        LoadShipyardInput,
        ShipyardSnapshot,
    )
    from activities.sequence_state_models import SequenceExecutionUpdate
    from activities.sli_provider_models import FETCH_SLIS_ACTIVITY, FetchSLIsInput, FetchSLIsResult
    from activities.webhook_models import RUN_WEBHOOK_ACTIVITY, RunWebhookInput, WebhookAnswer, WebhookOutcome

STORE_TIMEOUT = timedelta(seconds=10)
"""Store writes take milliseconds; this is also how long an attempt on a killed worker blocks
before it is retried elsewhere."""
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,  # unlimited: the write must happen eventually
    non_retryable_error_types=[
        "InvalidInputError",
        "InvalidEventError",
        "ProjectNotFound",
        "InvalidShipyard",
    ],
)
RECORD_SEQUENCE_ACTIVITY = "record_sequence"
FETCH_SLIS_TIMEOUT = timedelta(minutes=5)
"""A built-in provider runs its queries concurrently, each bounded by ``CAPSTAN_SLI_QUERY_TIMEOUT``."""
WEBHOOK_TIMEOUT = timedelta(minutes=10)
"""A webhook's requests run one after the other, each bounded by ``CAPSTAN_WEBHOOK_TIMEOUT``."""
WEBHOOK_HEARTBEAT = timedelta(seconds=30)
WEBHOOK_RETRY = RetryPolicy(maximum_attempts=2, non_retryable_error_types=["InvalidInputError"])
"""One retry, for a worker lost mid-webhook: its requests may then be sent twice (at least once)."""
FETCH_SLIS_HEARTBEAT = timedelta(seconds=10)
"""``fetch_slis`` heartbeats every 2 s: a dead worker's fetch is retried after 10 s, not 5 min."""
FETCH_SLIS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=3,
    non_retryable_error_types=["InvalidInputError"],
)


async def load_shipyard(project: str, stage: str) -> ShipyardSnapshot:
    """The project's shipyard and the stage's latest resource version."""
    snapshot: ShipyardSnapshot = await workflow.execute_activity(
        LOAD_SHIPYARD_ACTIVITY,
        LoadShipyardInput(project=project, stage=stage),
        result_type=ShipyardSnapshot,
        start_to_close_timeout=STORE_TIMEOUT,
        retry_policy=STORE_RETRY,
        summary=f"shipyard of {project}/{stage}",
    )
    return snapshot


async def emit_event(
    event: dict[str, Any], *, open_task: bool = False, with_targets: bool = False
) -> EmitResult:
    """Store an event the workflow emits (and list a task ``.triggered`` as open).

    With ``with_targets`` the result also carries the event's push targets, for :func:`push`.
    """
    result: EmitResult = await workflow.execute_activity(
        EMIT_EVENT_ACTIVITY,
        EmitEventInput(event=event, open_task=open_task, with_targets=with_targets),
        result_type=EmitResult,
        start_to_close_timeout=STORE_TIMEOUT,
        retry_policy=STORE_RETRY,
        summary=str(event.get("type", "")),
    )
    return result


async def close_tasks(triggered_ids: list[str]) -> None:
    """Stop listing task ``.triggered`` events as open."""
    await workflow.execute_activity(
        CLOSE_TASKS_ACTIVITY,
        CloseTasksInput(triggered_ids=triggered_ids),
        result_type=CloseTasksResult,
        start_to_close_timeout=STORE_TIMEOUT,
        retry_policy=STORE_RETRY,
    )


async def record_sequence(update: SequenceExecutionUpdate) -> None:
    """Store the current picture of a sequence execution for the API's views."""
    await workflow.execute_activity(
        RECORD_SEQUENCE_ACTIVITY,
        update,
        start_to_close_timeout=STORE_TIMEOUT,
        retry_policy=STORE_RETRY,
        summary=f"{update.stage}.{update.sequence}: {update.state}",
    )


async def push(event: dict[str, Any], targets: list[PushTarget] | None = None) -> list[WebhookAnswer]:
    """Deliver an event to every subscription that matches it, concurrently.

    Push subscriptions get the event POSTed (``push_event``); subscriptions of the built-in
    webhook service run their webhook (``run_webhook``). Each is its own activity with bounded
    retries; a failed delivery is logged, never raised, because one broken integration must not
    fail the sequence (pull clients still see open ``.triggered`` events).

    Args:
        event: the stored wire event.
        targets: its targets if already known (``emit_event`` with ``with_targets``); None to
            look them up with the ``push_targets`` activity.

    Returns:
        The webhook service's answers to a ``.triggered`` event (``.started``/``.finished``), for
        the caller to emit; empty for anything else.
    """
    if targets is None:
        try:
            found = await workflow.execute_activity(
                PUSH_TARGETS_ACTIVITY,
                PushTargetsInput(event=event),
                result_type=PushTargets,
                **PUSH_TARGETS_OPTIONS,
            )
        except ActivityError as err:
            workflow.logger.warning("no push targets for %s: %s", event.get("id"), err)
            return []
        targets = found.targets
    if not targets:
        return []
    handles = [_deliver(event, target) for target in targets]
    answers: list[WebhookAnswer] = []
    for target, handle in zip(targets, handles, strict=True):
        try:
            outcome = await handle
        except ActivityError as err:  # its retries are spent; nothing more to do here
            workflow.logger.warning(
                "delivery of %s to %s failed: %s", event.get("id"), target.integration_name, err
            )
            continue
        if isinstance(outcome, WebhookOutcome):
            answers += outcome.answers
    return answers


def _deliver(event: dict[str, Any], target: PushTarget) -> Any:
    """Start the activity that delivers an event to one target."""
    if target.kind == "webhook":
        return workflow.start_activity(
            RUN_WEBHOOK_ACTIVITY,
            RunWebhookInput(event=event, subscription_id=target.subscription_id),
            result_type=WebhookOutcome,
            start_to_close_timeout=WEBHOOK_TIMEOUT,
            heartbeat_timeout=WEBHOOK_HEARTBEAT,
            retry_policy=WEBHOOK_RETRY,
            summary=f"webhook of subscription {target.subscription_id} for {event.get('type')}",
        )
    return workflow.start_activity(
        PUSH_EVENT_ACTIVITY,
        PushEventInput(event=event, target=target),
        summary=f"push {event.get('type')} to {target.integration_name}",
        **PUSH_EVENT_OPTIONS,
    )


async def prepare_evaluation(event: dict[str, Any]) -> PreparedEvaluation:
    """What an ``evaluation.triggered`` asks its SLI provider, or how it ends without asking."""
    prepared: PreparedEvaluation = await workflow.execute_activity(
        PREPARE_EVALUATION_ACTIVITY,
        PrepareEvaluationInput(event=event),
        result_type=PreparedEvaluation,
        start_to_close_timeout=STORE_TIMEOUT,
        retry_policy=STORE_RETRY,
        summary="evaluation: window, slo.yaml, SLI provider",
    )
    return prepared


async def score_evaluation(input: ScoreEvaluationInput) -> EvaluationData:
    """Score the SLI values against the SLO and the previous evaluations."""
    scored: EvaluationData = await workflow.execute_activity(
        SCORE_EVALUATION_ACTIVITY,
        input,
        result_type=EvaluationData,
        start_to_close_timeout=STORE_TIMEOUT,
        retry_policy=STORE_RETRY,
        summary="evaluation: scoring",
    )
    return scored


async def fetch_slis(provider: str, event: dict[str, Any]) -> FetchSLIsResult:
    """Ask a built-in SLI provider for the values a ``get-sli.triggered`` requests."""
    result: FetchSLIsResult = await workflow.execute_activity(
        FETCH_SLIS_ACTIVITY,
        FetchSLIsInput(provider=provider, event=event),
        result_type=FetchSLIsResult,
        start_to_close_timeout=FETCH_SLIS_TIMEOUT,
        heartbeat_timeout=FETCH_SLIS_HEARTBEAT,
        retry_policy=FETCH_SLIS_RETRY,
        summary=f"get-sli from built-in {provider}",
    )
    return result


async def choose_action(event: dict[str, Any]) -> ChooseActionResult:
    """The next remediation action a ``get-action.triggered`` asks for."""
    chosen: ChooseActionResult = await workflow.execute_activity(
        CHOOSE_ACTION_ACTIVITY,
        ChooseActionInput(event=event),
        result_type=ChooseActionResult,
        start_to_close_timeout=STORE_TIMEOUT,
        retry_policy=STORE_RETRY,
        summary="get-action: remediation.yaml",
    )
    return chosen
