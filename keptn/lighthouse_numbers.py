"""Numbers the way lighthouse's Go code read and printed them.

Lighthouse parsed criteria values and total-score targets with Go's ``strconv.ParseFloat`` and
printed scores in its messages with ``fmt``'s ``%v``. Both differ from Python in details that
show up in user-visible text: ``%v`` prints ``75`` (not ``75.0``) and ``1e+06`` (not
``1000000.0``); ``ParseFloat`` accepts ``0x1p3`` and rejects ``" 5"`` and ``1e400``. The
behaviour here was checked against Go 1.19.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

__all__ = ["go_float", "parse_go_float", "to_go_json_numbers"]

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Go requires the binary exponent ("p") in a hexadecimal float literal.
_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")
_INFINITY = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)
# Go's %v switches to exponent notation when the decimal exponent is below -4 or at least 6
# ('g' with the shortest precision uses precision 6 for that decision).
_MIN_PLAIN_EXPONENT = -4
_MAX_PLAIN_EXPONENT = 5


def _underscores_ok(text: str) -> bool:
    """Go's ``underscoreOK``: an underscore may only stand between digits (or after a base prefix)."""
    saw = "^"
    if text[:1] in ("+", "-"):
        text = text[1:]
    index = 0
    hexadecimal = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        index = 2
        saw = "0"
        hexadecimal = text[1].lower() == "x"
    for char in text[index:]:
        if char.isascii() and (char.isdigit() or (hexadecimal and char.lower() in "abcdef")):
            saw = "0"
            continue
        if char == "_":
            if saw != "0":
                return False
            saw = "_"
            continue
        if saw == "_":
            return False
        saw = "!"
    return saw != "_"


def parse_go_float(text: str) -> float | None:
    """Parse a number as Go's ``strconv.ParseFloat(text, 64)`` does.

    Accepted: decimal numbers (``5``, ``5.``, ``.5``, ``1e3``), hexadecimal floats with a binary
    exponent (``0x1p-2``), ``inf``/``infinity`` in any case with an optional sign, ``nan`` in any
    case without a sign, and underscores between digits (``1_000``). Rejected: surrounding
    whitespace, an empty string, hexadecimal without ``p`` exponent, and values too large for a
    float64 (Go's "value out of range"); values too small become 0 as in Go.

    Args:
        text: the text to parse.

    Returns:
        The value, or None where Go returns an error.
    """
    if "_" in text:
        if not _underscores_ok(text):
            return None
        text = text.replace("_", "")
    if _INFINITY.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if text.lower() == "nan":
        return math.nan
    if _DECIMAL.fullmatch(text):
        value = float(text)
    elif _HEX.fullmatch(text):
        try:
            value = float.fromhex(text)
        except OverflowError:
            return None
    else:
        return None
    return None if math.isinf(value) else value


def go_float(value: float) -> str:
    """Format a float64 as Go's ``fmt`` ``%v`` does (``strconv.FormatFloat(v, 'g', -1, 64)``).

    The shortest digits that read back to the same value, without a trailing ``.0``; exponent
    notation (``1e+06``, ``1.5e-07``) when the decimal exponent is below -4 or at least 6.
    Examples: ``75``, ``75.3``, ``66.66666666666667``, ``123456``, ``1.234567e+06``, ``+Inf``.

    Args:
        value: the number.

    Returns:
        Go's text for it.
    """
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return f"{sign}0"
    # repr() gives the shortest round-tripping digits, as Go's shortest formatting does.
    decimal = Decimal(repr(abs(value))).normalize()
    _, digit_tuple, exponent = decimal.as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(str(digit) for digit in digit_tuple)
    point = len(digits) + exponent  # position of the decimal point relative to the digits
    scientific_exponent = point - 1
    if scientific_exponent < _MIN_PLAIN_EXPONENT or scientific_exponent > _MAX_PLAIN_EXPONENT:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        exponent_sign = "-" if scientific_exponent < 0 else "+"
        return f"{sign}{mantissa}e{exponent_sign}{abs(scientific_exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def to_go_json_numbers(document: Any) -> Any:
    """Return a copy of a JSON-like document whose whole-number floats are ints.

    Go's ``encoding/json`` writes the float64 ``100`` as ``100``; Python's ``json`` writes
    ``100.0``. Converting whole floats below 1e21 (where Go switches to exponent notation) makes
    ``json.dumps`` print what lighthouse printed. Other values are left as they are.

    Args:
        document: dicts, lists and scalars.

    Returns:
        The converted copy.
    """
    if isinstance(document, dict):
        return {key: to_go_json_numbers(value) for key, value in document.items()}
    if isinstance(document, list | tuple):
        return [to_go_json_numbers(value) for value in document]
    if isinstance(document, float) and document.is_integer() and abs(document) < 1e21:
        # -0.0 stays a float: Go writes it as "-0", an int cannot carry the sign.
        if document == 0 and math.copysign(1.0, document) < 0:
            return document
        return int(document)
    return document
