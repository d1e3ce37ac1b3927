"""Safe YAML loading that reads Keptn's files the way Keptn's Go code (``gopkg.in/yaml.v3``) did.

PyYAML implements YAML 1.1, where ``yes``/``no``/``on``/``off`` are booleans, ``010`` is octal,
``1:30`` is sexagesimal and ``2021-05-10`` becomes a ``date`` (which JSON cannot carry). Keptn
read its YAML files with yaml.v3, which follows YAML 1.2's core schema. :func:`load_yaml` does
the same, and like yaml.v3 it rejects duplicate keys (PyYAML silently keeps the last one).

It also rejects documents whose alias expansion would be very large (e.g. "billion laughs"
bombs): the loaded data is walked, as every later consumer would walk it, with a node budget.

Two loaders, one behaviour. PyYAML's pure-Python parser (``yaml.SafeLoader``) is the reference:
its results and its error messages (with their line/column marks and source snippets) are the
contract. With libyaml (``yaml.__with_libyaml__``), a ``yaml.CSafeLoader`` with the same
resolvers and constructors parses first, 6-7x faster. libyaml (0.2.5 and later) and the pure
parser do not accept quite the same language, so libyaml's answer is used only where they agree;
everywhere else the pure loader decides and its answer is returned unchanged
(:func:`_load_documents`):

* every error: libyaml words parser errors differently and its marks carry no source snippet,
  so no error is reported from libyaml; the text is parsed again by the pure loader;
* text where libyaml accepts what the pure parser rejects, or reads it differently (found by
  differential fuzzing; ``tests/keptn/test_yaml_loader.py`` has the cases), matched by
  :func:`_pure_only`:

  - a tab: libyaml takes it as separation (``a:<TAB>b``);
  - a byte order mark after the first character: libyaml skips one at the start of any line;
  - ``?``: libyaml allows it inside plain scalars in flow collections (``[a?]``);
  - a ``!`` where a tag can start: libyaml reads an empty value with the non-specific tag
    ``!`` as ``''``, the pure parser as null (``a: !``), and libyaml accepts ``{!,}``;
  - ``#`` right after a block scalar header (``|#``): libyaml takes it as a comment.

  Keptn's files rarely have any of them;
* documents nested more than :data:`_FAST_MAX_DEPTH` deep as written: the pure composer
  recurses and ends in ``RecursionError`` ("nested too deeply") at about 450 levels, libyaml
  allows 1000.

The one remaining difference: a document at most 64 deep that the pure loader would have failed
on only because it was called with the Python stack already within ~140 frames of the recursion
limit now loads.
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


class _CoreSchemaConstructor(yaml.constructor.SafeConstructor):
    """SafeConstructor with YAML 1.2 core-schema integers and unique string keys (both loaders)."""

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


class _CoreSchemaLoader(_CoreSchemaConstructor, yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars, no timestamps and unique string keys."""


def _construct_core_int(constructor: yaml.SafeLoader | yaml.CSafeLoader, node: Node) -> int:
    """Read a YAML 1.2 core-schema integer (decimal, ``0o`` octal, ``0x`` hex)."""
    assert isinstance(node, ScalarNode)
    text = str(constructor.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


_TAG_START = re.compile(r"(?:^|[\s\ufeff\[\]{},:])!")
"""A ``!`` where a tag can start (``status!="500"`` inside a query is not one)."""

_BLOCK_HEADER_COMMENT = re.compile(r"[|>][-+0-9]*#")


def _pure_only(text: str) -> bool:
    """Whether libyaml could read ``text`` differently from the pure loader (module docstring)."""
    return (
        "\t" in text
        or "?" in text
        or text.find("\ufeff", 1) != -1
        or ("!" in text and _TAG_START.search(text) is not None)
        or ("#" in text and _BLOCK_HEADER_COMMENT.search(text) is not None)
    )


_FAST_MAX_DEPTH = 64
"""Deepest nesting the libyaml loader decides alone; deeper documents go to the pure loader."""


class _PureLoaderDecides(Exception):
    """The libyaml loader leaves this document to the pure loader (see the module docstring)."""


def _deeper_than(root: Node, limit: int) -> bool:
    """Whether the node tree nests more than ``limit`` deep as written.

    That is the depth the pure composer recurses to: an alias is a leaf there, so a node counts
    where it first occurs (its anchor), not where an alias repeats it.
    """
    seen: set[int] = set()
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:  # depth-first in document order: the first visit of a node is where it is written
        node, depth = stack.pop()
        if isinstance(node, ScalarNode) or id(node) in seen or not node.value:
            continue
        seen.add(id(node))
        if depth >= limit:
            return True  # its entries are nested deeper than the limit
        depth += 1
        if isinstance(node, MappingNode):
            for key_node, value_node in reversed(node.value):
                if not isinstance(value_node, ScalarNode):
                    stack.append((value_node, depth))
                if not isinstance(key_node, ScalarNode):
                    stack.append((key_node, depth))
        else:
            stack.extend((item, depth) for item in reversed(node.value) if not isinstance(item, ScalarNode))
    return False


_FastCoreSchemaLoader: type[yaml.CSafeLoader] | None = None
"""The libyaml loader, None without libyaml."""


def _use_core_schema(loader: type[yaml.resolver.BaseResolver]) -> None:
    """Resolve plain scalars by the YAML 1.2 core schema.

    YAML 1.1's implicit resolvers for booleans, integers, floats and timestamps are replaced by
    the core schema's; null and merge keys are the same in both and stay.
    """
    loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED_TAGS]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:int",
        re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
        list("-+0123456789"),
    )
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+.0123456789"),
    )


_REPLACED_TAGS = (*_YAML11_ONLY_TAGS, "tag:yaml.org,2002:timestamp")
_use_core_schema(_CoreSchemaLoader)
_CoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _construct_core_int)

if yaml.__with_libyaml__:

    class _CSafeCoreSchemaLoader(_CoreSchemaConstructor, yaml.CSafeLoader):
        """:class:`_CoreSchemaLoader` on libyaml; leaves deep documents to the pure loader."""

        def construct_document(self, node: Node) -> Any:
            if _deeper_than(node, _FAST_MAX_DEPTH):
                raise _PureLoaderDecides
            return super().construct_document(node)

    _use_core_schema(_CSafeCoreSchemaLoader)
    _CSafeCoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _construct_core_int)
    _FastCoreSchemaLoader = _CSafeCoreSchemaLoader


def _load_documents(text: str) -> list[Any]:
    """Every document of ``text``, as the pure loader reads it.

    libyaml's result where it agrees with the pure loader; otherwise the pure loader's result or
    exception (see the module docstring).
    """
    if _FastCoreSchemaLoader is not None and not _pure_only(text):
        try:
            return list(yaml.load_all(text, Loader=_FastCoreSchemaLoader))
        except Exception:  # any failure: the pure loader decides, with its own message and marks
            pass
    return list(yaml.load_all(text, Loader=_CoreSchemaLoader))


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
        documents = _load_documents(text)
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
    if ("\\u" in text or "\\U" in text) and _has_surrogate(document):
        # The pure loader reads "\ud83d\ude00" as two lone surrogates (libyaml refuses them): no
        # UTF-8 text, no JSON response and no database can hold one.
        raise InvalidInputError(
            f"{field}: {what} is not valid YAML: a \\u escape is half of a UTF-16 surrogate pair,"
            " not a character (write the character itself)",
            field=field,
        )
    return document


def _has_surrogate(document: object) -> bool:
    """Whether any string (key or value) in a loaded document holds a lone surrogate."""
    stack: list[object] = [document]
    seen: set[int] = set()  # aliases repeat containers; _check_size has bounded the total already
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and any("\ud800" <= char <= "\udfff" for char in value):
                return True
        elif isinstance(value, dict | list) and id(value) not in seen:
            seen.add(id(value))
            stack.extend([*value.keys(), *value.values()] if isinstance(value, dict) else value)
    return False
