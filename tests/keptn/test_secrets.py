"""Keptn's secret-service rules: DNS-1123 names and scopes, Kubernetes Secret keys, string values."""

from __future__ import annotations

import pytest

from keptn.errors import InvalidInputError
from keptn.secrets import (
    DEFAULT_SCOPE,
    KEPTN_SCOPES,
    MAX_DATA_BYTES,
    validate_scope,
    validate_secret,
    validate_secret_data,
    validate_secret_key,
    validate_secret_name,
)

VALID_NAMES = ["a", "1", "my-secret", "webhook.slack", "a-b.c-d", "0abc9", "x" * 253, "a." * 126 + "a"]
INVALID_NAMES = [
    "",
    "My-Secret",
    "my_secret",
    "-a",
    "a-",
    ".a",
    "a.",
    "a..b",
    "a.-b",
    "a b",
    "é",
    "a\n",
    "a/b",
    "x" * 254,
]
VALID_KEYS = ["a", "API_KEY", "my-key", "token.v2", ".hidden", "a..b", "-", "_", "X" * 253]
INVALID_KEYS = ["", ".", "..", "..a", "a b", "a/b", "a:b", "ключ", "a\n", "x" * 254]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_names_and_scopes(name):
    assert validate_secret_name(name) == name
    assert validate_scope(name) == name


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_names_and_scopes_name_the_field(name):
    with pytest.raises(InvalidInputError) as caught:
        validate_secret_name(name)
    assert caught.value.field == "name" and caught.value.message.startswith("name: ")
    with pytest.raises(InvalidInputError) as caught:
        validate_scope(name, field="scope")
    assert caught.value.field == "scope" and "scope" in caught.value.message


def test_invalid_name_message_says_the_rule():
    with pytest.raises(InvalidInputError, match="DNS-1123 subdomain"):
        validate_secret_name("My_Secret")
    with pytest.raises(InvalidInputError, match="maximum length of 253"):
        validate_secret_name("a" * 300)
    with pytest.raises(InvalidInputError, match="missing"):
        validate_secret_name(None)


@pytest.mark.parametrize("key", VALID_KEYS)
def test_valid_keys(key):
    assert validate_secret_key(key) == key


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys(key):
    with pytest.raises(InvalidInputError) as caught:
        validate_secret_key(key)
    assert caught.value.field == "data"


def test_data_needs_a_key_and_string_values():
    assert validate_secret_data({"a": "1", "b": ""}) == {"a": "1", "b": ""}
    with pytest.raises(InvalidInputError, match="at least one key"):
        validate_secret_data({})
    with pytest.raises(InvalidInputError, match="map"):
        validate_secret_data(["a"])
    with pytest.raises(InvalidInputError) as caught:
        validate_secret_data({"port": 8080})
    assert caught.value.field == "data.port" and "8080" not in caught.value.message


def test_data_size_limit_counts_keys_and_values():
    validate_secret_data({"k": "v" * (MAX_DATA_BYTES - 1)})
    with pytest.raises(InvalidInputError, match="must not exceed"):
        validate_secret_data({"k": "v" * MAX_DATA_BYTES})
    with pytest.raises(InvalidInputError, match="must not exceed"):
        validate_secret_data({"k": "é" * (MAX_DATA_BYTES // 2)})  # counted in UTF-8 bytes


def test_lone_surrogate_is_refused_without_showing_the_value():
    with pytest.raises(InvalidInputError) as caught:
        validate_secret_data({"k": "s3cr3t\ud800"})
    assert caught.value.field == "data.k" and "s3cr3t" not in caught.value.message


def test_errors_never_contain_values():
    value = "hunter2-very-secret"
    for data in ({"bad key": value}, {"k": value * 60000}, {"k": value, "..": value}):
        with pytest.raises(InvalidInputError) as caught:
            validate_secret_data(data)
        assert value not in str(caught.value)


def test_validate_secret_defaults_the_scope():
    secret = validate_secret("s", "", {"b": "2", "a": "1"})
    assert (secret.name, secret.scope, secret.keys) == ("s", DEFAULT_SCOPE, ["a", "b"])
    assert validate_secret("s", None, {"a": "1"}).scope == DEFAULT_SCOPE
    assert validate_secret("s", "keptn-webhook-service", {"a": "1"}).scope == "keptn-webhook-service"
    assert "hunter2" not in repr(validate_secret("s", None, {"a": "hunter2"}))


def test_keptn_scopes():
    assert DEFAULT_SCOPE in KEPTN_SCOPES and "keptn-webhook-service" in KEPTN_SCOPES
    assert list(KEPTN_SCOPES) == sorted(KEPTN_SCOPES)
