"""The JSONPath subset Keptn's job-executor configs use, without I/O.

``$`` (the whole document), ``.key``, ``['key']`` / ``["key"]`` and ``[index]`` (a negative index
counts from the end), e.g. ``$.data.deployment.deploymentURIsLocal[0]``. No wildcards, filters,
slices or recursive descent: a path names exactly one value or is an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from keptn.errors import InvalidInputError

__all__ = ["JsonPathError", "jsonpath_get", "parse_jsonpath", "render_value"]


class JsonPathError(InvalidInputError):
    """A JSONPath expression cannot be read, or names nothing in the document."""


_SEGMENT = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(-?\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def parse_jsonpath(path: str) -> list[str | int]:
    """The steps of a path: keys (str) and list indexes (int); ``$`` alone has none.

    Raises:
        JsonPathError: the path does not start with ``$`` or uses unsupported syntax.
    """
    text = path.strip()
    if not text.startswith("$"):
        raise JsonPathError(f"JSONPath {path!r} must start with $", field="jsonpath")
    steps: list[str | int] = []
    position = 1
    while position < len(text):
        found = _SEGMENT.match(text, position)
        if found is None:
            raise JsonPathError(
                f"JSONPath {path!r}: unsupported syntax at {text[position:]!r} "
                "(supported: $, .key, ['key'], [index])",
                field="jsonpath",
            )
        key, index, single, double = found.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(next(part for part in (key, single, double) if part is not None))
        position = found.end()
    return steps


def jsonpath_get(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document``.

    Example::

        jsonpath_get({"data": {"uris": ["http://a"]}}, "$.data.uris[0]")  # "http://a"

    Raises:
        JsonPathError: the path uses unsupported syntax, or names nothing in the document.
    """
    current = document
    for step in parse_jsonpath(path):
        if isinstance(step, int) and isinstance(current, list) and -len(current) <= step < len(current):
            current = current[step]
        elif isinstance(step, str) and isinstance(current, Mapping) and step in current:
            current = current[step]
        else:
            raise JsonPathError(f"JSONPath {path!r}: nothing at {step!r}", field="jsonpath")
    return current


def render_value(value: Any, *, as_json: bool = False) -> str:
    """The text of a JSON value for an environment variable or a match.

    Strings stay as they are (unless ``as_json``), everything else is compact JSON (``true``,
    ``3``, ``{"a":1}``).
    """
    if isinstance(value, str) and not as_json:
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
