"""The DORA metrics over hand-written event histories: each rule of ``keptn.dora`` and its edges."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from keptn.dora import DoraEvent, DoraQuery, compute_dora, median, percentile

T0 = datetime(2026, 11, 1, tzinfo=UTC)
QUERY = DoraQuery(stage="prod", first_stage="dev", start=T0, end=T0 + timedelta(days=7))
_ids = itertools.count()


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def ev(event_type: str, hours: float, context: str = "c1", **fields: Any) -> DoraEvent:
    """An event ``hours`` after the window start, of service carts unless told."""
    fields.setdefault("service", "carts")
    short = event_type.split(".")
    if "stage" not in fields and len(short) == 3:  # <stage>.<sequence>.<kind>
        fields["stage"] = short[0]
    return DoraEvent(
        id=f"e{next(_ids)}",
        type=f"sh.keptn.event.{event_type}",
        time=at(hours),
        keptn_context=context,
        **fields,
    )


def deploy(
    hours: float, context: str = "c1", *, result: str = "pass", stage: str = "prod", **fields: Any
) -> DoraEvent:
    fields.setdefault("triggered_id", f"t-{context}-{hours}")
    return ev("deployment.finished", hours, context, stage=stage, result=result, **fields)


def problem(hours: float, state: str, context: str = "p1", **fields: Any) -> DoraEvent:
    fields.setdefault("service", "carts")
    return DoraEvent(
        id=f"e{next(_ids)}", type="sh.keptn.events.problem", time=at(hours), keptn_context=context,
        problem_state=state, **fields,
    )  # fmt: skip


def delivery(
    start: float, deployed: float, context: str, *, image: str = "carts:1", result: str = "pass"
) -> list[DoraEvent]:
    """A dev delivery at ``start`` chained into a prod delivery deploying at ``deployed``."""
    return [
        ev("dev.delivery.triggered", start, context, image=image),
        ev("dev.delivery.finished", start + 0.5, context, result="pass"),
        ev("prod.delivery.triggered", start + 0.5, context, image=image),
        deploy(deployed, context, image=image),
        ev("prod.delivery.finished", deployed + 0.1, context, result=result),
    ]


def test_no_events_gives_zeros_and_no_rates():
    report = compute_dora([], QUERY)
    m = report.overall
    assert (m.deployments, m.per_day, m.lead_times, m.failed_deployments, m.incidents) == (0, 0, 0, 0, 0)
    assert m.change_failure_rate is None
    assert m.lead_time_median is m.lead_time_p90 is m.time_to_restore_median is None
    assert len(m.days) == 7 and all(d.deployments == 0 for d in m.days)
    assert report.services == {}


def test_frequency_counts_passing_and_warning_deployments_in_the_stage_once_per_trigger():
    events = [
        deploy(1, "a"),
        deploy(2, "b", result="warning"),
        deploy(3, "c", result="fail"),  # not a deployment
        deploy(4, "d", stage="dev"),  # another stage
        deploy(25, "e", triggered_id="same"),
        deploy(25.1, "e", triggered_id="same"),  # a second answer to the same deployment.triggered
        deploy(-1, "f"),  # before the window
        deploy(7 * 24, "g"),  # at the end: outside
    ]
    m = compute_dora(events, QUERY).overall
    assert m.deployments == 3
    assert m.per_day == pytest.approx(3 / 7)
    assert m.per_week == pytest.approx(3)
    assert [(d.day, d.deployments) for d in m.days[:3]] == [
        (date(2026, 11, 1), 2),
        (date(2026, 11, 2), 1),
        (date(2026, 11, 3), 0),
    ]


def test_lead_time_runs_from_the_first_stage_trigger_of_the_context():
    events = [*delivery(0, 2, "a"), *delivery(10, 11, "b"), *delivery(20, 30, "c")]
    m = compute_dora(events, QUERY).overall
    assert m.lead_times == 3
    assert m.lead_time_median == timedelta(hours=2)
    assert m.lead_time_p90 == timedelta(hours=10)  # nearest rank: the 3rd of 3


def test_lead_time_of_a_direct_trigger_in_the_target_stage_starts_there():
    events = [ev("prod.delivery.triggered", 5, "a"), deploy(6, "a")]
    assert compute_dora(events, QUERY).overall.lead_time_median == timedelta(hours=1)


def test_lead_time_follows_the_image_across_contexts_since_the_previous_deployment():
    events = [
        *delivery(0, 1, "a", image="carts:1"),
        # carts:2 first tried at 5 (failed in dev), then delivered again from 8 in a new context
        ev("dev.delivery.triggered", 5, "b", image="carts:2"),
        ev("dev.delivery.finished", 6, "b", result="fail"),
        *delivery(8, 9, "c", image="carts:2"),
        # an image reused as a tag: only triggers after the previous prod deployment count
        ev("dev.delivery.triggered", 0.5, "z", image="carts:1"),
        *delivery(20, 21, "d", image="carts:1"),
    ]
    m = compute_dora(events, QUERY).overall
    assert m.deployments == 3
    # a: 1 h; c: from 5 to 9 = 4 h; d: 21 - 20 = 1 h (the trigger at 0.5 predates deployment a)
    assert m.lead_time_median == timedelta(hours=1)
    assert m.lead_time_p90 == timedelta(hours=4)


def test_a_deployment_without_a_known_start_has_no_lead_time():
    m = compute_dora([deploy(3, "orphan")], QUERY).overall
    assert (m.deployments, m.lead_times, m.lead_time_median) == (1, 0, None)


def test_a_failed_sequence_or_task_after_the_deployment_fails_the_change():
    events = [
        *delivery(0, 1, "ok"),
        *delivery(2, 3, "seq", result="fail"),
        *delivery(4, 5, "warn", result="warning"),
        *delivery(6, 7, "eval"),
        ev("evaluation.finished", 7.05, "eval", stage="prod", result="fail"),  # before its sequence ended
        ev("test.finished", 9.05, "test", stage="dev", result="fail"),  # other stage: ignored
        *delivery(8, 9, "test"),
    ]
    m = compute_dora(events, QUERY).overall
    assert m.deployments == 5
    assert m.failed_deployments == 2
    assert m.change_failure_rate == pytest.approx(2 / 5)


def test_an_evaluation_failing_after_the_sequence_ended_is_not_the_deployments():
    events = [*delivery(0, 1, "a"), ev("evaluation.finished", 5, "a", stage="prod", result="fail")]
    assert compute_dora(events, QUERY).overall.failed_deployments == 0


@pytest.mark.parametrize(
    ("signal", "failed"),
    [
        (lambda: ev("prod.rollback.triggered", 1.5, "a"), 1),
        (lambda: ev("rollback.triggered", 1.5, "a", stage="prod"), 1),
        (lambda: ev("prod.remediation.triggered", 20, "r"), 1),
        (lambda: problem(20, "OPEN"), 1),
        (lambda: problem(20, "OPEN", stage="dev"), 0),  # a problem elsewhere
        (lambda: problem(20, "RESOLVED"), 0),
        (lambda: ev("prod.remediation.triggered", 30, "r"), 0),  # after the failure window
        (lambda: ev("prod.remediation.triggered", 20, "r", service="orders"), 0),
        (lambda: ev("dev.rollback.triggered", 1.5, "a"), 0),
    ],
)
def test_rollbacks_remediations_and_problems_within_the_window_fail_the_change(signal, failed):
    events = [*delivery(0, 1, "a"), signal()]
    assert compute_dora(events, QUERY).overall.failed_deployments == failed


def test_a_later_problem_is_blamed_on_the_newest_deployment_only():
    events = [*delivery(0, 1, "a"), *delivery(2, 3, "b"), ev("prod.remediation.triggered", 4, "r")]
    m = compute_dora(events, QUERY).overall
    assert (m.deployments, m.failed_deployments) == (2, 1)


def test_failure_window_is_the_querys():
    events = [*delivery(0, 1, "a"), problem(4, "OPEN")]
    short = DoraQuery(**{**QUERY.__dict__, "failure_window": timedelta(hours=2)})
    assert compute_dora(events, short).overall.failed_deployments == 0
    assert compute_dora(events, QUERY).overall.failed_deployments == 1


def test_time_to_restore_of_remediation_loops_and_problem_events():
    events = [
        # loop r1: the first iteration fails, the second passes 3 h after the trigger
        ev("prod.remediation.triggered", 10, "r1"),
        ev("prod.remediation.finished", 11, "r1", result="fail"),
        ev("prod.remediation.triggered", 11, "r1"),
        ev("prod.remediation.finished", 13, "r1", result="pass"),
        # a problem opened and closed by the monitoring tool: 1 h
        problem(20, "OPEN", "p1"),
        problem(21, "CLOSED", "p1"),
        # a loop aborted by an operator restores nothing; still open at the end
        ev("prod.remediation.triggered", 30, "r2", service="orders"),
        ev("prod.remediation.finished", 31, "r2", service="orders", result="pass", status="aborted"),
        # a remediation in another stage is not an incident here
        ev("dev.remediation.triggered", 40, "r3"),
    ]
    report = compute_dora(events, QUERY)
    m = report.overall
    assert (m.incidents, m.restored) == (3, 2)
    assert m.time_to_restore_median == timedelta(hours=2)  # median of 3 h and 1 h
    assert report.services["orders"].incidents == 1
    assert report.services["orders"].time_to_restore_median is None


def test_a_resolved_problem_restores_the_services_open_loops():
    events = [
        ev("prod.remediation.triggered", 10, "r1"),
        ev("prod.remediation.finished", 11, "r1", result="fail"),  # actions exhausted
        problem(15, "RESOLVED", "other", stage="prod"),
    ]
    m = compute_dora(events, QUERY).overall
    assert (m.incidents, m.restored, m.time_to_restore_median) == (1, 1, timedelta(hours=5))


def test_incidents_count_by_opening_and_restore_only_before_the_end():
    events = [
        ev("prod.remediation.triggered", -5, "before"),  # opened before the window
        ev("prod.remediation.finished", 1, "before", result="pass"),
        ev("prod.remediation.triggered", 7 * 24 - 1, "late"),
        ev("prod.remediation.finished", 7 * 24 + 1, "late", result="pass"),  # after the end
    ]
    m = compute_dora(events, QUERY).overall
    assert (m.incidents, m.restored, m.time_to_restore_median) == (1, 0, None)


def test_services_are_reported_apart_and_a_service_query_keeps_one():
    events = [
        *delivery(0, 1, "a"),
        ev("dev.delivery.triggered", 2, "b", service="orders", image="orders:1"),
        deploy(5, "b", service="orders", image="orders:1"),
        ev("prod.rollback.triggered", 5.5, "b", service="orders"),
    ]
    report = compute_dora(events, QUERY)
    assert report.overall.deployments == 2
    assert report.overall.change_failure_rate == pytest.approx(0.5)
    assert sorted(report.services) == ["carts", "orders"]
    assert report.services["orders"].lead_time_median == timedelta(hours=3)
    assert report.services["carts"].failed_deployments == 0
    only = compute_dora(events, DoraQuery(**{**QUERY.__dict__, "service": "orders"}))
    assert (only.overall.deployments, only.overall.failed_deployments) == (1, 1)
    assert list(only.services) == ["orders"]


def test_other_target_stages():
    events = [*delivery(0, 1, "a"), deploy(0.2, "a", stage="dev", triggered_id="dev-a")]
    staging = DoraQuery(**{**QUERY.__dict__, "stage": "dev"})
    m = compute_dora(events, staging).overall
    assert (m.deployments, m.lead_time_median) == (1, timedelta(hours=0.2))


def test_percentiles():
    hours = [timedelta(hours=h) for h in (5, 1, 3, 2, 4, 6, 7, 8, 9, 10)]
    assert median(hours) == timedelta(hours=5.5)
    assert percentile(hours, 0.9) == timedelta(hours=9)
    assert percentile(hours[:1], 0.9) == timedelta(hours=5)
    assert percentile([], 0.9) is None and median([]) is None
