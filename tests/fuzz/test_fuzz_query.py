"""Hypothesis on the query parameters schemathesis cannot steer: never a 5xx, a 400 names the parameter.

Schemathesis (``tests/api/test_fuzz_openapi.py``) sends what the OpenAPI types allow, and a
``string`` parameter such as ``fromTime``, ``nextPageKey`` or ``filter`` gets random text that
fails the first check. Here each such parameter is fuzzed alone, with the other parameters of its
route valid, so that a refusal can only be about it: timestamps with every digit free (year 0,
month 13, offsets that push a moment out of the calendar), page sizes and keys of any size and
spelling, datastore filters built from real and unknown keys, booleans in every spelling, text
with NUL bytes and unicode, and the parameter given twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from store.filters import COLUMN_KEYS, ENVELOPE_KEYS
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.conftest import PROJECT, SERVICE, Gateway, assert_error_body
from tests.fuzz.test_fuzz_parsers import timestamps

DATASTORE = "/api/mongodb-datastore/event"
CONTROL = "/api/controlPlane/v1"
NUL_MESSAGE = "a parameter or field contains a NUL byte or a character that cannot be stored"
"""The one 400 that cannot name the parameter: PostgreSQL refused a text argument (api/errors.py)."""


@dataclass(frozen=True)
class Target:
    """One query parameter of one route, and valid values for the route's other parameters."""

    path: str
    parameter: str
    kind: str
    base: tuple[tuple[str, str], ...] = ()


_PAGED = ("pageSize", "nextPageKey")


def _targets() -> tuple[Target, ...]:
    by_project = (("project", PROJECT),)
    routes: list[tuple[str, tuple[tuple[str, str], ...], dict[str, str]]] = [
        (
            DATASTORE,
            by_project,
            {
                "fromTime": "time",
                "beforeTime": "time",
                "pageSize": "int",
                "nextPageKey": "key",
                "root": "bool",
                "keptnContext": "text",
                "type": "text",
                "stage": "text",
                "service": "text",
                "eventID": "text",
                "source": "text",
            },
        ),  # fmt: skip
        (
            f"{DATASTORE}/type/sh.keptn.event.dev.delivery.triggered",
            (("filter", f"data.project:{PROJECT}"),),
            {"filter": "filter", "fromTime": "time", "limit": "int", "excludeInvalidated": "bool"},
        ),
        (
            f"{CONTROL}/sequence/{PROJECT}",
            (),
            {
                "fromTime": "time",
                "beforeTime": "time",
                "pageSize": "int",
                "nextPageKey": "key",
                "state": "text",
                "name": "text",
                "keptnContext": "text",
            },
        ),  # fmt: skip
        (
            f"{CONTROL}/sequence-execution",
            by_project,
            {"pageSize": "int", "nextPageKey": "key", "status": "text"},
        ),
        (
            f"{CONTROL}/log",
            (),
            {
                "fromTime": "time",
                "beforeTime": "time",
                "pageSize": "int",
                "nextPageKey": "key",
                "integrationId": "text",
            },
        ),  # fmt: skip
        (f"{CONTROL}/project", (), {"pageSize": "int", "nextPageKey": "key", "disableUpstreamSync": "bool"}),
        (f"{CONTROL}/project/{PROJECT}/stage", (), dict.fromkeys(_PAGED, "int") | {"nextPageKey": "key"}),
        (
            f"{CONTROL}/event/triggered/sh.keptn.event.deployment.triggered",
            by_project,
            {"pageSize": "int", "nextPageKey": "key", "eventID": "text", "stage": "text", "service": "text"},
        ),
        (
            f"/api/resource-service/v1/project/{PROJECT}/resource",
            (),
            {"pageSize": "int", "nextPageKey": "key", "gitCommitID": "text"},
        ),
        (f"{CONTROL}/uniform/registration", (), {"id": "text", "name": "text", "project": "text"}),
    ]
    return tuple(
        Target(path, parameter, kind, tuple(pair for pair in base if pair[0] != parameter))
        for path, base, parameters in routes
        for parameter, kind in parameters.items()
    )


TARGETS = _targets()

_numbers = st.one_of(
    st.integers().map(str),
    st.integers(min_value=2**62, max_value=2**70).map(str),
    st.floats().map(str),
    st.sampled_from(("", " ", "0", "-0", "+5", " 1", "1 ", "1e3", "0x10", "1_0", "٣", "²", "9" * 30, "NaN")),
)
_keys = st.sampled_from(
    (*COLUMN_KEYS, *ENVELOPE_KEYS, "data.result", "data.a.b", "data.", "data..x", "x", "")
)
_clauses = st.builds(
    lambda key, values, separator: f"{key}:{separator.join(values)}",
    st.one_of(_keys, st.text(max_size=8)),
    st.lists(st.one_of(st.sampled_from((PROJECT, "pass", "")), st.text(max_size=8)), min_size=1, max_size=3),
    st.sampled_from((",", ", ", ",,")),
)
VALUES: dict[str, st.SearchStrategy[str]] = {
    "time": st.one_of(timestamps, st.sampled_from(("2024-01-01", "now", "0", "2024-01-01T00:00:00+99:00"))),
    "int": _numbers,
    "key": st.one_of(_numbers, st.text(max_size=10)),
    "bool": st.one_of(
        st.sampled_from(("true", "false", "1", "0", "yes", "on", "", "TRUE", "2")), st.text(max_size=5)
    ),
    "filter": st.one_of(
        st.lists(_clauses, min_size=1, max_size=3).map(" AND ".join),
        st.text(max_size=30),
        st.sampled_from(("", " AND ", "data.project:", ":x", "data.project:sockshop AND")),
    ),
    "text": st.text(max_size=30),
}


@pytest.fixture
def seeded(gateway: Gateway) -> Iterator[Gateway]:
    """The gateway with a few events of the project, so that queries have rows to page through."""
    for stage in ("dev", "dev", "staging"):
        event = {
            "type": f"sh.keptn.event.{stage}.delivery.triggered",
            "source": "fuzz",
            "id": str(uuid.uuid4()),
            "data": {"project": PROJECT, "stage": stage, "service": SERVICE},
        }
        assert gateway.post("/api/v1/event", json=event).status_code == 200
    yield gateway


@st.composite
def queries(draw: st.DrawFn) -> tuple[Target, list[tuple[str, str]]]:
    """A route, and its valid parameters plus the fuzzed one (sometimes twice)."""
    target = draw(st.sampled_from(TARGETS))
    values = draw(st.lists(VALUES[target.kind], min_size=1, max_size=2))
    return target, [*target.base, *((target.parameter, value) for value in values)]


@fuzz_settings(300)
@given(queries())
@example((Target(DATASTORE, "fromTime", "time", (("project", PROJECT),)),
          [("project", PROJECT), ("fromTime", "0001-01-01T00:00:00+01:00")]))  # fmt: skip
@example((Target(DATASTORE, "beforeTime", "time", (("project", PROJECT),)),
          [("project", PROJECT), ("beforeTime", "9999-12-31T23:59:59-01:00")]))  # fmt: skip
def test_query_parameters(seeded: Gateway, query: tuple[Target, list[tuple[str, str]]]) -> None:
    """No 5xx; a 400 is Keptn's error body naming the fuzzed parameter."""
    target, params = query
    response = seeded.get(target.path, params=params)
    event(f"{target.kind}: {response.status_code}")  # --hypothesis-show-statistics
    if response.status_code < 400:
        return
    message = assert_error_body(response)
    if response.status_code == 400 and message != NUL_MESSAGE:
        assert target.parameter in message, (target.parameter, params, message)
