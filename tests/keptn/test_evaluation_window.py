"""Evaluation windows (spec §4.3 step 3): GetStartEndTime's rules, formats and messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from keptn.errors import InvalidInputError
from keptn.evaluation_window import (
    DEFAULT_TIMEFRAME,
    EVALUATION_TIME_FORMAT,
    evaluation_window,
    format_evaluation_time,
    get_start_end_time,
    parse_evaluation_time,
)

NOW = datetime(2022, 1, 26, 10, 10, 53, 931000, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_format_is_keptns():
    assert EVALUATION_TIME_FORMAT == "2006-01-02T15:04:05.000Z"
    assert (
        format_evaluation_time(datetime(2022, 1, 26, 10, 5, 53, 931999, tzinfo=UTC))
        == "2022-01-26T10:05:53.931Z"
    )
    plus_two = timezone(timedelta(hours=2))
    assert format_evaluation_time(datetime(2022, 1, 26, 12, 0, tzinfo=plus_two)) == "2022-01-26T10:00:00.000Z"
    with pytest.raises(ValueError, match="time-zone-aware"):
        format_evaluation_time(datetime(2022, 1, 26))


# Checked against Go 1.19 time.Parse with the three layouts lighthouse tried.
@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2021-01-01T10:00:00.123Z", datetime(2021, 1, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2021-01-01T10:00:00Z", utc(2021, 1, 1, 10, 0, 0)),
        ("2021-01-01T10:00:00.5Z", datetime(2021, 1, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2021-01-01T10:00:00.1234Z", datetime(2021, 1, 1, 10, 0, 0, 123400, tzinfo=UTC)),
        ("2021-01-01T10:00:00.123456789Z", datetime(2021, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2021-01-01T10:00:00+02:00", utc(2021, 1, 1, 8, 0, 0)),
        ("2021-01-01T10:00:00.12-01:30", datetime(2021, 1, 1, 11, 30, 0, 120000, tzinfo=UTC)),
        ("2021-01-01T10:00:00", utc(2021, 1, 1, 10, 0, 0)),
        ("2021-01-01T10:00:00.123456", datetime(2021, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2021-01-01T10:00:00,5Z", datetime(2021, 1, 1, 10, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_the_three_layouts_are_accepted(text, moment):
    parsed = parse_evaluation_time(text, field="evaluation.start")
    assert parsed == moment
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2021-01-01t10:00:00Z",
        "2021-01-01T10:00:00z",
        "2021-1-01T10:00:00",
        "2021-01-01T10:00",
        "2021-01-01",
        "2021-01-01 10:00:00",
        " 2021-01-01T10:00:00Z",
        "yesterday",
        "",
    ],
)
def test_other_layouts_are_rejected_naming_the_field(text):
    with pytest.raises(InvalidInputError) as caught:
        parse_evaluation_time(text, field="evaluation.end")
    assert caught.value.field == "evaluation.end"
    assert caught.value.message.startswith("evaluation.end: ")


@pytest.mark.parametrize("text", ["2021-01-01T24:00:00Z", "2021-02-29T10:00:00Z", "2021-13-01T10:00:00Z"])
def test_impossible_moments_are_rejected(text):
    with pytest.raises(InvalidInputError, match="not a valid moment"):
        parse_evaluation_time(text, field="test.start")


def test_non_strings_are_rejected():
    with pytest.raises(InvalidInputError, match="must be a timestamp string"):
        parse_evaluation_time(5, field="start")  # type: ignore[arg-type]


def test_nothing_given_means_the_last_five_minutes():
    assert DEFAULT_TIMEFRAME == "5m"
    assert get_start_end_time(None, None, None, now=NOW) == (NOW - timedelta(minutes=5), NOW)
    assert get_start_end_time("", "", "", now=NOW) == (NOW - timedelta(minutes=5), NOW)


def test_timeframe_alone_ends_now():
    assert get_start_end_time(None, None, "1h30m", now=NOW) == (NOW - timedelta(minutes=90), NOW)


def test_start_and_timeframe_give_start_plus_timeframe():
    start, end = get_start_end_time("2022-01-26T10:00:00.000Z", None, "10m", now=NOW)
    assert (start, end) == (utc(2022, 1, 26, 10, 0), utc(2022, 1, 26, 10, 10))


def test_start_and_end_are_taken_as_given():
    start, end = get_start_end_time("2022-01-26T10:05:53.931Z", "2022-01-26T10:10:53.931Z", None, now=NOW)
    assert format_evaluation_time(start) == "2022-01-26T10:05:53.931Z"
    assert format_evaluation_time(end) == "2022-01-26T10:10:53.931Z"


def test_now_is_converted_to_utc_and_must_be_aware():
    plus_two = timezone(timedelta(hours=2))
    start, end = get_start_end_time(None, None, "1m", now=datetime(2022, 1, 1, 12, 0, tzinfo=plus_two))
    assert (start, end) == (utc(2022, 1, 1, 9, 59), utc(2022, 1, 1, 10, 0))
    assert end.tzinfo is UTC
    with pytest.raises(ValueError, match="time-zone-aware"):
        get_start_end_time(None, None, None, now=datetime(2022, 1, 1))


@pytest.mark.parametrize(
    ("start", "end", "timeframe", "field", "message"),
    [
        ("2022-01-26T10:00:00Z", None, None, "timeframe", "no timeframe or end date provided"),
        (
            "2022-01-26T10:00:00Z",
            "2022-01-26T11:00:00Z",
            "5m",
            "end",
            "'end' and 'timeframe' are mutually exclusive",
        ),
        (None, "2022-01-26T11:00:00Z", "5m", "end", "'end' and 'timeframe' are mutually exclusive"),
        (None, "2022-01-26T11:00:00Z", None, "start", "start date is required when using an end date"),
        (
            None,
            None,
            "5 minutes",
            "timeframe",
            "could not parse provided timeframe: unknown unit ' minutes'",
        ),
        (None, None, "-5m", "timeframe", "could not parse provided timeframe: invalid duration '-5m'"),
        (None, None, "30s", "end", "end date must be at least 1 minute after start date"),
        (
            "2022-01-26T10:00:00Z",
            "2022-01-26T10:00:59.999Z",
            None,
            "end",
            "end date must be at least 1 minute",
        ),
        ("2022-01-26T10:00:00Z", "2022-01-26T09:00:00Z", None, "end", "end date must be at least 1 minute"),
        ("2022-01-26T10:00", "2022-01-26T11:00:00Z", None, "start", "cannot parse '2022-01-26T10:00'"),
        ("2022-01-26T10:00:00Z", "tomorrow", None, "end", "cannot parse 'tomorrow'"),
        ("9999-12-31T23:00:00Z", None, "2h", "timeframe", "outside the supported years"),
    ],
)
def test_rules_and_messages(start, end, timeframe, field, message):
    with pytest.raises(InvalidInputError) as caught:
        get_start_end_time(start, end, timeframe, now=NOW, field_prefix="evaluation.")
    assert message in caught.value.message
    assert caught.value.field == f"evaluation.{field}"


def test_exactly_one_minute_is_enough():
    start, end = get_start_end_time("2022-01-26T10:00:00Z", "2022-01-26T10:01:00Z", None, now=NOW)
    assert end - start == timedelta(minutes=1)
    assert get_start_end_time(None, None, "1m", now=NOW)[0] == NOW - timedelta(minutes=1)


def test_event_with_evaluation_start_and_end():
    data = {"evaluation": {"start": "2022-01-26T10:05:53.931Z", "end": "2022-01-26T10:10:53.931Z"}}
    start, end = evaluation_window(data, now=NOW)
    assert (format_evaluation_time(start), format_evaluation_time(end)) == (
        "2022-01-26T10:05:53.931Z",
        "2022-01-26T10:10:53.931Z",
    )


def test_event_with_timeframe_only():
    assert evaluation_window({"evaluation": {"timeframe": "10m"}}, now=NOW) == (
        NOW - timedelta(minutes=10),
        NOW,
    )


def test_event_with_start_and_timeframe():
    data = {"evaluation": {"start": "2022-01-26T10:00:00Z", "timeframe": "2m"}}
    assert evaluation_window(data, now=NOW) == (utc(2022, 1, 26, 10, 0), utc(2022, 1, 26, 10, 2))


def test_event_errors_name_the_evaluation_fields():
    with pytest.raises(InvalidInputError) as caught:
        evaluation_window({"evaluation": {"end": "2022-01-26T10:00:00Z", "timeframe": "5m"}}, now=NOW)
    assert caught.value.field == "evaluation.end"
    with pytest.raises(InvalidInputError) as caught:
        evaluation_window({"evaluation": {"timeframe": 5}}, now=NOW)
    assert caught.value.field == "evaluation.timeframe"


def test_test_times_are_used_verbatim_when_the_evaluation_has_no_window():
    data = {
        "evaluation": {"start": "2022-01-26T10:00:00Z"},  # a start alone does not count
        "test": {"start": "2022-01-26T10:00:00Z", "end": "2022-01-26T10:00:30Z"},
    }
    # Shorter than a minute, but the test's times are not checked.
    assert evaluation_window(data, now=NOW) == (utc(2022, 1, 26, 10, 0, 0), utc(2022, 1, 26, 10, 0, 30))


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"evaluation": None, "test": None},
        {"evaluation": {}},
        {"evaluation": {"start": "2022-01-26T10:00:00Z"}},
        {"evaluation": {"end": "2022-01-26T10:00:00Z"}},
        {"evaluation": {"start": "", "end": "", "timeframe": ""}},
        {"test": {"start": "2022-01-26T10:00:00Z"}},
    ],
)
def test_no_window_at_all_is_keptns_error(data):
    with pytest.raises(InvalidInputError) as caught:
        evaluation_window(data, now=NOW)
    assert caught.value.message == "evaluation.triggered event does not contain evaluation timeframe"
    assert caught.value.field == "evaluation"


def test_bad_test_times_name_the_field():
    with pytest.raises(InvalidInputError) as caught:
        evaluation_window({"test": {"start": "now", "end": "2022-01-26T10:00:00Z"}}, now=NOW)
    assert caught.value.field == "test.start"


def test_sections_must_be_objects():
    with pytest.raises(InvalidInputError, match="evaluation: must be an object"):
        evaluation_window({"evaluation": "5m"}, now=NOW)
