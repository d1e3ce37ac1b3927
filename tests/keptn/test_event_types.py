"""Event types: 5 parts = task event, 6 parts = sequence event, status.changed understood."""

from __future__ import annotations

import pytest

from keptn.errors import InvalidEventError
from keptn.event_types import (
    ERROR_LOG_EVENT_TYPE,
    KEPTN_EVENT_PREFIX,
    MONITORING_CONFIGURE_EVENT_TYPE,
    PROBLEM_EVENT_TYPE,
    EventKind,
    SequenceEventType,
    TaskEventType,
    maybe_parse_event_type,
    parse_event_type,
    sequence_event_type,
    task_event_type,
)


def test_constants():
    assert KEPTN_EVENT_PREFIX == "sh.keptn.event."
    assert MONITORING_CONFIGURE_EVENT_TYPE == "sh.keptn.event.monitoring.configure"
    assert ERROR_LOG_EVENT_TYPE == "sh.keptn.log.error"
    assert PROBLEM_EVENT_TYPE == "sh.keptn.events.problem"
    assert [kind.value for kind in EventKind] == [
        "triggered",
        "started",
        "status.changed",
        "finished",
        "invalidated",
    ]


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        ("sh.keptn.event.deployment.triggered", TaskEventType("deployment", EventKind.TRIGGERED)),
        ("sh.keptn.event.get-sli.started", TaskEventType("get-sli", EventKind.STARTED)),
        ("sh.keptn.event.evaluation.invalidated", TaskEventType("evaluation", EventKind.INVALIDATED)),
        ("sh.keptn.event.my_task.finished", TaskEventType("my_task", EventKind.FINISHED)),
        # 6 parts, but a task event: Keptn's helpers call it a sequence type with action "changed"
        ("sh.keptn.event.deployment.status.changed", TaskEventType("deployment", EventKind.STATUS_CHANGED)),
        ("sh.keptn.event.dev.delivery.triggered", SequenceEventType("dev", "delivery", EventKind.TRIGGERED)),
        ("sh.keptn.event.dev.delivery.finished", SequenceEventType("dev", "delivery", EventKind.FINISHED)),
        (
            "sh.keptn.event.project.create.finished",
            SequenceEventType("project", "create", EventKind.FINISHED),
        ),
        (
            "sh.keptn.event.service.create.status.changed",
            SequenceEventType("service", "create", EventKind.STATUS_CHANGED),
        ),
    ],
)
def test_parses_task_and_sequence_types(event_type, expected):
    parsed = parse_event_type(event_type)
    assert parsed == expected
    assert str(parsed) == event_type


@pytest.mark.parametrize(
    ("event_type", "reason"),
    [
        ("", "must start with 'sh.keptn.event.'"),
        ("garbage", "must start with"),
        ("a.b.c.d.triggered", "must start with"),  # Keptn counted dots only and accepted this
        ("sh.keptn.events.problem", "must start with"),
        ("sh.keptn.event.triggered", "name is missing"),
        ("sh.keptn.event.", "name is missing"),
        ("sh.keptn.event..triggered", "empty part"),
        ("sh.keptn.event.dev..triggered", "empty part"),
        ("sh.keptn.event.deployment.", "empty part"),
        ("sh.keptn.event.deployment.done", "unknown kind 'done'"),
        ("sh.keptn.event.monitoring.configure", "unknown kind 'configure'"),
        ("sh.keptn.event.deployment.changed", "unknown kind 'changed'"),
        ("sh.keptn.event.deployment.Triggered", "unknown kind 'Triggered'"),
        ("sh.keptn.event.a.b.c.triggered", "names must not contain dots"),
        ("sh.keptn.event.a.b.c.status.changed", "names must not contain dots"),
        ("sh.keptn.event..status.changed", "empty part"),
    ],
)
def test_rejects_garbage(event_type, reason):
    with pytest.raises(InvalidEventError) as info:
        parse_event_type(event_type)
    assert info.value.field == "type"
    assert reason in info.value.message
    assert repr(event_type) in info.value.message


def test_rejects_non_strings():
    with pytest.raises(InvalidEventError) as info:
        parse_event_type(None)  # type: ignore[arg-type]
    assert info.value.field == "type"


def test_builders():
    assert task_event_type("deployment", EventKind.TRIGGERED) == "sh.keptn.event.deployment.triggered"
    assert task_event_type("approval", "status.changed") == "sh.keptn.event.approval.status.changed"
    assert sequence_event_type("dev", "delivery", "finished") == "sh.keptn.event.dev.delivery.finished"
    assert TaskEventType("test", EventKind.STARTED).with_kind(EventKind.FINISHED) == TaskEventType(
        "test", EventKind.FINISHED
    )
    assert str(SequenceEventType("dev", "delivery", EventKind.TRIGGERED).with_kind(EventKind.FINISHED)) == (
        "sh.keptn.event.dev.delivery.finished"
    )


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: task_event_type("a.b", "triggered"), "task name 'a.b'"),
        (lambda: task_event_type("", "triggered"), "task name ''"),
        (lambda: task_event_type("deployment", "done"), "unknown event kind 'done'"),
        (lambda: sequence_event_type("dev.eu", "delivery", "triggered"), "stage name 'dev.eu'"),
        (lambda: sequence_event_type("dev", "de.livery", "triggered"), "sequence name 'de.livery'"),
    ],
)
def test_builders_refuse_names_that_would_not_parse_back(build, reason):
    with pytest.raises(InvalidEventError) as info:
        build()
    assert reason in info.value.message
    assert info.value.field == "type"


def test_types_are_hashable_values():
    assert {TaskEventType("a", EventKind.STARTED), TaskEventType("a", EventKind.STARTED)} == {
        TaskEventType("a", EventKind.STARTED)
    }


def test_maybe_parse_event_type_is_none_for_special_and_invalid_types():
    assert maybe_parse_event_type(MONITORING_CONFIGURE_EVENT_TYPE) is None
    assert maybe_parse_event_type(ERROR_LOG_EVENT_TYPE) is None
    assert maybe_parse_event_type(PROBLEM_EVENT_TYPE) is None
    assert maybe_parse_event_type("sh.keptn.event.test.finished") == TaskEventType("test", EventKind.FINISHED)
