"""Check emitted Keptn events against Keptn's published JSON schemas (``tests/data/keptn-spec``).

Call :func:`assert_matches_event_schema` on every event Capstan emits (the dict of
``KeptnEvent.to_wire()``, or the JSON an integration received). Independent of ``keptn/`` on
purpose: the code under test must not check itself.

**The envelope is checked strictly** (behaviour spec §2.1), by :data:`ENVELOPE_SCHEMA`:

- ``specversion`` ``"1.0"``; ``id``, ``source`` non-empty strings; ``type`` a Keptn task or
  sequence type (``sh.keptn.event.<task>.<kind>``, ``sh.keptn.event.<stage>.<sequence>.<kind>``)
  or one of ``sh.keptn.event.monitoring.configure``, ``sh.keptn.log.error``,
  ``sh.keptn.events.problem``;
- ``time`` in Keptn's format ``2006-01-02T15:04:05.000Z`` (UTC, milliseconds);
- ``datacontenttype`` ``"application/json"``; ``shkeptncontext`` a canonical lower-case UUID;
- ``data`` an object; ``gitcommitid`` a string and ``shkeptnspecversion`` a non-empty string if
  present;
- ``triggeredid`` a non-empty string, required on every ``started``, ``status.changed``,
  ``finished`` and ``invalidated`` event and absent on ``triggered`` events;
- any other attribute is a CloudEvents extension: name ``^[a-z0-9]{1,20}$``, value a string,
  integer or boolean. No attribute may be null.

**``data`` is checked with a relaxed reading** of the schema named after the type
(``<task>-<kind>.schema.json``, e.g. ``deployment-triggered``; ``monitoring.configure`` uses
``configure-monitoring``, ``sh.keptn.log.error`` ``error-log``, ``sh.keptn.events.problem``
``problem``). Types without a schema (sequence events, custom tasks) are checked against
:data:`COMMON_DATA_SCHEMA` (the common fields of every event). The relaxations, and nothing else:

1. ``required`` is dropped everywhere: missing data fields are allowed (Keptn's own services
   leave many out).
2. ``additionalProperties: false`` is dropped everywhere: extra properties are allowed (the
   payload merge carries earlier task data into later events; lighthouse adds ``comparedValue``).
3. ``null`` is allowed wherever a type or an enum is given (Go marshals nil slices, maps and
   pointers as ``null``; lighthouse emits ``null`` lists).
4. Two enums are widened to what Keptn's code sends: ``status`` also admits ``aborted``
   (go-utils ``StatusAborted``), an indicator result's ``status`` (``SLIEvaluationResult``)
   also admits ``info`` (lighthouse's informational objectives).

Kept: the JSON types of every field present (strings, numbers, booleans, arrays, objects, string
labels) and every other enum (``result`` pass/warning/fail, ``deploymentstrategy``,
``teststrategy``, approval ``pass``/``warning``).
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

__all__ = [
    "COMMON_DATA_SCHEMA",
    "ENVELOPE_SCHEMA",
    "assert_matches_event_schema",
    "event_kind",
    "matches_event_schema",
    "relaxed_schema",
    "schema_name",
]

EVENTS_DIR = Path(__file__).parent / "data" / "keptn-spec" / "events"
PREFIX = "sh.keptn.event."
KINDS = ("triggered", "started", "status.changed", "finished", "invalidated")
SPECIAL_SCHEMAS = {
    "sh.keptn.event.monitoring.configure": "configure-monitoring",
    "sh.keptn.log.error": "error-log",
    "sh.keptn.events.problem": "problem",
}

_NAME = r"[^.]+"
_KIND = r"(?:triggered|started|status\.changed|finished|invalidated)"
TYPE_PATTERN = (
    rf"^(?:sh\.keptn\.event\.{_NAME}(?:\.{_NAME})?\.{_KIND}"
    r"|sh\.keptn\.event\.monitoring\.configure|sh\.keptn\.log\.error|sh\.keptn\.events\.problem)$"
)
KEPTN_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["specversion", "id", "source", "type", "time", "datacontenttype", "shkeptncontext", "data"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1},
        "type": {"type": "string", "pattern": TYPE_PATTERN},
        "time": {"type": "string", "pattern": KEPTN_TIME_PATTERN},
        "datacontenttype": {"const": "application/json"},
        "shkeptncontext": {"type": "string", "pattern": UUID_PATTERN},
        "triggeredid": {"type": "string", "minLength": 1},
        "gitcommitid": {"type": "string"},
        "shkeptnspecversion": {"type": "string", "minLength": 1},
        "data": {"type": "object"},
    },
    # Extensions: every other lower-case name (the lookahead keeps "data" & co. out of this rule).
    "patternProperties": {
        "^(?!(?:specversion|id|source|type|time|datacontenttype|shkeptncontext|triggeredid|gitcommitid"
        "|shkeptnspecversion|data)$)[a-z0-9]{1,20}$": {"type": ["string", "integer", "boolean"]}
    },
    "additionalProperties": False,
}

COMMON_DATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "project": {"type": "string"},
        "stage": {"type": "string"},
        "service": {"type": "string"},
        "labels": {"type": "object", "patternProperties": {".*": {"type": "string"}}},
        "status": {"type": "string", "enum": ["succeeded", "errored", "unknown"]},
        "result": {"type": "string", "enum": ["pass", "warning", "fail"]},
        "message": {"type": "string"},
    },
}

_STATUS_ENUM = ["succeeded", "errored", "unknown"]


def schema_name(event_type: str) -> str | None:
    """The base name of the schema file for an event type (which may not exist), or None."""
    if event_type in SPECIAL_SCHEMAS:
        return SPECIAL_SCHEMAS[event_type]
    if not event_type.startswith(PREFIX):
        return None
    rest = event_type[len(PREFIX) :]
    for kind in KINDS:
        if rest.endswith("." + kind):
            subject = rest[: -len(kind) - 1]
            return f"{subject.replace('.', '-')}-{kind.replace('.', '-')}"
    return None


def _relax(node: Any) -> Any:
    if isinstance(node, list):
        return [_relax(item) for item in node]
    if not isinstance(node, dict):
        return node
    relaxed: dict[str, Any] = {}
    for key, value in node.items():
        if key == "required":
            continue  # relaxation 1
        if key == "additionalProperties" and value is False:
            continue  # relaxation 2
        if key in ("properties", "definitions", "patternProperties"):
            relaxed[key] = {name: _relax(sub) for name, sub in value.items()}
        elif key == "type":
            types = value if isinstance(value, list) else [value]
            relaxed[key] = [*types, "null"] if "null" not in types else types  # relaxation 3
        elif key == "enum":
            values = list(value)
            if values == _STATUS_ENUM:
                values.append("aborted")  # relaxation 4
            relaxed[key] = [*values, None] if None not in values else values  # relaxation 3
        else:
            relaxed[key] = _relax(value)
    return relaxed


def relaxed_schema(data_schema: dict[str, Any]) -> dict[str, Any]:
    """Apply the relaxed reading (see the module docstring) to a data schema."""
    relaxed: dict[str, Any] = _relax(copy.deepcopy(data_schema))
    indicator = relaxed.get("definitions", {}).get("SLIEvaluationResult", {})
    status = indicator.get("properties", {}).get("status")
    if status is not None:
        status["enum"] = [*status["enum"], "info"]  # relaxation 4
    return relaxed


@functools.cache
def _data_validator(name: str | None) -> jsonschema.protocols.Validator:
    path = EVENTS_DIR / f"{name}.schema.json" if name else None
    schema = json.loads(path.read_text("utf-8")) if path is not None and path.exists() else COMMON_DATA_SCHEMA
    relaxed = relaxed_schema(schema)
    return jsonschema.Draft4Validator(relaxed)


_ENVELOPE_VALIDATOR = jsonschema.Draft7Validator(ENVELOPE_SCHEMA)


def _describe(errors: list[jsonschema.ValidationError], where: str) -> list[str]:
    lines = []
    for error in errors:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        lines.append(f"{where}{path}: {error.message}")
    return lines


def event_kind(event_type: str) -> str | None:
    """The kind of a task or sequence event type (``status.changed`` included), else None."""
    for kind in KINDS:
        if event_type.startswith(PREFIX) and event_type.endswith("." + kind):
            return kind
    return None


def matches_event_schema(event: dict[str, Any]) -> list[str]:
    """All problems of a wire event under the strict envelope and relaxed data reading."""
    problems = _describe(list(_ENVELOPE_VALIDATOR.iter_errors(event)), "event")
    event_type = event.get("type")
    if not isinstance(event_type, str):
        return problems
    kind = event_kind(event_type)
    if kind == "triggered" and "triggeredid" in event:
        problems.append("event.triggeredid: must be absent on a .triggered event")
    if kind is not None and kind != "triggered" and "triggeredid" not in event:
        problems.append(f"event.triggeredid: required on a .{kind} event")
    data = event.get("data")
    if isinstance(data, dict):
        validator = _data_validator(schema_name(event_type))
        problems += _describe(list(validator.iter_errors(data)), "event.data")
    return problems


def assert_matches_event_schema(event: dict[str, Any]) -> None:
    """Fail (AssertionError listing every problem) unless ``event`` matches Keptn's schemas.

    Args:
        event: a Keptn event as a wire dict (``KeptnEvent.to_wire()`` or received JSON).
    """
    problems = matches_event_schema(event)
    if problems:
        raise AssertionError(
            f"event of type {event.get('type')!r} does not match Keptn's schemas:\n  " + "\n  ".join(problems)
        )
