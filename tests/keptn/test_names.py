"""Keptn's entity name rule (go-utils ValidateKeptnEntityName) and length limits."""

from __future__ import annotations

import re

import pytest

from keptn.errors import InvalidNameError
from keptn.names import (
    ENTITY_NAME_PATTERN,
    PROJECT_NAME_MAX_LENGTH,
    SERVICE_NAME_MAX_LENGTH,
    STAGE_NAME_MAX_LENGTH,
    is_valid_entity_name,
    validate_project_name,
    validate_service_name,
    validate_stage_name,
)

VALID = ["a", "dev", "a1", "my-service", "a--b", "sockshop-staging-2", "x" * 300]
INVALID = ["", "Dev", "1st", "-dev", "dev-", "a-", "dev.eu", "dev_eu", "dev eu", "dév", "dev\n", "dev/x", "ß"]


def go_validate(name: str) -> bool:
    """Keptn's algorithm, literally: leftmost match of the pattern, compared by length."""
    if len(name) == 0:
        return False
    # Go's regexp has no "$ before a final newline"; \Z gives Python the same meaning.
    go_pattern = ENTITY_NAME_PATTERN.replace("$", r"\Z")
    match = re.search(go_pattern, name)
    found = match.group(0) if match else ""
    return len(found.encode()) == len(name.encode())


@pytest.mark.parametrize("name", VALID)
def test_valid_names(name):
    assert is_valid_entity_name(name)
    assert go_validate(name)


@pytest.mark.parametrize("name", INVALID)
def test_invalid_names(name):
    assert not is_valid_entity_name(name)
    assert not go_validate(name)


def test_pattern_is_keptns_and_its_second_alternative_is_unanchored():
    assert ENTITY_NAME_PATTERN == r"(^[a-z][a-z0-9-]*[a-z0-9]$)|(^[a-z][a-z0-9]*)"
    # The second alternative matches a prefix of "abc-" ("abc"); only the length check rejects it.
    assert re.search(ENTITY_NAME_PATTERN, "abc-").group(0) == "abc"
    assert not is_valid_entity_name("abc-")


def test_limits():
    assert PROJECT_NAME_MAX_LENGTH == 200
    assert SERVICE_NAME_MAX_LENGTH == 43
    assert STAGE_NAME_MAX_LENGTH is None


def test_project_names():
    assert validate_project_name("sockshop") == "sockshop"
    assert validate_project_name("p" * 200) == "p" * 200
    with pytest.raises(InvalidNameError) as info:
        validate_project_name("p" * 201)
    assert info.value.field == "project"
    assert "exceeds maximum length of 200 characters" in info.value.message
    with pytest.raises(InvalidNameError) as info:
        validate_project_name("Sockshop", field="name")
    assert info.value.field == "name"
    assert info.value.message.startswith("name: Project name 'Sockshop' contains upper case letter(s)")
    assert (
        "start with a lower case letter, then lower case letters, numbers, and hyphens" in info.value.message
    )
    with pytest.raises(InvalidNameError) as info:
        validate_project_name("")
    assert info.value.message == "project: project name missing"


def test_service_names():
    assert validate_service_name("s" * 43) == "s" * 43
    with pytest.raises(InvalidNameError) as info:
        validate_service_name("s" * 44, field="serviceName")
    assert info.value.field == "serviceName"
    assert "serviceName: service name exceeds maximum length of 43 characters" in info.value.message
    with pytest.raises(InvalidNameError) as info:
        validate_service_name("carts_db")
    assert (
        "Service name 'carts_db' contains upper case letter(s) or special character(s)" in info.value.message
    )
    assert validate_service_name("s" * 50, max_length=50) == "s" * 50


def test_stage_names_have_no_length_limit_but_follow_the_rule():
    assert validate_stage_name("s" * 1000) == "s" * 1000
    with pytest.raises(InvalidNameError) as info:
        validate_stage_name("dev.eu", field="data.stage")
    assert info.value.field == "data.stage"
    assert info.value.message.startswith("data.stage: Stage name 'dev.eu' contains")
    with pytest.raises(InvalidNameError):
        validate_stage_name("abc", max_length=2)


def test_non_strings_are_missing_names():
    with pytest.raises(InvalidNameError) as info:
        validate_project_name(None)  # type: ignore[arg-type]
    assert "project name missing" in info.value.message
    assert not is_valid_entity_name(3)  # type: ignore[arg-type]
