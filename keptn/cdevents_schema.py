"""Validating a CDEvent against the CDEvents v0.5.1 JSON schemas shipped with Capstan.

The schemas are the upstream files (``keptn/schemas/cdevents/``, Apache-2.0), read once from the
package like the shipyard schema. Each event type has one schema (``$id``
``https://cdevents.dev/0.5.1/schema/<subject>-<predicate>-event``), chosen by ``context.type``;
the link schemas they ``$ref`` are resolved from the same directory, never from the network.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from collections.abc import Mapping
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

from keptn.errors import InvalidEventError

__all__ = ["CDEVENTS_SPEC_VERSION", "SCHEMA_DIR", "known_types", "schema_for", "validate_cdevent"]

CDEVENTS_SPEC_VERSION = "0.5.1"
"""The CDEvents release Capstan speaks (``context.specversion`` of what it emits)."""

SCHEMA_DIR = "schemas/cdevents"
"""Where the schemas live inside the ``keptn`` package."""

_TYPE = re.compile(r"dev\.cdevents\.([a-z]+)\.([a-z]+)\.(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)")


def _documents() -> list[dict[str, Any]]:
    root = importlib.resources.files("keptn").joinpath(SCHEMA_DIR)
    found: list[dict[str, Any]] = []
    for directory in (root, root.joinpath("links")):
        for entry in directory.iterdir():
            if entry.name.endswith(".json"):
                found.append(json.loads(entry.read_text(encoding="utf-8")))
    return found


@functools.cache
def _catalogue() -> tuple[Registry[Any], dict[str, dict[str, Any]]]:
    """The reference registry (every schema by ``$id``) and the event schemas by their type."""
    registry: Registry[Any] = Registry()
    by_type: dict[str, dict[str, Any]] = {}
    for document in _documents():
        registry = registry.with_resource(document["$id"], Resource.from_contents(document))
        enum = document.get("properties", {}).get("context", {}).get("properties", {}).get("type", {})
        for event_type in enum.get("enum", []):
            by_type[event_type] = document
    return registry, by_type


def known_types() -> frozenset[str]:
    """Every CDEvents type of v0.5.1 that has a schema (``dev.cdevents.<subject>.<predicate>.<ver>``)."""
    return frozenset(_catalogue()[1])


def schema_for(event_type: str) -> dict[str, Any] | None:
    """The JSON schema of one CDEvents type, or None for a type v0.5.1 does not define."""
    return _catalogue()[1].get(event_type)


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validate_cdevent(document: Mapping[str, Any]) -> str:
    """Check a CDEvent (the JSON object, not its CloudEvent envelope) against its v0.5.1 schema.

    Args:
        document: the parsed CDEvent, ``{"context": ..., "subject": ..., "customData"?: ...}``.

    Returns:
        Its ``context.type``.

    Raises:
        InvalidEventError: the event is not a v0.5.1 CDEvent of a known type, or breaks its
            schema; ``field`` is the JSON path of the offending value (``subject.content.artifactId``).
    """
    context = document.get("context")
    if not isinstance(context, Mapping):
        raise InvalidEventError("context: required, must be a JSON object", field="context")
    event_type = context.get("type")
    if not isinstance(event_type, str) or not _TYPE.fullmatch(event_type):
        raise InvalidEventError(
            "context.type: must be a CDEvents type dev.cdevents.<subject>.<predicate>.<version>",
            field="context.type",
        )
    if context.get("specversion") != CDEVENTS_SPEC_VERSION:
        raise InvalidEventError(
            f"context.specversion: must be {CDEVENTS_SPEC_VERSION!r}, got {context.get('specversion')!r}",
            field="context.specversion",
        )
    registry, by_type = _catalogue()
    schema = by_type.get(event_type)
    if schema is None:
        raise InvalidEventError(
            f"context.type: {event_type!r} is not a CDEvents {CDEVENTS_SPEC_VERSION} type",
            field="context.type",
        )
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    error = best_match(validator.iter_errors(dict(document)))
    if error is not None:
        parts = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, Mapping):
            # Name the missing property itself, not the object that lacks it.
            missing = [name for name in error.validator_value if name not in error.instance]
            parts += missing[:1]
        where = _path(parts)
        raise InvalidEventError(f"{where or 'body'}: {error.message}", field=where or None)
    return event_type
