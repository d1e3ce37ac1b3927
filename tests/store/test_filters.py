import pytest

from keptn.errors import InvalidInputError
from store.filters import FilterClause, SqlConditions, parse_filter


def test_parse_single_and_multi_values():
    assert parse_filter("data.project:sockshop AND data.result:pass,warning") == [
        FilterClause("data.project", ("sockshop",)),
        FilterClause("data.result", ("pass", "warning")),
    ]


def test_value_may_contain_colons_and_spaces_are_trimmed():
    assert parse_filter("  source:https://github.com/keptn/keptn/cli  AND  id: abc ") == [
        FilterClause("source", ("https://github.com/keptn/keptn/cli",)),
        FilterClause("id", ("abc",)),
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "must not be empty"),
        ("data.project", "no ':'"),
        (":sockshop", "key is empty"),
        ("data..project:x", "empty path segment"),
        ("data.project:", "value is empty"),
        ("data.result:pass,,fail", "value is empty"),
        ("project:sockshop", "unknown key 'project'"),
        ("data.project:a AND nothing", "'nothing'"),
    ],
)
def test_bad_filters_name_the_clause(text, needle):
    with pytest.raises(InvalidInputError) as caught:
        parse_filter(text)
    assert caught.value.field == "filter"
    assert needle in caught.value.message


def test_columns_and_json_paths_are_parameterised():
    sql = SqlConditions()
    for clause in parse_filter(
        "data.project:p1,p2 AND shkeptncontext:c AND data.result:pass AND data.a.b:x,y AND gitcommitid:g"
    ):
        sql.add_clause(clause)
    assert sql.conditions == [
        "e.project = ANY($1::text[])",
        "e.shkeptncontext = $2",
        "(e.event -> 'data') @> $3::jsonb",
        "((e.event -> 'data') @> $4::jsonb OR (e.event -> 'data') @> $5::jsonb)",
        "e.event @> $6::jsonb",
    ]
    assert sql.args == [
        ["p1", "p2"],
        "c",
        {"result": "pass"},
        {"a": {"b": "x"}},
        {"a": {"b": "y"}},
        {"gitcommitid": "g"},
    ]
    assert sql.where().startswith("WHERE e.project = ANY($1::text[]) AND ")


def test_where_is_empty_without_conditions():
    assert SqlConditions().where() == ""


def test_injection_attempt_stays_a_value():
    sql = SqlConditions()
    for clause in parse_filter("data.project:x'; DROP TABLE events; --"):
        sql.add_clause(clause)
    assert sql.conditions == ["e.project = $1"]
    assert sql.args == ["x'; DROP TABLE events; --"]
