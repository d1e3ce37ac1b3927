"""The tracing rules: trace id from the Keptn context, traceparent as parent or link, off by default."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from capstan import telemetry
from capstan.telemetry import (
    ContextTraceIdGenerator,
    configure_tracing,
    context_for_trace_id,
    context_from_traceparent,
    context_span,
    inject_traceparent,
    parse_traceparent,
    temporal_interceptors,
    trace_id_for_context,
    traceparent_headers,
)

CONTEXT = "14af8b8c-d239-4396-9718-9a120116fcea"


@pytest.fixture
def spans() -> tuple[trace.Tracer, InMemorySpanExporter]:
    """A tracer of a private provider (the process's global provider stays untouched)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=ContextTraceIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def test_a_uuid_context_is_the_trace_id() -> None:
    assert trace_id_for_context(CONTEXT) == 0x14AF8B8CD23943969718_9A120116FCEA
    assert context_for_trace_id(trace_id_for_context(CONTEXT)) == CONTEXT
    # any spelling of the UUID is the same trace
    assert trace_id_for_context(CONTEXT.upper()) == trace_id_for_context(f"urn:uuid:{CONTEXT}")


def test_other_contexts_are_hashed_stably_and_never_to_the_invalid_id() -> None:
    assert trace_id_for_context("my-pipeline-run-42") == trace_id_for_context("my-pipeline-run-42")
    assert trace_id_for_context("my-pipeline-run-42") != trace_id_for_context("my-pipeline-run-43")
    assert 0 < trace_id_for_context("my-pipeline-run-42") < 2**128
    assert trace_id_for_context(str(uuid.UUID(int=0))) == 1


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        42,
        "00-x",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "zz-" + "a" * 32 + "-" + "b" * 16 + "-01",
    ],
)
def test_invalid_traceparents_are_ignored(value: object) -> None:
    assert parse_traceparent(value) is None
    assert context_from_traceparent({"traceparent": value}) is None


def test_a_traced_event_without_context_derives_it_from_the_trace_id() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    parsed = parse_traceparent(parent, "vendor=x")
    assert parsed is not None and parsed.span_id == 0xB7AD6B7169203331
    assert context_from_traceparent({"traceparent": parent}) == "0af76519-16cd-43dd-8448-eb211c80319c"


def test_without_traceparent_the_span_is_a_root_of_the_contexts_trace(spans) -> None:
    tracer, exporter = spans
    with context_span("receive", CONTEXT, tracer=tracer):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.context.trace_id == trace_id_for_context(CONTEXT)
    assert span.parent is None and not span.links
    assert span.attributes["keptn.context"] == CONTEXT


def test_a_traceparent_in_the_contexts_trace_is_the_parent(spans) -> None:
    tracer, exporter = spans
    parent = f"00-{trace_id_for_context(CONTEXT):032x}-b7ad6b7169203331-01"
    with context_span("receive", CONTEXT, traceparent=parent, tracer=tracer):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.context.trace_id == trace_id_for_context(CONTEXT)
    assert span.parent is not None and span.parent.span_id == 0xB7AD6B7169203331
    assert not span.links


def test_a_traceparent_of_another_trace_is_a_link(spans) -> None:
    tracer, exporter = spans
    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with tracer.start_as_current_span("POST /api/v1/event") as request:
        with context_span("receive", CONTEXT, traceparent=other, tracer=tracer):
            pass
    receive = next(span for span in exporter.get_finished_spans() if span.name == "receive")
    assert receive.context.trace_id == trace_id_for_context(CONTEXT)
    assert receive.parent is None
    linked = {(link.context.trace_id, link.attributes["capstan.link"]) for link in receive.links}
    assert linked == {
        (0x0AF7651916CD43DD8448EB211C80319C, "event traceparent"),
        (request.get_span_context().trace_id, "request"),
    }


def test_a_request_already_in_the_contexts_trace_is_the_parent(spans) -> None:
    tracer, exporter = spans
    with context_span("outer", CONTEXT, tracer=tracer) as outer:
        with context_span("receive", CONTEXT, tracer=tracer):
            pass
    receive = next(span for span in exporter.get_finished_spans() if span.name == "receive")
    assert outer is not None and receive.parent is not None
    assert receive.parent.span_id == outer.get_span_context().span_id
    assert not receive.links


def test_emitted_events_carry_the_current_span(spans, monkeypatch: pytest.MonkeyPatch) -> None:
    tracer, _ = spans
    monkeypatch.setattr(telemetry, "_provider", object())  # as if configure_tracing had run
    with context_span("emit", CONTEXT, tracer=tracer) as span:
        event = inject_traceparent({"id": "e1"})
        kept = inject_traceparent({"id": "e2", "traceparent": "00-old"})
        replaced = inject_traceparent(
            {"id": "e3", "traceparent": "00-old", "tracestate": "a=b"}, replace=True
        )
    assert span is not None
    expected = f"00-{trace_id_for_context(CONTEXT):032x}-{span.get_span_context().span_id:016x}-01"
    assert event["traceparent"] == expected
    assert kept["traceparent"] == "00-old"
    assert replaced == {"id": "e3", "traceparent": expected}


def test_tracing_is_off_by_default() -> None:
    assert configure_tracing("capstan-test", {}) is False
    assert configure_tracing("capstan-test", {"OTEL_TRACES_EXPORTER": "none"}) is False
    disabled = {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}
    assert configure_tracing("capstan-test", disabled) is False
    assert not telemetry.tracing_enabled()
    with context_span("receive", CONTEXT) as span:
        assert span is None
        assert traceparent_headers() == {}
        assert inject_traceparent({"id": "e1"}) == {"id": "e1"}
    assert temporal_interceptors() == []


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER='zipkin' is not supported"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTLP over HTTP only"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
            "HTTP",
        ),
    ],
)
def test_unsupported_exporters_fail_at_start_naming_the_variable(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        configure_tracing("capstan-test", environ)
    assert not telemetry.tracing_enabled()
