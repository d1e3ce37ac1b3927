"""The shipyard file (``spec.keptn.sh/0.2.x``): parsing, validation and lookups (behaviour spec §1.1).

:func:`parse_shipyard` reads the YAML (:mod:`keptn.yaml_loader`: YAML 1.2 like Keptn's yaml.v3,
duplicate keys rejected), checks it against Keptn's JSON schema (``keptn/spec``
``schemas/shipyard.json``, draft-04, shipped as ``keptn/schemas/shipyard.schema.json``) and then
applies Keptn's own rules plus the ones that keep event routing working. Every error is an
:class:`~keptn.errors.InvalidShipyardError` whose ``field`` is a path such as
``spec.stages[1].sequences[0].tasks`` and whose message starts with that path.

Deliberate readings of the schema:

* a stage may omit ``sequences`` (the schema requires it, Keptn never did: its docs and the
  quality-gates tutorials use stages without sequences, which still have the built-in
  ``evaluation`` sequence);
* a structural key whose value is ``null`` counts as absent (Go decodes it to a nil slice/map),
  e.g. ``triggeredOn:`` with nothing after it; inside ``properties`` nulls are kept as data.
"""

from __future__ import annotations

import datetime
import functools
import importlib.resources
import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from pydantic import BaseModel, ConfigDict, Field

from keptn.durations import parse_duration
from keptn.errors import InvalidInputError, InvalidNameError, InvalidShipyardError
from keptn.names import validate_stage_name
from keptn.yaml_loader import load_yaml

__all__ = [
    "BUILTIN_EVALUATION_SEQUENCE",
    "SHIPYARD_API_VERSION_PREFIX",
    "Selector",
    "Sequence",
    "Shipyard",
    "ShipyardMetadata",
    "ShipyardSpec",
    "Stage",
    "Task",
    "Trigger",
    "parse_shipyard",
    "validate_shipyard_document",
]

SHIPYARD_API_VERSION_PREFIX = "spec.keptn.sh/"
_MIN_VERSION = (0, 2, 0)
# Masterminds/semver v3 NewVersion (loose: "v" prefix, missing minor/patch allowed).
_SEMVER = re.compile(
    r"v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
_TRIGGER_EVENT = re.compile(r"([^.]+)\.([^.]+)\.finished")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Selector(_Model):
    """Which result of the finished sequence fires a trigger (``result`` or ``<task>.result``)."""

    match: dict[str, str] = Field(default_factory=dict)


class Trigger(_Model):
    """A ``triggeredOn`` entry: ``event`` is ``<stage>.<sequence>.finished``."""

    event: str
    selector: Selector | None = None

    @property
    def stage_and_sequence(self) -> tuple[str, str]:
        """The ``(stage, sequence)`` whose ``.finished`` fires this trigger."""
        stage, sequence, _ = self.event.split(".")
        return stage, sequence


class Task(_Model):
    """A task of a sequence; ``properties`` go to ``data.<name>`` of its ``.triggered`` event."""

    name: str
    triggeredAfter: str | None = None
    properties: dict[str, Any] | None = None

    def triggered_after_delta(self) -> datetime.timedelta:
        """The delay before the task's ``.triggered`` event is sent (zero if none).

        Returns:
            ``triggeredAfter`` parsed as a Go duration (validated by :func:`parse_shipyard`).
        """
        if not self.triggeredAfter:
            return datetime.timedelta(0)
        return parse_duration(self.triggeredAfter, field="triggeredAfter")


class Sequence(_Model):
    """An ordered list of tasks, optionally started when other sequences finish."""

    name: str
    triggeredOn: list[Trigger] = Field(default_factory=list)
    tasks: list[Task]


BUILTIN_EVALUATION_SEQUENCE = Sequence(name="evaluation", tasks=[Task(name="evaluation")])
"""What every stage without its own ``evaluation`` sequence runs on ``<stage>.evaluation.triggered``."""


class Stage(_Model):
    """A stage and its sequences."""

    name: str
    sequences: list[Sequence] = Field(default_factory=list)

    def sequence(self, name: str) -> Sequence | None:
        """Find a sequence by name, as Keptn's ``GetTaskSequenceInStage`` does.

        A stage that defines no sequence called ``evaluation`` still has the built-in one
        (``{name: evaluation, tasks: [{name: evaluation}]}``), so that evaluations can be
        triggered in every stage.

        Args:
            name: the sequence name.

        Returns:
            The sequence, the built-in evaluation sequence, or None.
        """
        for sequence in self.sequences:
            if sequence.name == name:
                return sequence
        if name == BUILTIN_EVALUATION_SEQUENCE.name:
            return BUILTIN_EVALUATION_SEQUENCE
        return None


class ShipyardMetadata(_Model):
    """``metadata`` of a shipyard."""

    name: str


class ShipyardSpec(_Model):
    """``spec`` of a shipyard."""

    stages: list[Stage]


class Shipyard(_Model):
    """A validated shipyard; field names are those of the YAML."""

    apiVersion: str
    kind: str
    metadata: ShipyardMetadata
    spec: ShipyardSpec

    def stage(self, name: str) -> Stage | None:
        """Find a stage by name.

        Args:
            name: the stage name.

        Returns:
            The stage, or None.
        """
        for stage in self.spec.stages:
            if stage.name == name:
                return stage
        return None

    def stage_names(self) -> list[str]:
        """The stage names in shipyard order.

        Returns:
            A new list of names.
        """
        return [stage.name for stage in self.spec.stages]


@functools.cache
def _validator() -> jsonschema.Draft4Validator:
    text = importlib.resources.files("keptn").joinpath("schemas/shipyard.schema.json").read_text("utf-8")
    schema = json.loads(text)
    # Keptn never required sequences (see the module docstring); the schema file stays verbatim.
    stage = schema["definitions"]["Stage"]
    stage["required"] = [name for name in stage["required"] if name != "sequences"]
    return jsonschema.Draft4Validator(schema)


def _path(parts: Iterator[Any] | list[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _schema_error(error: jsonschema.ValidationError) -> InvalidShipyardError:
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = next(name for name in error.validator_value if name not in error.instance)
        field = _path([*path, missing])
        return InvalidShipyardError(f"{field}: required property is missing", field=field)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        extra = next(name for name in error.instance if name not in allowed)
        field = _path([*path, extra])
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return InvalidShipyardError(f"{field}: unknown property{hint}", field=field)
    field = _path(path) or "shipyard"
    if error.validator == "type":
        return InvalidShipyardError(
            f"{field}: must be of type {error.validator_value}, not {_json_type(error.instance)}",
            field=field,
        )
    return InvalidShipyardError(f"{field}: {error.message}", field=field)


def _drop_nulls(value: Any, keys_to_descend: dict[str, Any]) -> Any:
    # Go reads a null list or map as empty; treat null structural values as absent (see module doc).
    if isinstance(value, list):
        return [_drop_nulls(item, keys_to_descend) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: _drop_nulls(item, keys_to_descend[key]) if key in keys_to_descend else item
        for key, item in value.items()
        if item is not None
    }


_TASK: dict[str, Any] = {}
_TRIGGER: dict[str, Any] = {"selector": {}}
_SEQUENCE: dict[str, Any] = {"triggeredOn": _TRIGGER, "tasks": _TASK}
_STAGE: dict[str, Any] = {"sequences": _SEQUENCE}
_DOCUMENT: dict[str, Any] = {"metadata": {}, "spec": {"stages": _STAGE}}


def _check_version(api_version: str) -> None:
    version = api_version.removeprefix(SHIPYARD_API_VERSION_PREFIX)
    match = _SEMVER.fullmatch(version)
    if match is None:
        raise InvalidShipyardError(
            f"apiVersion: could not parse shipyard version {api_version!r}"
            f" (expected {SHIPYARD_API_VERSION_PREFIX}<semver>, e.g. {SHIPYARD_API_VERSION_PREFIX}0.2.4)",
            field="apiVersion",
        )
    major, minor, patch, prerelease, _ = match.groups()
    number = (int(major), int(minor or 0), int(patch or 0))
    # Masterminds' ">= 0.2" also rejects every pre-release version.
    if number < _MIN_VERSION or prerelease:
        raise InvalidShipyardError(
            f"apiVersion: Invalid shipyard APIVersion {api_version}. Expected >= 0.2", field="apiVersion"
        )


def _check_name_part(field: str, what: str, name: str) -> None:
    if not name:
        raise InvalidShipyardError(f"{field}: {what} name must not be empty", field=field)
    if "." in name:
        raise InvalidShipyardError(
            f"{field}: {what} name {name!r} must not contain dots (event types are split on dots)",
            field=field,
        )


def _check_sequence(where: str, stage_name: str, sequence: Sequence) -> None:
    if not sequence.tasks:
        raise InvalidShipyardError(
            f"{where}.tasks: sequence {sequence.name!r} in stage {stage_name!r} must have at least one task",
            field=f"{where}.tasks",
        )
    for k, task in enumerate(sequence.tasks):
        _check_name_part(f"{where}.tasks[{k}].name", "task", task.name)
        if task.triggeredAfter is not None:
            field = f"{where}.tasks[{k}].triggeredAfter"
            try:
                parse_duration(task.triggeredAfter, field=field)
            except InvalidInputError as exc:
                raise InvalidShipyardError(exc.message, field=field) from None
    for k, trigger in enumerate(sequence.triggeredOn):
        if not _TRIGGER_EVENT.fullmatch(trigger.event):
            field = f"{where}.triggeredOn[{k}].event"
            raise InvalidShipyardError(
                f"{field}: {trigger.event!r} must have the form <stage>.<sequence>.finished", field=field
            )


def _check_keptn_rules(shipyard: Shipyard) -> None:
    _check_version(shipyard.apiVersion)
    if not shipyard.spec.stages:
        raise InvalidShipyardError(
            "spec.stages: Shipyard must contain at least one stage."
            " Please update the Shipyard file and try again.",
            field="spec.stages",
        )
    stage_index: dict[str, int] = {}
    for i, stage in enumerate(shipyard.spec.stages):
        field = f"spec.stages[{i}].name"
        if not stage.name:
            raise InvalidShipyardError(
                f"{field}: all stages within the shipyard must have a name", field=field
            )
        try:
            validate_stage_name(stage.name, field=field)
        except InvalidNameError as exc:
            raise InvalidShipyardError(
                f"{exc.message} Please update stage name in your shipyard and try again.", field=field
            ) from None
        if stage.name in stage_index:
            raise InvalidShipyardError(
                f"{field}: stage name {stage.name!r} is already used by"
                f" spec.stages[{stage_index[stage.name]}]",
                field=field,
            )
        stage_index[stage.name] = i
        sequence_index: dict[str, int] = {}
        for j, sequence in enumerate(stage.sequences):
            where = f"spec.stages[{i}].sequences[{j}]"
            _check_name_part(f"{where}.name", "sequence", sequence.name)
            if sequence.name in sequence_index:
                raise InvalidShipyardError(
                    f"{where}.name: sequence name {sequence.name!r} is already used in stage"
                    f" {stage.name!r} by spec.stages[{i}].sequences[{sequence_index[sequence.name]}]",
                    field=f"{where}.name",
                )
            sequence_index[sequence.name] = j
            _check_sequence(where, stage.name, sequence)


def validate_shipyard_document(document: object) -> Shipyard:
    """Validate an already-loaded shipyard (e.g. from JSON) and build the model.

    Args:
        document: the loaded YAML or JSON value.

    Returns:
        The shipyard.

    Raises:
        InvalidShipyardError: naming the path of the first problem found.
    """
    if not isinstance(document, dict):
        raise InvalidShipyardError(
            "shipyard: must be a mapping with apiVersion, kind, metadata and spec,"
            f" not {_json_type(document)}",
            field="shipyard",
        )
    document = _drop_nulls(document, _DOCUMENT)
    error = best_match(_validator().iter_errors(document))
    if error is not None:
        raise _schema_error(error)
    shipyard = Shipyard.model_validate(document)
    _check_keptn_rules(shipyard)
    return shipyard


def parse_shipyard(text: str) -> Shipyard:
    """Parse and validate a ``shipyard.yaml``.

    Checks, in order: YAML (one document, unique keys, a mapping); Keptn's JSON schema (with the
    readings in the module docstring); ``apiVersion`` ``spec.keptn.sh/<semver>`` with semver
    >= 0.2.0 (Keptn, like us, also accepts the bare version); at least one stage; stage names
    present, valid Keptn entity names and unique; sequence names non-empty, free of dots and
    unique within their stage; every sequence has at least one task; task names non-empty and
    free of dots; ``triggeredAfter`` a Go duration; ``triggeredOn[].event`` of the form
    ``<stage>.<sequence>.finished``. Keptn did not check uniqueness, dots, ``triggeredAfter``
    (it logged a bad one and sent the task at once) or trigger events; Capstan rejects such
    shipyards up front because they could never run as written. ``kind`` is not checked (Keptn
    did not either).

    Args:
        text: the YAML text.

    Returns:
        The shipyard.

    Raises:
        InvalidShipyardError: naming the path of the first problem found.
    """
    try:
        document = load_yaml(text, what="shipyard", field="shipyard")
    except InvalidInputError as exc:
        raise InvalidShipyardError(exc.message, field=exc.field) from None
    return validate_shipyard_document(document)
