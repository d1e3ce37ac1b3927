"""Hypothesis on ``POST /api/v1/event`` in every mode: never a 5xx, errors that name what is wrong.

The gateway reads an event in four ways, chosen by Content-Type (``api/cloudevents_http.py``,
``docs/api.md``): Keptn's own JSON body, a structured CloudEvent
(``application/cloudevents+json``), a binary CloudEvent (``ce-*`` headers, the body is ``data``),
and batches (``application/cloudevents-batch+json``), which are documented as refused with 415.

Each mode starts from valid events (a sequence trigger, task events, a problem, a log error,
``monitoring.configure``) of the seeded project and breaks them: attributes and ``data`` leaves
of any type, removed and unknown attributes, deep nesting; headers with any bytes, bad percent
escapes, duplicates and unknown ``ce-`` names; bodies that are not UTF-8, empty, truncated or
huge; content types with odd cases and parameters. Every answer must be a 2xx with the Keptn
context, or a 4xx with Keptn's ``{code, message}``; where one attribute was broken and the event
is refused with 400, the message names that attribute.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import event, example, given
from hypothesis import strategies as st

from api.cloudevents_http import MAX_EVENT_BYTES
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.conftest import PROJECT, SERVICE, Gateway, assert_error_body
from tests.fuzz.strategies import DEEP, Mutant, mutants, wild_values

EVENTS = "/api/v1/event"
_DATA = {"project": PROJECT, "stage": "dev", "service": SERVICE}
TEMPLATES: tuple[dict[str, Any], ...] = (
    {"type": "sh.keptn.event.dev.delivery.triggered", "data": {**_DATA, "labels": {"by": "fuzz"}}},
    {"type": "sh.keptn.event.staging.evaluation.triggered", "data": {**_DATA, "stage": "staging"}},
    {
        "type": "sh.keptn.event.deployment.finished",
        "triggeredid": "3f5c3a5e-0d4b-4b4e-9d1e-7a8e0d1c2b3a",
        "data": {**_DATA, "result": "pass", "status": "succeeded"},
    },
    {"type": "sh.keptn.event.test.started", "triggeredid": "0d4b", "data": dict(_DATA)},
    {"type": "sh.keptn.events.problem", "data": {**_DATA, "State": "OPEN", "ProblemTitle": "cpu"}},
    {"type": "sh.keptn.log.error", "data": {"message": "it broke", "integrationid": "x"}},
    {"type": "sh.keptn.event.monitoring.configure", "data": {"project": PROJECT, "type": "prometheus"}},
)
"""Valid events (the envelope is added per mode)."""

ENVELOPE_NAMES = ("specversion", "id", "source", "type", "time", "shkeptncontext", "triggeredid")


def _envelope(template: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "fuzz",
        "time": "2024-05-06T07:08:09.123Z",
        "shkeptncontext": str(uuid.uuid5(uuid.NAMESPACE_URL, event_id)),
        **template,
    }


@st.composite
def broken_events(draw: st.DrawFn) -> Mutant:
    """A valid full event with one or two attributes or data leaves broken (no YAML bombs)."""
    event = _envelope(draw(st.sampled_from(TEMPLATES)), str(draw(st.uuids())))
    return draw(mutants(event, most=2, operations=("replace", "replace", "delete", "extra", "deep")))


def _json_text(document: Any, depth: int) -> str:
    # JSON of any value: NaN and the infinities come out as Python's NaN/Infinity, not JSON.
    text = json.dumps(document)
    return text.replace(f'"{DEEP}"', "[" * depth + "]" * depth)


_depths = st.sampled_from((3, 200, 990, 5000, 100_000))
_encodings = st.sampled_from(("utf-8", "utf-8", "utf-8", "utf-16", "latin-1", "utf-8-sig"))


def _encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


def _with_parameters(media_type: str) -> st.SearchStrategy[str]:
    return st.builds(
        lambda case, parameters: f"{case(media_type)}{parameters}",
        st.sampled_from((str, str.upper, str.title)),
        st.sampled_from(("", "; charset=utf-8", ";charset=UTF-8", ' ; charset="latin-1"', ";;", "; x", ";=")),
    )


def _names_a_changed_attribute(message: str, mutant: Mutant, *, prefix: str = "") -> bool:
    """Whether a 400's message names one of the changed paths (by its first one or two steps)."""
    if message.startswith(("body is ", "data is ")):
        return True  # the body does not decode (too deep, NaN): no path in it can be named
    for path in mutant.changed:
        if not path:
            return True  # the whole body was replaced: any message about it will do
        head = f"{prefix}{path[0]}"
        if str(path[0]) == "type":
            return True  # another type brings other rules, about other fields
        if path[0] == "data" and len(path) > 1 and isinstance(path[1], str):
            if f"data.{path[1]}" in message or (path[1] and path[1] in message):
                return True
        # Messages quote odd names with repr(): '\\U00018cd6' names '\U00018cd6'.
        if any(name in message for name in (head, str(path[0]), repr(str(path[0]))[1:-1])):
            return True
    return False


def _check(response: Any, mutant: Mutant | None = None, *, prefix: str = "") -> None:
    event(f"status {response.status_code}")  # --hypothesis-show-statistics
    if response.status_code == 200:
        assert isinstance(response.json()["keptnContext"], str)
        return
    message = assert_error_body(response)
    # A 404 names data.project or data.service; a 409 names the id; a 415 or 413 the body.
    if response.status_code == 400 and mutant is not None:
        assert _names_a_changed_attribute(message, mutant, prefix=prefix), (mutant.changed, message)


# --- Keptn's JSON and structured CloudEvents ----------------------------------------------------


def test_the_valid_events_are_accepted_in_every_mode(gateway: Gateway) -> None:
    """The events every mutation starts from are accepted (else the mutations prove little)."""
    for template in TEMPLATES:
        document = _envelope(template, str(uuid.uuid4()))
        structured = {"content-type": "application/cloudevents+json"}
        for headers in ({}, structured):
            document["id"] = str(uuid.uuid4())
            response = gateway.post(EVENTS, content=json.dumps(document).encode(), headers=headers)
            assert response.status_code == 200, response.text
        binary = {f"ce-{name}": str(value) for name, value in document.items() if name != "data"}
        binary["ce-id"] = str(uuid.uuid4())
        response = gateway.post(EVENTS, content=json.dumps(document["data"]).encode(), headers=binary)
        assert response.status_code == 200, response.text


@fuzz_settings(60)
@given(
    mutant=broken_events(),
    structured=st.booleans(),
    depth=_depths,
    data=st.data(),
)
def test_json_and_structured_events(
    gateway: Gateway, mutant: Mutant, structured: bool, depth: int, data: st.DataObject
) -> None:
    """A broken event as Keptn's JSON or as a structured CloudEvent: 200 or a 4xx naming it."""
    media_type = "application/cloudevents+json" if structured else "application/json"
    content_type = data.draw(_with_parameters(media_type), label="content-type")
    body = _json_text(mutant.document, depth).encode()
    response = gateway.post(EVENTS, content=body, headers={"content-type": content_type})
    _check(response, mutant)


@fuzz_settings(60)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        wild_values.map(json.dumps).map(str.encode),
        st.builds(_encode, st.text(max_size=100), _encodings),
        st.builds(
            lambda text, cut: text[:cut],
            st.just(json.dumps(_envelope(TEMPLATES[0], "x")).encode()),
            st.integers(0, 200),
        ),  # fmt: skip
    ),
    content_type=st.one_of(
        st.none(),
        st.sampled_from(
            (
                "application/json",
                "application/cloudevents+json",
                "text/json",
                "application/vnd.k+json",
                "text/plain",
                "application/xml",
                "multipart/form-data; boundary=x",
                "",
                ";",
                "+json",
                "*/*",
            )
        ),  # fmt: skip
        st.text(max_size=30),
    ),
)
@example(body=b'{"type": "x", "data": {}, "time": "0001-01-01T00:00:00+01:00"}', content_type=None)
@example(body=b"[" * 100_000 + b"]" * 100_000, content_type="application/json")
@example(body=b'{"type": "x", "data": {}}', content_type="application/cloudevents+json")
@example(
    body=b'{"type": "sh.keptn.log.error", "data": {"m": "\\ud800"}}', content_type=None
)  # lone surrogate
@example(body='{"type": "sh.keptn.log.error", "data": {"m": "\\ud800"}}'.encode("utf-16"), content_type=None)
@example(body=b'{"type": "sh.keptn.log.error", "data": {"m": NaN}}', content_type=None)  # not JSON
@example(body=b'{"type": "sh.keptn.log.error", "data": {"m": ' + b"9" * 5000 + b"}}", content_type=None)
def test_any_body_with_any_content_type(gateway: Gateway, body: bytes, content_type: str | None) -> None:
    """Random, non-UTF-8, truncated and nested bodies under any content type: never a 5xx."""
    headers = {} if content_type is None else {"content-type": content_type.encode("utf-8")}
    _check(gateway.post(EVENTS, content=body, headers=headers))


# --- binary CloudEvents -------------------------------------------------------------------------

_header_values = st.one_of(
    st.text(max_size=30).map(lambda text: text.encode("utf-8")),
    st.binary(max_size=30),
    st.sampled_from(
        (b"", b" ", b"%", b"%f", b"%ff", b"%C0%A0", b"%00", b"%zz", b"a%20b", b"\xff\xfe", b"1.0 ")
    ),
)


@st.composite
def binary_requests(draw: st.DrawFn) -> tuple[list[tuple[bytes, bytes]], bytes, tuple[str, ...]]:
    """Headers, body and the names of the ``ce-`` headers that were broken (if one or more were)."""
    event = _envelope(draw(st.sampled_from(TEMPLATES)), str(draw(st.uuids())))
    data = event.pop("data")
    headers = [(f"ce-{name}".encode(), str(value).encode()) for name, value in event.items()]
    broken: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        name = draw(
            st.sampled_from((*ENVELOPE_NAMES, "datacontenttype", "", "x", "a-b", "UPPER", "x_y", "0"))
        )
        header = f"ce-{name}".encode()
        how = draw(st.sampled_from(("replace", "delete", "duplicate")))
        if how == "delete":
            headers = [(key, value) for key, value in headers if key != header]
        else:
            if how == "replace":
                headers = [(key, value) for key, value in headers if key != header]
            headers.append((header, draw(_header_values)))
        broken.append(f"ce-{name}")
    content_type = draw(
        st.one_of(
            _with_parameters("application/json"),
            st.sampled_from(("", "text/plain", "application/octet-stream")),
        )
    )
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    body_mutant = draw(mutants(data, most=1, operations=("replace", "delete", "extra")))
    body = draw(
        st.one_of(
            st.just(json.dumps(data).encode()),
            st.just(json.dumps(body_mutant.document).encode()),
            st.binary(max_size=50),
            st.just(b""),
        )
    )
    return headers, body, tuple(broken)


@fuzz_settings(80)
@given(binary_requests())
def test_binary_events(
    gateway: Gateway, request: tuple[list[tuple[bytes, bytes]], bytes, tuple[str, ...]]
) -> None:
    """``ce-*`` headers of any bytes, duplicated or missing, over any body: 200 or a 4xx."""
    headers, body, broken = request
    response = gateway.post(EVENTS, content=body, headers=headers)
    event(f"status {response.status_code}")  # --hypothesis-show-statistics
    if response.status_code == 200:
        return
    message = assert_error_body(response)
    if response.status_code == 400:
        # The header, its attribute, or else the body (data) or the event type's rules.
        attributes = tuple(name.removeprefix("ce-") for name in broken if name != "ce-")
        named = (*broken, *attributes, "data", "body", "type", "triggeredid", "extension attribute")
        # Header names arrive lower-cased (ASGI): ce-UPPER is named ce-upper.
        assert any(name and name.lower() in message.lower() for name in named), (headers, message)


# --- batches and size -------------------------------------------------------------------------------


@fuzz_settings(20)
@given(
    content_type=_with_parameters("application/cloudevents-batch+json"),
    events=st.lists(broken_events().map(lambda mutant: mutant.document), max_size=3),
)
def test_batches_are_refused_with_415(gateway: Gateway, content_type: str, events: list[Any]) -> None:
    """Batched CloudEvents are not supported (docs/api.md): 415 saying so, whatever the batch holds."""
    response = gateway.post(
        EVENTS, content=_json_text(events, 3).encode(), headers={"content-type": content_type}
    )
    assert response.status_code == 415, response.text
    assert "batch" in assert_error_body(response)


def test_an_oversized_event_is_refused_with_413(gateway: Gateway) -> None:
    """Just over 1 MiB, in each mode: 413 with Keptn's body, before any parsing."""
    padding = "x" * MAX_EVENT_BYTES
    event = {**_envelope(TEMPLATES[0], str(uuid.uuid4())), "padding": padding}
    for content_type in ("application/json", "application/cloudevents+json"):
        response = gateway.post(
            EVENTS, content=json.dumps(event).encode(), headers={"content-type": content_type}
        )
        assert response.status_code == 413
        assert_error_body(response)
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": TEMPLATES[0]["type"]}
    response = gateway.post(EVENTS, content=json.dumps({"p": padding}).encode(), headers=headers)
    assert response.status_code == 413
    assert_error_body(response)
