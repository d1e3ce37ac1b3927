"""Keptn's naming rule for projects, stages and services (go-utils ``ValidateKeptnEntityName``).

Keptn compiles ``(^[a-z][a-z0-9-]*[a-z0-9]$)|(^[a-z][a-z0-9]*)`` and accepts a name when the
*leftmost match* (Go's ``FindString``) is as long as the whole name. The second alternative is
not anchored at the end, so on its own it would accept any name that merely starts well; the
length comparison is what anchors it. The effective rule is therefore: a lower-case ASCII letter,
then lower-case letters, digits and hyphens, not ending in a hyphen (``a``, ``dev``, ``my-svc2``
are valid; ``Dev``, ``1st``, ``dev-``, ``dev.eu``, ``dev_eu`` are not). Go's ``$`` (without
``(?m)``) matches only at the very end, so a trailing newline is invalid too.

Length limits are Keptn's defaults: projects 200 characters (``PROJECT_NAME_MAX_SIZE``),
services 43 (``SERVICE_NAME_MAX_SIZE``, so that helm-service's ``<service>-generated`` release
name fits in 53). Keptn has no limit for stage names, and neither has Capstan.
"""

from __future__ import annotations

import re

from keptn.errors import InvalidNameError

__all__ = [
    "ENTITY_NAME_PATTERN",
    "ENTITY_NAME_RULE",
    "PROJECT_NAME_MAX_LENGTH",
    "SERVICE_NAME_MAX_LENGTH",
    "STAGE_NAME_MAX_LENGTH",
    "is_valid_entity_name",
    "validate_project_name",
    "validate_service_name",
    "validate_stage_name",
]

ENTITY_NAME_PATTERN = r"(^[a-z][a-z0-9-]*[a-z0-9]$)|(^[a-z][a-z0-9]*)"
"""The regular expression exactly as go-utils compiles it (see the module docstring)."""

ENTITY_NAME_RULE = "start with a lower case letter, then lower case letters, numbers, and hyphens are allowed"
"""Keptn's wording of the rule, used in its error messages."""

PROJECT_NAME_MAX_LENGTH = 200
SERVICE_NAME_MAX_LENGTH = 43
STAGE_NAME_MAX_LENGTH: int | None = None

# The two alternatives, each matched against the whole name: this is what "leftmost match as
# long as the name" amounts to. fullmatch() avoids Python's "$ matches before a final newline".
_WITH_HYPHENS = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")
_WITHOUT_HYPHENS = re.compile(r"[a-z][a-z0-9]*")


def is_valid_entity_name(name: str) -> bool:
    """Tell whether ``name`` passes Keptn's entity name rule (length limits not included).

    Args:
        name: a project, stage or service name.

    Returns:
        True if Keptn's ``ValidateKeptnEntityName`` would accept it.
    """
    if not isinstance(name, str) or name == "":
        return False
    return bool(_WITH_HYPHENS.fullmatch(name) or _WITHOUT_HYPHENS.fullmatch(name))


def _validate(name: object, *, what: str, field: str, max_length: int | None) -> str:
    if not isinstance(name, str) or name == "":
        raise InvalidNameError(f"{field}: {what} name missing", field=field)
    # Go's len() counts bytes; valid names are ASCII, so this only matters for the message.
    length = len(name.encode("utf-8"))
    if max_length is not None and length > max_length:
        raise InvalidNameError(
            f"{field}: {what} name exceeds maximum length of {max_length} characters ({length} given)",
            field=field,
        )
    if not is_valid_entity_name(name):
        raise InvalidNameError(
            f"{field}: {what.capitalize()} name {name!r} contains upper case letter(s) or special"
            f" character(s). Keptn relies on the following conventions: {ENTITY_NAME_RULE}.",
            field=field,
        )
    return name


def validate_project_name(
    name: str, *, field: str = "project", max_length: int = PROJECT_NAME_MAX_LENGTH
) -> str:
    """Check a project name against Keptn's rule and length limit.

    Args:
        name: the project name.
        field: the input field it came from, named in the error (e.g. ``name``, ``data.project``).
        max_length: the limit (Keptn's ``PROJECT_NAME_MAX_SIZE``, default 200).

    Returns:
        The name, unchanged.

    Raises:
        InvalidNameError: if the name is missing, too long or breaks the rule.
    """
    return _validate(name, what="project", field=field, max_length=max_length)


def validate_stage_name(
    name: str, *, field: str = "stage", max_length: int | None = STAGE_NAME_MAX_LENGTH
) -> str:
    """Check a stage name against Keptn's rule (Keptn sets no length limit for stages).

    Args:
        name: the stage name.
        field: the input field it came from, named in the error (e.g. ``spec.stages[1].name``).
        max_length: an optional limit; ``None`` (the default) means none, as in Keptn.

    Returns:
        The name, unchanged.

    Raises:
        InvalidNameError: if the name is missing, too long or breaks the rule.
    """
    return _validate(name, what="stage", field=field, max_length=max_length)


def validate_service_name(
    name: str, *, field: str = "service", max_length: int = SERVICE_NAME_MAX_LENGTH
) -> str:
    """Check a service name against Keptn's rule and length limit.

    Keptn's shipyard-controller itself only required a service name to be a valid Unix directory
    name, but its CLI (``keptn create service``) and helm-service enforced the entity rule; Capstan
    applies the entity rule everywhere, so that a service name is always usable in event routing.

    Args:
        name: the service name.
        field: the input field it came from, named in the error (e.g. ``serviceName``).
        max_length: the limit (Keptn's ``SERVICE_NAME_MAX_SIZE``, default 43).

    Returns:
        The name, unchanged.

    Raises:
        InvalidNameError: if the name is missing, too long or breaks the rule.
    """
    return _validate(name, what="service", field=field, max_length=max_length)
