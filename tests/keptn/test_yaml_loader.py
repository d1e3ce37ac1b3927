"""YAML as Keptn's Go code read it: YAML 1.2 core schema, unique string keys, bounded size."""

from __future__ import annotations

import importlib.util
import random
from typing import Any

import pytest
import yaml

from keptn import yaml_loader
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


# --- libyaml and the pure loader: one behaviour ------------------------------------------------


def _pure(text: str) -> tuple[str, Any]:
    """What the pure-Python reference loader makes of ``text``: its value or its error message."""
    try:
        return "ok", load_yaml_with(text, fast=None)
    except InvalidInputError as exc:
        return "error", exc.message


def load_yaml_with(text: str, *, fast: Any) -> Any:
    saved = yaml_loader._FastCoreSchemaLoader
    yaml_loader._FastCoreSchemaLoader = fast
    try:
        return load_yaml(text, what="slo.yaml", field="f")
    finally:
        yaml_loader._FastCoreSchemaLoader = saved


def _either(text: str) -> tuple[str, Any]:
    try:
        return "ok", load_yaml(text, what="slo.yaml", field="f")
    except InvalidInputError as exc:
        return "error", exc.message


def slo_yaml(objectives: int) -> str:
    """A realistic slo.yaml with ``objectives`` objectives."""
    lines = [
        'spec_version: "1.0"',
        "filter: {handler: ItemsController}",
        "comparison: {compare_with: several_results, number_of_comparison_results: 20}",
        "objectives:",
    ]
    for i in range(objectives):
        lines += [
            f"  - sli: sli_{i:03d}",
            f"    displayName: sli {i} p95",
            f"    weight: {1 + i % 3}",
            '    pass: [{criteria: ["<=+10%", "<600"]}, {criteria: [">=-5%"]}]',
            "    warning:",
            '      - criteria: ["<=800"]',
            f"    key_sli: {str(i % 25 == 7).lower()}",
        ]
    lines.append('total_score: {pass: "90%", warning: "75%"}')
    return "\n".join(lines) + "\n"


needs_libyaml = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")


@needs_libyaml
def test_libyaml_parses_plain_documents_without_the_pure_loader(monkeypatch):
    def unused(self, node):
        raise AssertionError("the pure loader was used")

    text = slo_yaml(100)
    expected = load_yaml(text)
    monkeypatch.setattr(yaml_loader._CoreSchemaLoader, "construct_document", unused)
    assert load_yaml(text) == expected
    assert load_yaml("a: [1, '2', {b: 0x1F, c: 2021-05-10, d: yes}]\n") == {
        "a": [1, "2", {"b": 31, "c": "2021-05-10", "d": "yes"}]
    }


@pytest.mark.parametrize(
    "text",
    [
        # libyaml accepts or reads these differently; the pure loader decides
        "a:\tb\n",
        "a: 1\n\ufeff",
        "a: x\n\ufeff# c\n",
        "[a?]\n",
        "{s?}\n",
        "!\n",
        "a: !\nb: 1\n",
        "{!,}\n",
        "a: |#c\n  x\n",
        "a: >-2#\n   x\n",
        "%YAML 1.3\n---\na: 1\n",
        "%FOO bar\n---\na\n",
        # libyaml's errors are worded differently and have no snippet
        "a: 1\na: 2\n",
        "a: [\n",
        "a: b: c\n",
        "*a\n",
        "a: &x 1\nb: &x 2\n",
        'a: "\\uD800"\n',
        "a: 1\x00\n",
        "a: \ud800\n",
        # both take these, the same way
        'q: sum(rate(x{status!="500"}[5m]))\nurl: http://a/b\n',
        "\ufeffa: 1\n",
        "a: 1\n\x85b: [x, y]\n",
        "{a:1}\n",
        "<<: [{a: 1}, {b: 2}]\nc: !!str 3\n",
    ],
)
def test_the_pure_loader_decides_where_libyaml_would_differ(text):
    assert _either(text) == _pure(text)


def test_errors_keep_the_pure_loaders_marks_and_snippets():
    assert _either("a: 1\na: 2\n") == (
        "error",
        'f: slo.yaml is not valid YAML: while constructing a mapping\n  in "<unicode string>", line 1,'
        " column 1:\n    a: 1\n    ^\nfound duplicate key 'a'\n"
        '  in "<unicode string>", line 2, column 1:\n    a: 2\n    ^',
    )


@pytest.mark.parametrize("depth", [63, 64, 65, 600])
def test_deep_nesting_is_decided_as_by_the_pure_loader(depth):
    # libyaml composes up to 1000 levels; the pure composer runs out of Python stack at ~450
    flow = "[" * depth + "]" * depth
    assert _either(flow) == _pure(flow)
    if depth >= 600:
        assert _either(flow) == ("error", "f: slo.yaml is nested too deeply")


@pytest.mark.parametrize("depth", [32, 33, 300])
def test_nested_merges_count_as_written(depth):
    # each level is a mapping and a sequence in the text, though the data stays one level deep
    text = "a: " + "{<<: [" * depth + "{x: 1}" + "]}" * depth + "\n"
    assert _either(text) == _pure(text)
    if depth >= 300:
        assert _either(text) == ("error", "f: slo.yaml is nested too deeply")


def test_both_loaders_agree_on_random_short_documents():
    pieces = [" ", "\n", "\n  ", ": ", ":", "- ", "-", "[", "]", "{", "}", ", ", "#", "&a ", "*a",
              "!", "|", ">", "'", '"', "%", "a", "0x1", "1.5", "yes", "~", "\\", "\r", "<<: ", "?",
              "\t", "\x85", "\ufeff", "---\n", "...", "@"]  # fmt: skip
    rng = random.Random(20261126)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 10)))
        assert _either(text) == _pure(text), text


def test_without_libyaml_the_pure_loader_is_used(monkeypatch):
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    spec = importlib.util.spec_from_file_location("_yaml_loader_without_libyaml", yaml_loader.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._FastCoreSchemaLoader is None
    text = slo_yaml(10)
    assert module.load_yaml(text) == load_yaml(text)
    with pytest.raises(InvalidInputError) as info:
        module.load_yaml("a: 1\na: 2\n", what="slo.yaml", field="f")
    assert info.value.message == _pure("a: 1\na: 2\n")[1]
