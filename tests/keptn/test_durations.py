"""Go durations: parse exactly like time.ParseDuration (minus negatives), format like Duration.String."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keptn.durations import format_duration, parse_duration, parse_duration_ns
from keptn.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("+5s", timedelta(seconds=5)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("2h45m30.5s", timedelta(hours=2, minutes=45, seconds=30.5)),
        ("300ms", timedelta(milliseconds=300)),
        ("2us", timedelta(microseconds=2)),
        ("2\u00b5s", timedelta(microseconds=2)),  # micro sign
        ("2\u03bcs", timedelta(microseconds=2)),  # greek mu
        ("1500ns", timedelta(microseconds=1)),  # below microseconds: truncated
        (".5s", timedelta(milliseconds=500)),
        ("1.s", timedelta(seconds=1)),
        ("1m1m", timedelta(minutes=2)),  # Go adds repeated units
        ("24h", timedelta(days=1)),
    ],
)
def test_parses_go_durations(text, expected):
    assert parse_duration(text) == expected


def test_nanosecond_precision_and_go_float_fraction():
    assert parse_duration_ns("1ns") == 1
    assert parse_duration_ns("1.000000001s") == 1_000_000_001
    # Go: 0.1h = uint64(float64(1) * (3600e9 / 10))
    assert parse_duration_ns("0.1h") == 360_000_000_000
    assert parse_duration_ns("2562047h47m16.854775807s") == 2**63 - 1  # the largest Go duration


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid duration"),
        ("1", "missing unit"),
        ("10", "missing unit"),
        ("1d", "unknown unit 'd'"),
        ("1 h", "unknown unit ' h'"),
        ("1hour", "unknown unit 'hour'"),
        ("1H", "unknown unit 'H'"),
        (".s", "invalid duration"),
        ("s", "invalid duration"),
        ("1h.", "invalid duration"),
        ("-1s", "negative durations are not allowed"),
        ("-0", "negative durations are not allowed"),
        ("2562047h47m16.854775808s", "out of range"),
        ("9223372036854775808ns", "out of range"),
        ("99999999999999999999h", "out of range"),
        ("\u0661s", "invalid duration"),  # an Arabic-Indic digit is not a Go digit
    ],
)
def test_rejects_what_go_rejects_and_negatives(text, reason):
    with pytest.raises(InvalidInputError) as info:
        parse_duration(text, field="spec.stages[0].sequences[0].tasks[0].triggeredAfter")
    assert reason in info.value.message
    assert info.value.field == "spec.stages[0].sequences[0].tasks[0].triggeredAfter"
    assert info.value.message.startswith("spec.stages[0].sequences[0].tasks[0].triggeredAfter: ")


def test_rejects_non_strings_and_field_is_optional():
    with pytest.raises(InvalidInputError) as info:
        parse_duration(10)  # type: ignore[arg-type]
    assert info.value.field is None
    assert "expected a string" in info.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(minutes=10), "10m0s"),
        (timedelta(hours=1, minutes=30), "1h30m0s"),
        (timedelta(hours=26, seconds=1), "26h0m1s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=300), "300ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(microseconds=2), "2\u00b5s"),
        (timedelta(seconds=-90), "-1m30s"),
        (1, "1ns"),
        (1_100, "1.1\u00b5s"),
        (2**63 - 1, "2562047h47m16.854775807s"),
    ],
)
def test_formats_like_go(value, expected):
    assert format_duration(value) == expected


@pytest.mark.parametrize("text", ["10m", "1h30m", "1.5s", "300ms", "2us", "1ns", "26h0m1s"])
def test_format_reads_back(text):
    assert parse_duration_ns(format_duration(parse_duration_ns(text))) == parse_duration_ns(text)
