"""The time window of an evaluation (spec §4.3 step 3): go-utils' ``GetStartEndTime`` and lighthouse's rules.

Timestamps are read in the three layouts lighthouse accepted, tried in this order:
``2006-01-02T15:04:05.000Z``, RFC 3339 (``Z`` or an offset, any fraction) and
``2006-01-02T15:04:05`` (no zone: UTC). Like Go, a fraction is also accepted where the layout
has none, and a comma may stand for the decimal point. They are written back in Keptn's
``2006-01-02T15:04:05.000Z``.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from keptn._keptntime import format_keptn_time
from keptn.durations import parse_duration
from keptn.errors import InvalidInputError

__all__ = [
    "DEFAULT_TIMEFRAME",
    "EVALUATION_TIME_FORMAT",
    "Window",
    "evaluation_window",
    "format_evaluation_time",
    "get_start_end_time",
    "parse_evaluation_time",
]

EVALUATION_TIME_FORMAT = "2006-01-02T15:04:05.000Z"
"""Keptn's timestamp layout (Go reference-time notation) for ``start``/``end`` on the wire."""

DEFAULT_TIMEFRAME = "5m"
"""The window length when only a start, or nothing, is given."""

Window = tuple[datetime.datetime, datetime.datetime]
"""An evaluation window: ``(start, end)``, both in UTC."""

_NO_TIMEFRAME = "evaluation.triggered event does not contain evaluation timeframe"
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]+))?(Z|([+-])([0-9]{2}):([0-9]{2}))?"
)


def format_evaluation_time(moment: datetime.datetime) -> str:
    """Format a moment in Keptn's layout, UTC with milliseconds (``2006-01-02T15:04:05.000Z``).

    Args:
        moment: a time-zone-aware datetime.

    Returns:
        The text; sub-millisecond digits are cut, as Go's ``.000`` does.

    Raises:
        ValueError: if ``moment`` is naive.
    """
    return format_keptn_time(moment)


def parse_evaluation_time(text: str, *, field: str) -> datetime.datetime:
    """Parse an evaluation timestamp in one of the layouts lighthouse accepted.

    Args:
        text: e.g. ``2022-01-26T10:05:53.931Z``, ``2022-01-26T12:05:53+02:00`` or
            ``2022-01-26T10:05:53`` (UTC).
        field: the input field, named in the error (e.g. ``evaluation.start``).

    Returns:
        The moment, in UTC.

    Raises:
        InvalidInputError: if the text is in none of the layouts or is not a valid moment.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"{field}: must be a timestamp string, found {text!r}", field=field)
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise InvalidInputError(
            f"{field}: cannot parse {text!r} as a timestamp"
            f" (use {EVALUATION_TIME_FORMAT}, RFC 3339 or 2006-01-02T15:04:05)",
            field=field,
        )
    year, month, day, hour, minute, second, fraction, zone, sign, off_h, off_m = match.groups()
    try:
        offset = datetime.timedelta(0)
        if zone and zone != "Z":
            offset = datetime.timedelta(hours=int(off_h), minutes=int(off_m))
            offset = -offset if sign == "-" else offset
        moment = datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int((fraction or "0")[:6].ljust(6, "0")), tzinfo=datetime.timezone(offset),
        )  # fmt: skip
        return moment.astimezone(datetime.UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidInputError(f"{field}: {text!r} is not a valid moment ({exc})", field=field) from None


def get_start_end_time(
    start: str | None,
    end: str | None,
    timeframe: str | None,
    *,
    now: datetime.datetime,
    field_prefix: str = "",
) -> Window:
    """Compute an evaluation window as go-utils' ``GetStartEndTime`` does.

    Rules, with Keptn's messages: ``start`` alone needs a ``timeframe`` ("no timeframe or end
    date provided"); ``end`` and ``timeframe`` exclude each other ("'end' and 'timeframe' are
    mutually exclusive"); ``end`` needs ``start`` ("start date is required when using an end
    date"). Without ``start`` the window is the ``timeframe`` (default 5m) up to ``now``; with
    ``start`` and ``timeframe`` it is ``[start, start + timeframe]``. The window must be at least
    one minute long ("end date must be at least 1 minute after start date"). Empty strings count
    as not given. Unlike Go, a negative timeframe is rejected as invalid (Go rejected it too, as
    a window shorter than a minute).

    Args:
        start: the start timestamp, or None.
        end: the end timestamp, or None.
        timeframe: a Go duration such as ``10m``, or None.
        now: the current time (time-zone-aware), used when no start is given.
        field_prefix: put before ``start``/``end``/``timeframe`` in error fields, e.g.
            ``evaluation.``.

    Returns:
        ``(start, end)`` in UTC.

    Raises:
        InvalidInputError: with Keptn's message; ``field`` names the offending input.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("get_start_end_time needs a time-zone-aware 'now'")
    start_field, end_field, timeframe_field = (
        f"{field_prefix}{name}" for name in ("start", "end", "timeframe")
    )
    if start and not end and not timeframe:
        raise InvalidInputError("no timeframe or end date provided", field=timeframe_field)
    if end and timeframe:
        raise InvalidInputError("'end' and 'timeframe' are mutually exclusive", field=end_field)
    if end and not start:
        raise InvalidInputError("start date is required when using an end date", field=start_field)
    try:
        duration = parse_duration(timeframe or DEFAULT_TIMEFRAME)
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"could not parse provided timeframe: {exc.message}", field=timeframe_field
        ) from None
    now = now.astimezone(datetime.UTC)
    window_end = now
    try:
        window_start = now - duration
        if start:
            window_start = parse_evaluation_time(start, field=start_field)
        if end:
            window_end = parse_evaluation_time(end, field=end_field)
        if start and not end and timeframe:
            window_end = window_start + duration
    except OverflowError:
        raise InvalidInputError(
            f"the evaluation window lies outside the supported years (timeframe {timeframe!r})",
            field=timeframe_field,
        ) from None
    if window_end - window_start < datetime.timedelta(minutes=1):
        raise InvalidInputError("end date must be at least 1 minute after start date", field=end_field)
    return window_start, window_end


def evaluation_window(data: dict[str, Any], *, now: datetime.datetime) -> Window:
    """Find the window of an ``evaluation.triggered`` event as lighthouse's ``getEvaluationTimestamps``.

    If ``evaluation.start`` and ``evaluation.end`` are both set, or ``evaluation.timeframe`` is,
    the window follows :func:`get_start_end_time`; otherwise ``test.start`` and ``test.end`` (as
    a test task left them) are used as they are, without the one-minute rule.

    Args:
        data: the event's ``data``.
        now: the current time (time-zone-aware).

    Returns:
        ``(start, end)`` in UTC.

    Raises:
        InvalidInputError: "evaluation.triggered event does not contain evaluation timeframe"
            (``field="evaluation"``) if neither is there, or the error of an unusable value.
    """
    evaluation = _section(data, "evaluation")
    start = _text(evaluation, "start", "evaluation")
    end = _text(evaluation, "end", "evaluation")
    timeframe = _text(evaluation, "timeframe", "evaluation")
    if (start and end) or timeframe:
        return get_start_end_time(start, end, timeframe, now=now, field_prefix="evaluation.")
    test = _section(data, "test")
    test_start = _text(test, "start", "test")
    test_end = _text(test, "end", "test")
    if test_start and test_end:
        return (
            parse_evaluation_time(test_start, field="test.start"),
            parse_evaluation_time(test_end, field="test.end"),
        )
    raise InvalidInputError(_NO_TIMEFRAME, field="evaluation")


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    section = data.get(name) if isinstance(data, dict) else None
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise InvalidInputError(f"{name}: must be an object, found {section!r}", field=name)
    return section


def _text(section: dict[str, Any], key: str, name: str) -> str | None:
    value = section.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{name}.{key}: must be a string, found {value!r}", field=f"{name}.{key}")
    return value
