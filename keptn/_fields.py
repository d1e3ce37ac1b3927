"""Reading loaded YAML into typed fields the way Keptn's Go YAML decoders did, shared by the parsers."""

from __future__ import annotations

from typing import Any


def describe(value: Any) -> str:
    """How an error names a value of the wrong kind: ``null``, ``a mapping``, ``a list`` or its repr."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def scalar_text(value: Any) -> str | None:
    """The text a YAML value stands for where a string is expected; None if it is no scalar.

    Go's decoders (ghodss/yaml, yaml.v3) accept any scalar for a string field: ``name: 1`` is
    ``"1"`` and ``name: true`` is ``"true"``; a missing value is the empty string.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None
