"""Keptn's payload merge rules (behaviour spec §3.4) and Capstan's two documented differences."""

from __future__ import annotations

import copy

import pytest

from keptn.merge import dedup, merge


def test_maps_merge_recursively_and_later_strings_win():
    earlier = {"project": "p", "deployment": {"strategy": "direct", "names": ["a"]}}
    later = {"deployment": {"strategy": "blue_green_service", "urls": ["u"]}, "test": {"ok": "yes"}}
    assert merge(earlier, later) == {
        "project": "p",
        "deployment": {"strategy": "blue_green_service", "names": ["a"], "urls": ["u"]},
        "test": {"ok": "yes"},
    }


def test_lists_put_the_later_entries_first_and_drop_duplicates():
    # the spec's example: input [dev-url] + deployment.finished [staging-url]
    assert merge(["dev-url"], ["staging-url"]) == ["staging-url", "dev-url"]
    assert merge(["a", "b"], ["b", "c"]) == ["b", "c", "a"]


def test_null_later_values_keep_maps_and_lists_but_blank_strings():
    assert merge({"a": 1}, None) == {"a": 1}
    assert merge(["x", "x"], None) == ["x"]
    assert merge("message", None) == ""  # Go's in2.(string) of nil is ""


def test_null_earlier_value_takes_the_later_one():
    assert merge(None, {"a": 1}) == {"a": 1}
    assert merge(None, "s") == "s"
    assert merge(None, None) is None
    assert merge({"k": None}, {"k": ["v"]}) == {"k": ["v"]}


def test_type_mismatch_later_wins():
    assert merge(["a"], "now a string") == "now a string"
    assert merge({"a": 1}, ["x"]) == ["x"]
    assert merge("s", {"a": 1}) == {"a": 1}


def test_numbers_and_booleans_later_wins_capstan_difference():
    # Keptn kept the earlier value (no case in its switch); that froze get-action.actionIndex.
    assert merge({"get-action": {"actionIndex": 0}}, {"get-action": {"actionIndex": 1}}) == {
        "get-action": {"actionIndex": 1}
    }
    assert merge(True, False) is False
    assert merge(3, None) == 3


def test_inputs_are_never_mutated():
    earlier = {"a": {"b": [1, 2]}, "c": "x"}
    later = {"a": {"b": [3], "d": {"e": 1}}}
    before = copy.deepcopy((earlier, later))
    result = merge(earlier, later)
    result["a"]["d"]["e"] = 99
    result["a"]["b"].append(42)
    assert (earlier, later) == before


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([1, 1.0, "1", True], [1, "1", True]),
        ([{"a": 1}, {"a": 1}, ["x"], ["x"]], [{"a": 1}, ["x"]]),
        ([None, None, "n"], [None, "n"]),
        ([], []),
    ],
)
def test_dedup_compares_like_go_and_handles_unhashables(items, expected):
    assert dedup(items) == expected
