"""Hypothesis on the pure parsers of Keptn's files: a valid model or the project's error, nothing else.

Each parser (shipyard, slo.yaml, sli.yaml, remediation.yaml, webhook.yaml) gets three kinds of
input:

* random text, plain and drawn from YAML's punctuation, and (where the parser takes bytes) random
  bytes, which are mostly not UTF-8;
* a valid document of the file's kind, mutated one to three times (a leaf or a subtree replaced by
  a value of any type, a key removed, an unknown key added) and written as block YAML, flow YAML
  or JSON; leaves include YAML's special scalars (``.nan``, ``.inf``, ``0o17``, ``yes``, ``~``),
  huge integers and unicode;
* the same with a subtree replaced by a deeply nested flow collection or by an alias bomb
  ("billion laughs"), which must be refused quickly, not expanded.

The parser must return its model or raise its own :class:`~keptn.errors.InvalidInputError`
subclass whose ``field`` is set and whose message names it; any other exception, or a parse that
takes longer than :data:`~tests.fuzz.budget.PER_EXAMPLE_SECONDS`, fails the test. Go durations and
the timestamps of evaluation windows and CloudEvents are fuzzed the same way.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from keptn._keptntime import parse_keptn_time
from keptn.durations import parse_duration
from keptn.errors import InvalidInputError, InvalidShipyardError
from keptn.evaluation_window import evaluation_window, get_start_end_time, parse_evaluation_time
from keptn.remediation import InvalidRemediationError, parse_remediation
from keptn.shipyard import parse_shipyard
from keptn.sli import parse_sli
from keptn.slo import InvalidSLOError, parse_slo
from keptn.webhook import InvalidWebhookConfigError, parse_webhook_config
from tests.fuzz.budget import assert_names_field, fuzz_settings, timed_call
from tests.fuzz.conftest import PROJECT, Gateway, assert_error_body
from tests.fuzz.strategies import BOMB, DEEP, mutants, wild_values

PROJECTS = "/api/controlPlane/v1/project"

# --- valid documents, one per file kind -----------------------------------------------------------

SHIPYARD: dict[str, Any] = {
    "apiVersion": "spec.keptn.sh/0.2.3",
    "kind": "Shipyard",
    "metadata": {"name": "shipyard-sockshop"},
    "spec": {
        "stages": [
            {
                "name": "dev",
                "sequences": [
                    {
                        "name": "delivery",
                        "tasks": [
                            {"name": "deployment", "properties": {"deploymentstrategy": "direct"}},
                            {"name": "test", "triggeredAfter": "10m"},
                        ],
                    }
                ],
            },
            {
                "name": "production",
                "sequences": [
                    {
                        "name": "delivery",
                        "triggeredOn": [
                            {"event": "dev.delivery.finished", "selector": {"match": {"result": "pass"}}}
                        ],
                        "tasks": [{"name": "approval"}, {"name": "deployment"}],
                    }
                ],
            },
        ]
    },
}
SLO: dict[str, Any] = {
    "spec_version": "1.0",
    "filter": {"handler": "carts"},
    "comparison": {
        "compare_with": "several_results",
        "include_result_with_score": "pass",
        "number_of_comparison_results": 3,
        "aggregate_function": "avg",
    },
    "objectives": [
        {
            "sli": "response_time_p95",
            "displayName": "p95",
            "pass": [{"criteria": ["<=+10%", "<600"]}],
            "warning": [{"criteria": ["<=800"]}],
            "weight": 2,
            "key_sli": True,
        },
        {"sli": "throughput"},
    ],
    "total_score": {"pass": "90%", "warning": "75%"},
}
SLI: dict[str, Any] = {
    "spec_version": "1.0",
    "indicators": {
        "throughput": 'sum(rate(http_requests_total{service="$SERVICE"}[$DURATION_SECONDS]))',
        "score": {"url": "http://quality.example/$PROJECT", "path": "$.data.score", "headers": {"A": "b"}},
    },
}
REMEDIATION: dict[str, Any] = {
    "apiVersion": "spec.keptn.sh/0.1.4",
    "kind": "Remediation",
    "metadata": {"name": "service-remediation"},
    "spec": {
        "remediations": [
            {
                "problemType": "Response time degradation",
                "actionsOnOpen": [
                    {"name": "Scale", "action": "scaling", "description": "Scale up", "value": "1"},
                    {"name": "Toggle", "action": "featuretoggle", "value": {"EnablePromotion": "off"}},
                ],
            }
        ]
    },
}
WEBHOOK: dict[str, Any] = {
    "apiVersion": "webhookconfig.keptn.sh/v1beta1",
    "kind": "WebhookConfig",
    "metadata": {"name": "webhook-configuration"},
    "spec": {
        "webhooks": [
            {
                "type": "sh.keptn.event.evaluation.finished",
                "subscriptionID": "0123456987",
                "sendStarted": True,
                "sendFinished": True,
                "envFrom": [{"name": "secretKey", "secretRef": {"name": "my-secret", "key": "my-key"}}],
                "requests": [
                    {
                        "url": "https://hooks.example/{{.env.secretKey}}",
                        "method": "POST",
                        "headers": [{"key": "Content-type", "value": "application/json"}],
                        "payload": '{"text": "{{.data.evaluation.result}}"}',
                    }
                ],
            }
        ]
    },
}


@dataclass(frozen=True)
class Parser:
    """One file parser under test: what to call, the one error it may raise, its valid document."""

    name: str
    parse: Callable[[Any], object]
    error: type[InvalidInputError]
    valid: dict[str, Any]
    file_field: str
    """The field that stands for the whole file in messages about it (e.g. ``slo.yaml``)."""
    takes_bytes: bool = True


PARSERS = (
    Parser("shipyard", parse_shipyard, InvalidShipyardError, SHIPYARD, "shipyard", takes_bytes=False),
    Parser("slo", parse_slo, InvalidSLOError, SLO, "slo.yaml"),
    Parser("sli", parse_sli, InvalidInputError, SLI, "sli.yaml"),
    Parser("remediation", parse_remediation, InvalidRemediationError, REMEDIATION, "remediation.yaml"),
    Parser("webhook", parse_webhook_config, InvalidWebhookConfigError, WEBHOOK, "webhook/webhook.yaml"),
)
BY_NAME = {parser.name: parser for parser in PARSERS}

# --- strategies -----------------------------------------------------------------------------------

_YAML_PUNCTUATION = ":-[]{}&*!|>'\"%@`#,?~.\n \t\r\\ abz019"


def _deep(depth: int, mapping: bool) -> str:
    if mapping:
        return "{a: " * depth + "1" + "}" * depth
    # PyYAML's pure scanner keeps one possible simple key per flow level open on a line and scans
    # them all for every token: a line of 1000 "[" costs it seconds (see the report on the pure
    # loader), so sequences stay at a depth that is still past what libyaml may decide alone.
    return "[" * min(depth, 300) + "]" * min(depth, 300)


def _bomb(levels: int, width: int) -> str:
    """A flow sequence whose anchors expand to ``width ** levels`` scalars ("billion laughs")."""
    entries = [f"&a0 [{', '.join(['lol'] * width)}]"]
    entries += [f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "[" + ", ".join(entries) + "]"


@st.composite
def documents(draw: st.DrawFn, valid: dict[str, Any]) -> str:
    """A mutated document, written as block YAML, flow YAML or JSON."""
    document = draw(mutants(valid)).document
    style = draw(st.sampled_from(("block", "flow", "json")))
    if style == "json":
        text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    else:
        text = yaml.safe_dump(
            document, sort_keys=False, allow_unicode=draw(st.booleans()), default_flow_style=style == "flow"
        )
    for placeholder, make in (
        (DEEP, lambda: _deep(draw(st.sampled_from((5, 60, 500, 3000))), draw(st.booleans()))),
        (BOMB, lambda: _bomb(draw(st.integers(3, 10)), draw(st.integers(2, 12)))),
    ):
        while placeholder in text:
            text = text.replace(f'"{placeholder}"', placeholder, 1).replace(placeholder, make(), 1)
    return text


random_texts = st.one_of(
    st.text(),
    st.text(alphabet=_YAML_PUNCTUATION, max_size=80),
    st.builds(_bomb, st.integers(1, 12), st.integers(1, 12)),
)


def check_parser(parser: Parser, content: str | bytes) -> None:
    """The parser returns its model or raises its own error naming the field, in bounded time."""
    try:
        timed_call(lambda: parser.parse(content))
    except parser.error as exc:
        assert_names_field(exc, fallback=parser.file_field)


# --- the file parsers -----------------------------------------------------------------------------


@pytest.mark.parametrize("parser", PARSERS, ids=lambda parser: parser.name)
def test_the_valid_documents_parse(parser: Parser) -> None:
    """The documents every mutation starts from are valid (else the mutations prove little)."""
    parser.parse(yaml.safe_dump(parser.valid))
    parser.parse(json.dumps(parser.valid))


@pytest.mark.parametrize("parser", PARSERS, ids=lambda parser: parser.name)
@fuzz_settings(60)
@given(data=st.data())
def test_mutated_documents_parse_or_fail_naming_the_field(parser: Parser, data: st.DataObject) -> None:
    """Right shape, wrong leaves, missing and extra keys, deep nesting, alias bombs."""
    check_parser(parser, data.draw(documents(parser.valid), label="document"))


@pytest.mark.parametrize("parser", PARSERS, ids=lambda parser: parser.name)
@fuzz_settings(40)
@given(data=st.data())
def test_random_text_parses_or_fails_naming_the_field(parser: Parser, data: st.DataObject) -> None:
    """Any text, YAML punctuation, alias bombs of every size, and bytes where the parser takes them."""
    strategy = st.one_of(random_texts, st.binary()) if parser.takes_bytes else random_texts
    check_parser(parser, data.draw(strategy, label="content"))


@pytest.mark.parametrize("parser", PARSERS, ids=lambda parser: parser.name)
def test_a_billion_laughs_is_refused_quickly(parser: Parser) -> None:
    """9 ** 9 scalars after expansion: refused by the node budget, not expanded."""
    document = copy.deepcopy(parser.valid)
    document["bomb"] = BOMB
    text = yaml.safe_dump(document, sort_keys=False).replace(BOMB, _bomb(9, 9))
    with pytest.raises(parser.error) as caught:
        timed_call(lambda: parser.parse(text))
    assert "too large" in caught.value.message
    assert_names_field(caught.value, fallback=parser.file_field)


# --- durations and timestamps -------------------------------------------------------------------

_DURATION_ALPHABET = "0123456789.+-nsuµμmh "
durations = st.one_of(
    st.text(alphabet=_DURATION_ALPHABET, max_size=30),
    st.from_regex(r"[+-]?([0-9]{0,25}(\.[0-9]{0,25})?(ns|us|µs|ms|s|m|h|d|)){1,4}", fullmatch=True),
    st.text(max_size=10),
    wild_values,
)
_DIGITS = "[0-9]"
timestamps = st.one_of(
    # The layouts the parsers accept, with every digit free: year 0, month 99, offset +99:99.
    st.from_regex(
        rf"{_DIGITS}{{4}}-{_DIGITS}{{2}}-{_DIGITS}{{2}}[Tt]{_DIGITS}{{2}}:{_DIGITS}{{2}}:{_DIGITS}{{2}}"
        rf"([.,]{_DIGITS}{{1,12}})?(Z|z|[+-]{_DIGITS}{{2}}:{_DIGITS}{{2}})?",
        fullmatch=True,
    ),
    # Valid moments at the ends of the calendar, with offsets that push them past either end.
    st.builds(
        lambda moment, offset: moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + offset,
        st.one_of(
            st.datetimes(max_value=datetime.datetime(1, 1, 2)),
            st.datetimes(min_value=datetime.datetime(9999, 12, 30)),
            st.datetimes(),
        ),
        st.sampled_from(("Z", "+00:00", "+01:00", "-01:00", "+23:59", "-23:59", "")),
    ),
    st.text(max_size=30),
)


@fuzz_settings(300)
@given(durations)
def test_go_durations_parse_or_fail_naming_the_field(text: Any) -> None:
    """A non-negative timedelta or an error naming ``triggeredAfter``."""
    field = "spec.stages[0].sequences[0].tasks[0].triggeredAfter"
    try:
        duration = timed_call(lambda: parse_duration(text, field=field))
    except InvalidInputError as exc:
        assert exc.field == field
        assert_names_field(exc)
    else:
        assert duration >= datetime.timedelta(0)


@fuzz_settings(300)
@given(timestamps)
@example("0001-01-01T00:00:00+01:00")  # before year 1 in UTC: was an OverflowError
@example("9999-12-31T23:59:59.999-01:00")  # after 9999 in UTC: likewise
@example("2024-02-30T00:00:00Z")
@example("2024-01-01T00:00:00+24:00")
def test_timestamps_parse_or_fail_naming_the_field(text: str) -> None:
    """CloudEvent ``time`` and evaluation timestamps: a UTC moment or an error naming the field."""
    for parse in (parse_keptn_time, parse_evaluation_time):
        try:
            moment = parse(text, field="evaluation.start")
        except InvalidInputError as exc:
            assert exc.field == "evaluation.start"
            assert_names_field(exc)
        else:
            assert moment.utcoffset() == datetime.timedelta(0)


_window_texts = st.one_of(timestamps, durations, st.none(), st.just(""))
windows = st.one_of(
    wild_values,
    st.fixed_dictionaries(
        {},
        optional={
            "evaluation": st.one_of(
                wild_values,
                st.fixed_dictionaries(
                    {}, optional={"start": _window_texts, "end": _window_texts, "timeframe": _window_texts}
                ),
            ),
            "test": st.one_of(
                wild_values,
                st.fixed_dictionaries({}, optional={"start": _window_texts, "end": _window_texts}),
            ),
        },
    ),
)
_nows = st.datetimes(timezones=st.just(datetime.UTC))


@fuzz_settings(300)
@given(windows, _nows)
def test_evaluation_windows_compute_or_fail_naming_the_field(data: Any, now: datetime.datetime) -> None:
    """``evaluation_window`` of any event data: a UTC window or an error naming the field."""
    try:
        start, end = timed_call(lambda: evaluation_window(data, now=now))
    except InvalidInputError as exc:
        assert exc.field and exc.field.split(".")[0] in ("evaluation", "test"), exc.field
    else:
        assert start.utcoffset() == end.utcoffset() == datetime.timedelta(0)


@fuzz_settings(200)
@given(_window_texts, _window_texts, _window_texts, _nows)
def test_start_end_time_computes_or_fails_naming_the_field(
    start: Any, end: Any, timeframe: Any, now: datetime.datetime
) -> None:
    """go-utils' ``GetStartEndTime`` on any text: a window or an error naming the parameter."""
    try:
        get_start_end_time(start, end, timeframe, now=now, field_prefix="evaluation.")
    except InvalidInputError as exc:
        assert exc.field in ("evaluation.start", "evaluation.end", "evaluation.timeframe"), exc.field


# --- the shipyard at the API ----------------------------------------------------------------------


@fuzz_settings(40)
@given(text=documents(SHIPYARD), update=st.booleans(), name=st.uuids())
def test_shipyards_at_the_api(gateway: Gateway, text: str, update: bool, name: uuid.UUID) -> None:
    """POST and PUT of a project with a mutated shipyard: accepted, or a 400 naming ``shipyard``."""
    body = {
        "name": PROJECT if update else f"p{name.hex[:12]}",
        "shipyard": base64.b64encode(text.encode()).decode(),
    }
    response = timed_call(lambda: gateway.request("PUT" if update else "POST", PROJECTS, json=body))
    if response.status_code < 300:
        return
    message = assert_error_body(response)
    if response.status_code == 400:
        assert "shipyard" in message, message
