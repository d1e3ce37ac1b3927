"""YAML as Keptn's Go code read it: YAML 1.2 core schema, unique string keys, bounded size."""

from __future__ import annotations

import pytest

from keptn.errors import InvalidInputError
from keptn.yaml_loader import MAX_NODES, load_yaml


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("010", 10),
        ("0o17", 15),
        ("0x1F", 31),
        ("-5", -5),
        ("1:30", "1:30"),
        ("2021-05-10", "2021-05-10"),
        ("2021-05-10T09:51:00Z", "2021-05-10T09:51:00Z"),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("1_000", "1_000"),
        ("~", None),
        ("null", None),
        ("", None),
        ("'010'", "010"),
    ],
)
def test_scalars_follow_yaml_1_2(text, expected):
    value = load_yaml(f"v: {text}\n")["v"]
    assert value == expected
    assert type(value) is type(expected)


def test_merge_keys_work_and_explicit_keys_win():
    assert load_yaml("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  x: 3\n")["m"] == {"x": 3, "y": 2}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: 1\na: 2\n", "found duplicate key 'a'"),
        ("m:\n  k: 1\n  k: 1\n", "found duplicate key 'k'"),
        ("1: x\n", "found a non-string key 1"),
        ("? [a]\n: x\n", "found a non-string key"),
        ("a: [\n", "is not valid YAML"),
        ("a: 1\n---\nb: 2\n", "must be a single YAML document, found 2"),
        ("a: &a [*a]\n", "too large"),
    ],
)
def test_rejected_documents(text, reason):
    with pytest.raises(InvalidInputError) as info:
        load_yaml(text, what="slo.yaml", field="resourceContent")
    assert reason in info.value.message
    assert info.value.field == "resourceContent"
    assert info.value.message.startswith("resourceContent: slo.yaml ")


def test_alias_bombs_are_rejected_before_anything_walks_them():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    with pytest.raises(InvalidInputError, match=f"more than {MAX_NODES} values"):
        load_yaml("\n".join(lines) + "\n")


def test_empty_input_and_non_text():
    assert load_yaml("") is None
    assert load_yaml("# only a comment\n") is None
    with pytest.raises(InvalidInputError, match="must be text"):
        load_yaml(b"a: 1")  # type: ignore[arg-type]
