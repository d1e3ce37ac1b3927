"""Go durations (``time.ParseDuration`` / ``Duration.String``), as shipyards use them.

A shipyard task may carry ``triggeredAfter: "10m"``; Keptn parsed that with Go's
``time.ParseDuration``, so Capstan accepts exactly the same language: a sequence of decimal
numbers, each with an optional fraction and a unit suffix (``ns``, ``us``, ``µs``, ``μs``, ``ms``,
``s``, ``m``, ``h``), e.g. ``"300ms"``, ``"1.5h"``, ``"2h45m"``, plus the bare ``"0"``.
"""

from __future__ import annotations

import datetime

from keptn.errors import InvalidInputError

__all__ = ["format_duration", "parse_duration", "parse_duration_ns"]

_NANOSECOND = 1
_MICROSECOND = 1_000 * _NANOSECOND
_MILLISECOND = 1_000 * _MICROSECOND
_SECOND = 1_000 * _MILLISECOND
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE

_UNITS: dict[str, int] = {
    "ns": _NANOSECOND,
    "us": _MICROSECOND,
    "\u00b5s": _MICROSECOND,  # U+00B5 MICRO SIGN
    "\u03bcs": _MICROSECOND,  # U+03BC GREEK SMALL LETTER MU
    "ms": _MILLISECOND,
    "s": _SECOND,
    "m": _MINUTE,
    "h": _HOUR,
}

# Go's Duration is an int64 of nanoseconds; the parser works on uint64 and checks against 1<<63.
_LIMIT = 1 << 63
_MAX_DURATION = _LIMIT - 1


def _is_digit(char: str) -> bool:
    # str.isdigit() would accept non-ASCII digits that Go rejects.
    return "0" <= char <= "9"


def _leading_int(text: str) -> tuple[int, str]:
    """Consume leading ASCII digits like Go's ``leadingInt``; raise ``OverflowError`` past 2**63."""
    value = 0
    index = 0
    while index < len(text) and _is_digit(text[index]):
        if value > _LIMIT // 10:
            raise OverflowError
        value = value * 10 + (ord(text[index]) - ord("0"))
        if value > _LIMIT:
            raise OverflowError
        index += 1
    return value, text[index:]


def _leading_fraction(text: str) -> tuple[int, float, str]:
    """Consume fraction digits like Go's ``leadingFraction``: digits beyond int64 are dropped."""
    value = 0
    scale = 1.0
    overflow = False
    index = 0
    while index < len(text) and _is_digit(text[index]):
        if not overflow:
            if value > _MAX_DURATION // 10:
                overflow = True
            else:
                candidate = value * 10 + (ord(text[index]) - ord("0"))
                if candidate > _LIMIT:
                    overflow = True
                else:
                    value = candidate
                    scale *= 10
        index += 1
    return value, scale, text[index:]


def parse_duration_ns(text: str, *, field: str | None = None) -> int:
    """Parse a Go duration into integer nanoseconds, exactly as ``time.ParseDuration`` does.

    Capstan rejects negative durations (a leading ``-``), which Go would accept: every duration
    Capstan reads is a delay or a timeout, and a negative one is always a mistake. ``"-0"`` and
    ``"-0s"`` are rejected as well, since the sign alone shows the intent.

    Args:
        text: the duration, e.g. ``"1h30m"``.
        field: the input field the text came from, named in the error.

    Returns:
        The duration in nanoseconds (0 <= result < 2**63).

    Raises:
        InvalidInputError: if ``text`` is not a Go duration or is negative.
    """
    original = text
    where = f"{field}: " if field else ""

    def invalid(reason: str) -> InvalidInputError:
        return InvalidInputError(f"{where}{reason}", field=field)

    if not isinstance(text, str):
        raise invalid(f"invalid duration {original!r}: expected a string such as '10m'")
    if text.startswith("-"):
        raise invalid(f"invalid duration {original!r}: negative durations are not allowed")
    if text.startswith("+"):
        text = text[1:]
    if text == "0":
        return 0
    if text == "":
        raise invalid(f"invalid duration {original!r}")

    total = 0
    while text:
        if not (text[0] == "." or _is_digit(text[0])):
            raise invalid(f"invalid duration {original!r}")
        before = len(text)
        try:
            whole, text = _leading_int(text)
        except OverflowError:
            raise invalid(f"invalid duration {original!r}: out of range") from None
        has_whole = before != len(text)

        fraction, scale, has_fraction = 0, 1.0, False
        if text.startswith("."):
            text = text[1:]
            before = len(text)
            fraction, scale, text = _leading_fraction(text)
            has_fraction = before != len(text)
        if not has_whole and not has_fraction:
            raise invalid(f"invalid duration {original!r}")

        end = 0
        while end < len(text) and not (text[end] == "." or _is_digit(text[end])):
            end += 1
        if end == 0:
            raise invalid(f"missing unit in duration {original!r}")
        unit_name, text = text[:end], text[end:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise invalid(f"unknown unit {unit_name!r} in duration {original!r} (use ns, us, ms, s, m or h)")
        if whole > _LIMIT // unit:
            raise invalid(f"invalid duration {original!r}: out of range")
        whole *= unit
        if fraction > 0:
            # Go computes the fractional part in float64 and truncates; so do we (same IEEE doubles).
            whole += int(float(fraction) * (float(unit) / scale))
            if whole > _LIMIT:
                raise invalid(f"invalid duration {original!r}: out of range")
        total += whole
        if total > _LIMIT:
            raise invalid(f"invalid duration {original!r}: out of range")
    if total > _MAX_DURATION:
        raise invalid(f"invalid duration {original!r}: out of range")
    return total


def parse_duration(text: str, *, field: str | None = None) -> datetime.timedelta:
    """Parse a Go duration such as ``"10m"``, ``"1h30m"``, ``"1.5h"``, ``"300ms"`` or ``"2us"``.

    The language is exactly Go's ``time.ParseDuration``, except that negative durations are
    rejected (see :func:`parse_duration_ns`). Python's ``timedelta`` has microsecond resolution,
    so sub-microsecond parts are truncated (``"1500ns"`` is 1 µs).

    Args:
        text: the duration.
        field: the input field the text came from (e.g.
            ``spec.stages[0].sequences[1].tasks[0].triggeredAfter``), named in the error.

    Returns:
        The duration as a non-negative ``timedelta``.

    Raises:
        InvalidInputError: if ``text`` is not a valid, non-negative Go duration.
    """
    return datetime.timedelta(microseconds=parse_duration_ns(text, field=field) // _MICROSECOND)


def _format_fraction(value: int, precision: int) -> tuple[str, int]:
    """Return Go's ``fmtFrac``: the fraction digits of ``value`` (trailing zeros dropped), the rest."""
    digits = ""
    printed = False
    for _ in range(precision):
        digit = value % 10
        printed = printed or digit != 0
        if printed:
            digits = str(digit) + digits
        value //= 10
    if printed:
        digits = "." + digits
    return digits, value


def format_duration(duration: datetime.timedelta | int) -> str:
    """Format a duration the way Go's ``Duration.String`` does, e.g. ``"10m0s"``, ``"1h30m0s"``.

    Durations under one second use the smallest fitting unit (``"1.5ms"``, ``"300µs"``, with the
    micro sign U+00B5 as Go writes it); zero is ``"0s"``; negative durations get a leading ``-``.

    Args:
        duration: a ``timedelta``, or an integer number of nanoseconds.

    Returns:
        The Go representation, which :func:`parse_duration` reads back to the same value.
    """
    if isinstance(duration, datetime.timedelta):
        nanos = (duration.days * 86_400 + duration.seconds) * _SECOND + duration.microseconds * _MICROSECOND
    else:
        nanos = int(duration)
    negative = nanos < 0
    value = -nanos if negative else nanos
    if value == 0:
        return "0s"
    if value < _SECOND:
        if value < _MICROSECOND:
            text = f"{value}ns"
        elif value < _MILLISECOND:
            fraction, whole = _format_fraction(value, 3)
            text = f"{whole}{fraction}\u00b5s"
        else:
            fraction, whole = _format_fraction(value, 6)
            text = f"{whole}{fraction}ms"
    else:
        fraction, seconds = _format_fraction(value, 9)
        text = f"{seconds % 60}{fraction}s"
        minutes = seconds // 60
        if minutes > 0:
            text = f"{minutes % 60}m{text}"
            hours = minutes // 60
            if hours > 0:
                text = f"{hours}h{text}"
    return f"-{text}" if negative else text
