import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keptn.errors import InvalidInputError
from keptn.sli import (
    InvalidJSONPathError,
    JSONPathNotFoundError,
    NoSLIValueError,
    SLIFile,
    WebIndicator,
    duration_seconds,
    json_path,
    numeric_value,
    parse_sli,
    parse_sli_time,
    prometheus_query,
    prometheus_value,
    substitute_placeholders,
    web_indicator,
)

END = datetime(2024, 1, 2, 3, 9, 5, tzinfo=UTC)
START = END - timedelta(minutes=5)


def test_parse_sli():
    content = b"""spec_version: "1.0"
indicators:
  throughput: sum(rate(http_requests_total{service="$SERVICE"}[$DURATION_SECONDS]))
  score:
    url: http://x/$PROJECT
    path: $.data.score
"""
    assert parse_sli(content) == SLIFile(
        spec_version="1.0",
        indicators={
            "throughput": 'sum(rate(http_requests_total{service="$SERVICE"}[$DURATION_SECONDS]))',
            "score": {"url": "http://x/$PROJECT", "path": "$.data.score"},
        },
    )


def test_parse_sli_spec_version_is_optional_and_not_validated():
    assert parse_sli("spec_version: 2\nindicators: {a: up}").spec_version == "2"
    assert parse_sli("indicators: {a: up}").spec_version == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("spec_version: '1.0'", "prometheus/sli.yaml: missing required field: indicators"),
        ("", "missing required field: indicators"),
        ("- a\n- b", "prometheus/sli.yaml must be a mapping with 'indicators'"),
        ("indicators: [up]", "indicators must be a mapping of SLI name to query, not a list"),
        ("indicators: {a: up, a: down}", "duplicate key 'a'"),
        ("indicators: {a: [unclosed", "is not valid YAML"),
        ("indicators: {'': up}", "an indicator has an empty name"),
        (b"\xff", "is not UTF-8 text"),
    ],
)
def test_parse_sli_errors(content, message):
    with pytest.raises(InvalidInputError) as caught:
        parse_sli(content, what="prometheus/sli.yaml")
    assert message in str(caught.value)


def test_prometheus_query():
    assert prometheus_query("a", "  up  ") == "up"
    assert prometheus_query("a", 1) == "1"  # Keptn's YAML decoder read scalars as text
    with pytest.raises(InvalidInputError, match="SLI a: the query must be a string, not an object"):
        prometheus_query("a", {"url": "x"})
    with pytest.raises(InvalidInputError, match="SLI a: the query must be a string, not null"):
        prometheus_query("a", None)
    with pytest.raises(InvalidInputError, match="SLI a: the query is empty"):
        prometheus_query("a", " ")


def test_web_indicator():
    assert web_indicator("s", "http://x/y") == WebIndicator(url="http://x/y", path="$")
    assert web_indicator("s", {"url": "http://x", "path": "$.a", "headers": {"X-N": 1}}) == WebIndicator(
        url="http://x", path="$.a", headers={"X-N": "1"}
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (3, "SLI s: must be a URL or a mapping with url, path and headers, not a number"),
        ({"path": "$"}, "SLI s: url must be a non-empty string"),
        ({"url": "http://x", "path": ""}, "SLI s: path must be a non-empty string"),
        ({"url": "http://x", "headers": ["a"]}, "SLI s: headers must map header names to strings"),
        ({"url": "http://x", "query": "y"}, "SLI s: unknown key(s) query"),
    ],
)
def test_web_indicator_errors(value, message):
    with pytest.raises(InvalidInputError) as caught:
        web_indicator("s", value)
    assert str(caught.value) == message


def test_parse_sli_time():
    assert parse_sli_time("2024-01-02T03:09:05.000Z", field="end") == END
    assert parse_sli_time("2024-01-02T04:09:05+01:00", field="end") == END
    assert parse_sli_time(str(int(END.timestamp())), field="end") == END
    with pytest.raises(InvalidInputError, match="end: 'yesterday' is not an RFC 3339 timestamp"):
        parse_sli_time("yesterday", field="end")
    with pytest.raises(InvalidInputError, match="start: must be a timestamp string, not null"):
        parse_sli_time(None, field="start")


def test_duration_seconds_rounds_up():
    assert duration_seconds(START, END) == "300s"
    assert duration_seconds(START, END + timedelta(milliseconds=1)) == "301s"


def sub(query, **overrides):
    arguments: dict[str, Any] = {
        "project": "sockshop",
        "stage": "dev",
        "service": "carts",
        "deployment": "canary",
        "labels": {},
        "custom_filters": {},
        "start": START,
        "end": END,
    }
    arguments.update(overrides)
    return substitute_placeholders(query, **arguments)


def test_builtin_placeholders():
    query = (
        'x{project="$PROJECT",stage="$STAGE",service="$SERVICE",deployment="$DEPLOYMENT"}[$DURATION_SECONDS]'
    )
    assert sub(query) == 'x{project="sockshop",stage="dev",service="carts",deployment="canary"}[300s]'


def test_labels_and_filters():
    query = "$LABEL.version $LABEL.team $handler $HANDLER $unknown $SERVICE_NAME $SERVICE"
    result = sub(
        query,
        labels={"version": "1.2", "team": "blue"},
        custom_filters={"handler": "'ItemsController'", "SERVICE_NAME": "carts-svc"},
    )
    # filter values lose their quotes, as in Keptn; $SERVICE_NAME is the filter's, not $SERVICE + _NAME
    assert result == "1.2 blue ItemsController ItemsController $unknown carts-svc carts"


def test_filter_overrides_builtin_and_values_are_not_substituted_again():
    assert sub("$PROJECT $STAGE", custom_filters={"project": "other"}) == "other dev"
    assert sub("$SERVICE", service="$STAGE") == "$STAGE"


def test_without_placeholders_the_query_is_unchanged():
    assert sub("sum(up)") == "sum(up)"


DOC = {"data": {"score": 42, "items": [{"v": 1}, {"v": 2.5}], "a.b": "dotted", "it's": True}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DOC),
        ("$.data.score", 42),
        ("data.score", 42),
        ("$['data']['score']", 42),
        ('$["data"]["a.b"]', "dotted"),
        ("$.data['it\\'s']", True),
        ("$.data.items[0].v", 1),
        ("$.data.items[-1].v", 2.5),
        ("$.data.items[ 1 ]['v']", 2.5),
    ],
)
def test_json_path(path, expected):
    assert json_path(DOC, path) == expected


def test_json_path_on_a_list_root():
    assert json_path([10, 20], "[1]") == 20
    assert json_path([10, 20], "$[-2]") == 10


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "$.data.missing",
            "JSONPath '$.data.missing': no key 'missing' at $.data (keys: a.b, it's, items, score)",
        ),
        (
            "$.data.items[2]",
            "JSONPath '$.data.items[2]': index [2] is out of range at $.data.items (a list of 2)",
        ),
        (
            "$.data.score.x",
            "JSONPath '$.data.score.x': $.data.score is a number, not an object, so has no key 'x'",
        ),
        ("$.data[0]", "JSONPath '$.data[0]': $.data is an object, not a list, so has no [0]"),
    ],
)
def test_json_path_not_found(path, message):
    with pytest.raises(JSONPathNotFoundError) as caught:
        json_path(DOC, path)
    assert str(caught.value) == message


@pytest.mark.parametrize("path", ["$.data.*", "$..score", "$.data[?(@.v>1)]", "$.items[0:1]", "$.", "$data"])
def test_json_path_rejects_what_it_does_not_support(path):
    with pytest.raises(InvalidJSONPathError, match="JSONPath"):
        json_path(DOC, path)


def test_json_path_never_evaluates_code():
    with pytest.raises(InvalidJSONPathError):
        json_path(DOC, "$[__import__('os').system('false')]")


@pytest.mark.parametrize(
    ("value", "expected"), [(1, 1.0), (2.5, 2.5), ("3.5", 3.5), (" 7 ", 7.0), ("-1e3", -1000.0)]
)
def test_numeric_value(value, expected):
    assert numeric_value(value, what="x") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "v is a boolean True, not a number"),
        (None, "v is null, not a number"),
        ("fast", "v is a string 'fast', not a number"),
        ({"a": 1}, "v is an object {'a': 1}, not a number"),
        ("NaN", "v is 'NaN', not a finite number"),
        (math.inf, "v is inf, not a finite number"),
    ],
)
def test_numeric_value_errors(value, message):
    with pytest.raises(InvalidInputError) as caught:
        numeric_value(value, what="v")
    assert str(caught.value) == message


def vector(*values):
    return {
        "resultType": "vector",
        "result": [{"metric": {"i": str(n)}, "value": [1.5, v]} for n, v in enumerate(values)],
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (vector("0.25"), 0.25),
        (vector("-3"), -3.0),
        ({"resultType": "scalar", "result": [1.5, "1230"]}, 1230.0),
    ],
)
def test_prometheus_value(data, expected):
    assert prometheus_value(data) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (vector(), "query did not return any values"),
        (vector("1", "2"), "query did return multiple values (2 series); aggregate them, e.g. with sum()"),
        (vector("NaN"), "query did not return valid values (NaN)"),
        (vector("+Inf"), "query did not return valid values (+Inf)"),
        (vector("fast"), "query did not return valid values"),
        ({"resultType": "vector", "result": [{"metric": {}}]}, "query did not return valid values"),
        (
            {"resultType": "matrix", "result": []},
            "query returned a matrix, not an instant vector or a scalar",
        ),
        (
            {"resultType": "string", "result": [1, "x"]},
            "query returned a string, not an instant vector or a scalar",
        ),
        (None, "Prometheus answered without data"),
    ],
)
def test_prometheus_value_errors(data, message):
    with pytest.raises(NoSLIValueError) as caught:
        prometheus_value(data)
    assert str(caught.value) == message
