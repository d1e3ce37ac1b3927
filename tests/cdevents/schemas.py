"""An independent check of CDEvents against the upstream v0.5.1 schemas, for the tests.

Built here with ``jsonschema`` and ``referencing`` straight from the schema files, on purpose not
through ``keptn.cdevents_schema``: the code under test must not check itself. Formats are checked
too where jsonschema can (``date-time`` needs no extra package for RFC 3339 with this regex).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "keptn" / "schemas" / "cdevents"
CONFORMANCE = ROOT / "tests" / "data" / "cdevents" / "conformance"
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _load() -> tuple[Registry[Any], dict[str, dict[str, Any]]]:
    registry: Registry[Any] = Registry()
    by_type: dict[str, dict[str, Any]] = {}
    for path in sorted([*SCHEMAS.glob("*.json"), *SCHEMAS.glob("links/*.json")]):
        schema = json.loads(path.read_text())
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
        for event_type in (
            schema.get("properties", {})
            .get("context", {})
            .get("properties", {})
            .get("type", {})
            .get("enum", [])
        ):
            by_type[event_type] = schema
    return registry, by_type


REGISTRY, BY_TYPE = _load()


def assert_valid_cdevent(cdevent: dict[str, Any]) -> None:
    """Fail unless ``cdevent`` is valid against the v0.5.1 schema of its type."""
    event_type = cdevent["context"]["type"]
    assert event_type in BY_TYPE, f"{event_type} has no v0.5.1 schema"
    assert cdevent["context"]["specversion"] == "0.5.1"
    assert RFC3339.fullmatch(cdevent["context"]["timestamp"]), cdevent["context"]["timestamp"]
    errors = list(
        jsonschema.Draft202012Validator(BY_TYPE[event_type], registry=REGISTRY).iter_errors(cdevent)
    )
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def conformance_examples() -> dict[str, dict[str, Any]]:
    """Every upstream conformance example, by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(CONFORMANCE.glob("*.json"))}
