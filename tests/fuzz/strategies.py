"""Strategies shared by the fuzz tests: wild JSON-like values and mutations of valid documents."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

SPECIAL_SCALARS = (
    ".nan", ".NaN", ".inf", "-.inf", "+.inf", "NaN", "inf", "1e400", "-1e400", "0x7fffffffffffffffffff",
    "0o777", "0o9", "0x", "1_000", "yes", "no", "on", "off", "~", "null", "Null", "", " ", "\u0000",
    "\x85", "\u2028", "\ufeff", "😀", "ß", "2021-05-10", "2021-05-10T10:00:00Z", "1:30", "010",
    "!!python/object:os.system", "*x", "&a", "%", "%ff", "@", "`", "{{", "}}", "{{ .data.x }}",
    "{{ index .x }}", "10m", "-1s", "1.5h", "9999999999999999999h", "<=+10%", ">", "spec.keptn.sh/0.2.3",
    "spec.keptn.sh/99999999999999999999.0", "a.b.finished", ".", "a.b", "sockshop", "dev", "carts",
)  # fmt: skip
"""Scalars that YAML, Go's decoders or the parsers' own rules read specially."""

_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(SPECIAL_SCALARS),
)
keys = st.one_of(st.text(max_size=10), st.sampled_from(SPECIAL_SCALARS))
wild_values = st.recursive(
    _leaves,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=10,
)
"""Any JSON-like value: null, booleans, huge integers, NaN and infinities, unicode, lists, mappings."""

DEEP = "__FUZZ_DEEP__"
"""Put where a value was; the writer of the text replaces it with a deeply nested collection."""
BOMB = "__FUZZ_BOMB__"
"""Put where a value was; the writer of YAML text replaces it with an alias bomb."""


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``value``: the root, each key of a mapping and each index of a list."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return document


@dataclass(frozen=True)
class Mutant:
    """A mutated document and the paths that were changed."""

    document: Any
    changed: tuple[tuple[Any, ...], ...]


OPERATIONS = ("replace", "replace", "delete", "extra", "deep", "bomb")


@st.composite
def mutants(
    draw: st.DrawFn, valid: dict[str, Any], *, most: int = 3, operations: tuple[str, ...] = OPERATIONS
) -> Mutant:
    """``valid`` with one to ``most`` mutations: values of any type, removed and unknown keys,
    and the :data:`DEEP` and :data:`BOMB` placeholders."""
    document: Any = copy.deepcopy(valid)
    changed: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, most))):
        path = draw(st.sampled_from(paths(document)))
        operation = draw(st.sampled_from(operations))
        if operation == "replace":
            document = _replace(document, path, draw(wild_values))
        elif operation in ("deep", "bomb"):
            document = _replace(document, path, DEEP if operation == "deep" else BOMB)
        elif not path:
            continue
        else:
            parent = document
            for step in path[:-1]:
                parent = parent[step]
            if operation == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                path = (*path[:-1], draw(keys))
                parent[path[-1]] = draw(wild_values)
            else:
                path = (*path[:-1], len(parent))
                parent.append(draw(wild_values))
        changed.append(path)
    return Mutant(document, tuple(changed))
