"""Keptn's payload merge (shipyard-controller ``common.Merge``), as a pure function.

Keptn builds every task's ``.triggered`` payload by merging the sequence input with the data of
every earlier ``.finished`` event, so later tasks see what earlier ones reported (e.g. the
``deployment.deploymentURIsLocal`` a tester needs). The rules, from Keptn 1.4.5:

- maps merge key by key, recursively; a key whose earlier value is ``null`` takes the later value;
- lists concatenate with the **later** list first, then duplicates are dropped (keptn#7627);
- a string is replaced by the later string (a later ``null`` blanks it to ``""``, as Go did);
- on a type mismatch the later value wins, unless the later value is ``null``.

Two deliberate differences, recorded in ``docs/keptn-compatibility.md``:

- **numbers and booleans**: Keptn's switch had no case for them, so the *earlier* value was kept
  whatever came later. That froze ``get-action.actionIndex`` at its first value and stopped
  remediation from escalating, so in Capstan the later value wins for every scalar.
- **duplicates of maps or lists inside a list**: Keptn's ``Dedup`` used the element as a Go map
  key, which panics for such elements; Capstan compares them by JSON value.
"""

from __future__ import annotations

import json
from copy import deepcopy
from typing import Any

__all__ = ["dedup", "merge"]


def _dedup_key(value: Any) -> tuple[str, Any]:
    # Go compared interface values: float64(1) == float64(1), but "1" != 1 and true != 1.
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    if isinstance(value, str):
        return ("string", value)
    if value is None:
        return ("null", None)
    return ("json", json.dumps(value, sort_keys=True, separators=(",", ":")))


def dedup(items: list[Any]) -> list[Any]:
    """Drop repeated elements of a list, keeping the first occurrence (Keptn's ``Dedup``)."""
    seen: set[tuple[str, Any]] = set()
    result: list[Any] = []
    for item in items:
        key = _dedup_key(item)
        if key not in seen:
            seen.add(key)
            result.append(item)
    return result


def merge(earlier: Any, later: Any) -> Any:
    """Merge ``later`` into ``earlier`` by Keptn's rules; neither argument is modified.

    Args:
        earlier: the value so far (Keptn's ``in1``).
        later: the value that arrives later (Keptn's ``in2``), e.g. a task's ``.finished`` data.

    Returns:
        The merged value (a new object; inputs are never mutated).

    Example:
        >>> merge({"urls": ["dev"], "n": 1}, {"urls": ["staging"], "n": 2})
        {'urls': ['staging', 'dev'], 'n': 2}
    """
    if isinstance(earlier, list):
        if later is None:
            return dedup(deepcopy(earlier))
        if not isinstance(later, list):
            return deepcopy(later)
        return dedup(deepcopy(later) + deepcopy(earlier))
    if isinstance(earlier, dict):
        if later is None:
            return deepcopy(earlier)
        if not isinstance(later, dict):
            return deepcopy(later)
        merged = deepcopy(earlier)
        for key, value in later.items():
            current = merged.get(key)
            merged[key] = deepcopy(value) if current is None else merge(current, value)
        return merged
    if isinstance(earlier, str):
        if later is None:
            return ""
        return deepcopy(later)
    if earlier is None:
        # Go: a nil earlier value takes a later map, and a later nil stays nil.
        return deepcopy(later)
    # Numbers and booleans: Capstan's documented difference, the later non-null value wins.
    return earlier if later is None else deepcopy(later)
