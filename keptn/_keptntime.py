"""Keptn's wire format for CloudEvent ``time``: RFC 3339, UTC, milliseconds, ``Z``.

Private helper of :mod:`keptn.events`, which re-exports both functions.
"""

from __future__ import annotations

import datetime
import re

from keptn.errors import InvalidInputError

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def format_keptn_time(moment: datetime.datetime) -> str:
    """Format a moment as Keptn does: UTC, milliseconds, ``Z`` (``2006-01-02T15:04:05.000Z``).

    This is go-openapi's ``strfmt.DateTime`` layout (RFC 3339 with milliseconds) for a UTC time,
    which is how Keptn's API and datastore rendered ``time``. Sub-millisecond digits are cut,
    not rounded, as Go's ``.000`` does.

    Args:
        moment: a time-zone-aware datetime.

    Returns:
        The formatted string.

    Raises:
        ValueError: if ``moment`` is naive.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("format_keptn_time needs a time-zone-aware datetime")
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_keptn_time(text: str, *, field: str = "time") -> datetime.datetime:
    """Parse an RFC 3339 timestamp with a time zone into an aware UTC datetime.

    Any number of fraction digits is accepted (Go writes up to nine); digits past microseconds
    are cut. Naive timestamps (no ``Z`` or offset) and anything that is not a string are rejected.

    Args:
        text: e.g. ``2021-05-10T09:51:00.123456789Z`` or ``2021-05-10T11:51:00+02:00``.
        field: the input field, named in the error.

    Returns:
        The moment, in UTC.

    Raises:
        InvalidInputError: if ``text`` is not such a timestamp.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"{field}: must be an RFC 3339 timestamp string", field=field)
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise InvalidInputError(
            f"{field}: {text!r} is not an RFC 3339 timestamp with a time zone"
            " (e.g. 2021-05-10T09:51:00.000Z)",
            field=field,
        )
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        offset = datetime.timedelta(0)
        if not zulu:
            offset = datetime.timedelta(hours=int(off_h), minutes=int(off_m))
            if int(off_h) > 23 or int(off_m) > 59:
                raise ValueError("offset out of range")
            offset = -offset if sign == "-" else offset
        micros = int((fraction or "0")[:6].ljust(6, "0"))
        moment = datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros,
            tzinfo=datetime.timezone(offset),
        )  # fmt: skip
        # In UTC, 0001-01-01T00:00:00+01:00 lies before year 1 (and 9999-12-31T23:59:59-01:00
        # after 9999): OverflowError, a moment Python cannot hold.
        return moment.astimezone(datetime.UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidInputError(f"{field}: {text!r} is not a valid moment ({exc})", field=field) from None
