"""Safe YAML loading that reads Keptn's files the way Keptn's Go code (``gopkg.in/yaml.v3``) did.

PyYAML implements YAML 1.1, where ``yes``/``no``/``on``/``off`` are booleans, ``010`` is octal,
``1:30`` is sexagesimal and ``2021-05-10`` becomes a ``date`` (which JSON cannot carry). Keptn
read its YAML files with yaml.v3, which follows YAML 1.2's core schema. :func:`load_yaml` does
the same, and like yaml.v3 it rejects duplicate keys (PyYAML silently keeps the last one).

It also rejects documents whose alias expansion would be very large (e.g. "billion laughs"
bombs): the loaded data is walked, as every later consumer would walk it, with a node budget.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

from keptn.errors import InvalidInputError

__all__ = ["MAX_NODES", "load_yaml"]

MAX_NODES = 100_000
"""Largest number of values (after alias expansion) a loaded document may have."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_YAML11_ONLY_TAGS = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


class _CoreSchemaLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars, no timestamps and unique string keys."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found a non-string key {key!r}", key_node.start_mark,
                )  # fmt: skip
            if key in seen:
                raise ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark,
                )  # fmt: skip
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_core_int(self, node: Node) -> int:
        """Read a YAML 1.2 core-schema integer (decimal, ``0o`` octal, ``0x`` hex)."""
        assert isinstance(node, ScalarNode)
        text = str(self.construct_scalar(node))
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)


# Replace YAML 1.1's implicit resolvers for booleans, integers, floats and timestamps by the
# YAML 1.2 core schema's; null and merge keys are the same in both and stay.
_REPLACED_TAGS = (*_YAML11_ONLY_TAGS, "tag:yaml.org,2002:timestamp")
_CoreSchemaLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CoreSchemaLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreSchemaLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_CoreSchemaLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
_CoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _CoreSchemaLoader.construct_core_int)


def _check_size(document: object, *, what: str, field: str) -> None:
    # Iterative on purpose: a recursive alias (&a [*a]) yields a self-containing list.
    budget = MAX_NODES
    stack: list[object] = [document]
    while stack:
        value = stack.pop()
        budget -= 1
        if budget < 0:
            raise InvalidInputError(
                f"{field}: {what} is too large after expanding YAML aliases (more than {MAX_NODES} values)",
                field=field,
            )
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def load_yaml(text: str, *, what: str = "document", field: str = "content") -> Any:
    """Parse one YAML document the way Keptn's Go code did (YAML 1.2 core schema, unique keys).

    Args:
        text: the YAML text.
        what: what the document is (``shipyard``, ``slo.yaml``), for messages.
        field: the input field the text came from, named in the error.

    Returns:
        The loaded value: dicts with string keys, lists, strings, ints, floats, bools or None.
        Dates and times stay strings.

    Raises:
        InvalidInputError: if the text is not valid YAML, has several documents, duplicate or
            non-string keys, or expands to more than :data:`MAX_NODES` values.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"{field}: {what} must be text", field=field)
    try:
        documents = list(yaml.load_all(text, Loader=_CoreSchemaLoader))
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{field}: {what} is not valid YAML: {exc}", field=field) from None
    except RecursionError:
        raise InvalidInputError(f"{field}: {what} is nested too deeply", field=field) from None
    if len(documents) > 1:
        raise InvalidInputError(
            f"{field}: {what} must be a single YAML document, found {len(documents)}", field=field
        )
    document = documents[0] if documents else None
    _check_size(document, what=what, field=field)
    return document
