"""The mongodb-datastore ``filter`` syntax, parsed and compiled to parameterised SQL. Pure code.

Keptn's ``GET /event/type/{eventType}?filter=...`` takes clauses joined by `` AND ``; each clause
is ``key:value`` or ``key:v1,v2`` (any of the values). Keys are JSON paths into the CloudEvent:
``data.project``, ``data.result``, ``shkeptncontext``, ``source``, ``id``, ``triggeredid``, ``type``.

Capstan maps the keys it keeps as columns to those columns and every other path to jsonb
containment on the stored event, so a value is always a query parameter, never SQL text.
Differences from Keptn, which silently ignored clauses it could not split: a malformed clause is a
400 naming it, and a value may contain ``:`` (the key ends at the first one), so
``source:https://github.com/keptn/keptn/cli`` works.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from keptn.errors import InvalidInputError

FILTER_PARAMETER = "filter"

COLUMN_KEYS: dict[str, str] = {
    "data.project": "project",
    "data.stage": "stage",
    "data.service": "service",
    "shkeptncontext": "shkeptncontext",
    "source": "source",
    "id": "id",
    "triggeredid": "triggeredid",
    "type": "type",
}
"""Filter keys stored as columns of ``events``, with their column."""

ENVELOPE_KEYS = frozenset({"specversion", "time", "datacontenttype", "gitcommitid", "shkeptnspecversion"})
"""Other CloudEvent attributes a filter may name (matched in the stored wire event)."""

_AND = re.compile(r"\s+AND\s+")


@dataclass(frozen=True)
class FilterClause:
    """One ``key:v1,v2`` clause: the event matches when the value at ``key`` is any of ``values``."""

    key: str
    values: tuple[str, ...]


def _invalid(clause: str, why: str) -> InvalidInputError:
    return InvalidInputError(
        f"invalid filter clause '{clause}': {why} (expected key:value or key:value1,value2, "
        "clauses joined by ' AND ')",
        field=FILTER_PARAMETER,
    )


def parse_filter(text: str) -> list[FilterClause]:
    """Parse a datastore filter.

    Args:
        text: e.g. ``data.project:sockshop AND data.result:pass,warning``.

    Returns:
        The clauses, in the order written.

    Raises:
        InvalidInputError: the filter is empty, a clause has no ``:``, an empty key, value or path
            segment, or names a key that is not a CloudEvent attribute or a ``data.`` path.
    """
    if not text.strip():
        raise InvalidInputError("the filter must not be empty", field=FILTER_PARAMETER)
    clauses: list[FilterClause] = []
    for raw in _AND.split(text.strip()):
        key, sep, value_text = raw.partition(":")
        key = key.strip()
        if not sep:
            raise _invalid(raw, "no ':' between key and value")
        if not key:
            raise _invalid(raw, "the key is empty")
        if any(not segment for segment in key.split(".")):
            raise _invalid(raw, "the key has an empty path segment")
        if key not in COLUMN_KEYS and key not in ENVELOPE_KEYS and not key.startswith("data."):
            raise _invalid(raw, f"unknown key '{key}'; use a CloudEvent attribute or a data.* path")
        values = tuple(v.strip() for v in value_text.split(","))
        if any(not v for v in values):
            raise _invalid(raw, "a value is empty")
        clauses.append(FilterClause(key=key, values=values))
    return clauses


def _nested(path: Sequence[str], value: str) -> dict[str, Any]:
    document: dict[str, Any] = {path[-1]: value}
    for segment in reversed(path[:-1]):
        document = {segment: document}
    return document


@dataclass
class SqlConditions:
    """WHERE conditions and their positional arguments, built up clause by clause.

    Column and alias names come only from this module's constants; every value is an argument.

    Args:
        alias: the alias of the ``events`` table in the query. Default ``e``.
    """

    alias: str = "e"
    conditions: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def param(self, value: Any) -> str:
        """Register an argument and return its placeholder (``$1``, ``$2``, ...)."""
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, condition: str) -> None:
        """Add a condition written by Capstan (never one containing client text)."""
        self.conditions.append(condition)

    def column_equals(self, column: str, value: Any) -> None:
        """``<alias>.<column> = value``."""
        self.add(f"{self.alias}.{column} = {self.param(value)}")

    def add_clause(self, clause: FilterClause) -> None:
        """Add the condition of one filter clause."""
        column = COLUMN_KEYS.get(clause.key)
        if column is not None:
            if len(clause.values) == 1:
                self.column_equals(column, clause.values[0])
            else:
                self.add(f"{self.alias}.{column} = ANY({self.param(list(clause.values))}::text[])")
            return
        path = clause.key.split(".")
        if path[0] == "data":
            # containment on event->'data' can use the GIN index of that expression
            target, path = f"({self.alias}.event -> 'data')", path[1:]
        else:
            target = f"{self.alias}.event"
        alternatives = [f"{target} @> {self.param(_nested(path, v))}::jsonb" for v in clause.values]
        self.add(alternatives[0] if len(alternatives) == 1 else "(" + " OR ".join(alternatives) + ")")

    def where(self) -> str:
        """The conditions as a WHERE clause (empty when there are none)."""
        return "WHERE " + " AND ".join(self.conditions) if self.conditions else ""
