"""OpenTelemetry tracing: one trace per Keptn context, exported where the ``OTEL_*`` variables say.

Off by default: with no exporter configured (see :func:`configure_tracing`) no tracer provider is
installed, every helper here returns at once and nothing is recorded.

The rules (docs/observability.md explains them for operators):

* **Trace id = Keptn context.** ``shkeptncontext`` is a UUID, and its 128 bits are the trace id
  (:func:`trace_id_for_context`; a context that is not a UUID is hashed). Every span Capstan
  makes for a context - the gateway's handling of its events, its workflows and activities, the
  pushes and webhook calls - lands in that one trace, however many events and processes it took.
* **Incoming ``traceparent``** (the CloudEvents distributed-tracing extension): if it is in the
  context's trace it becomes the parent of the gateway's span; otherwise the span is a root of
  the context's trace with a *link* to it, so the sender's trace is still one click away.
* **A new context from a traced event**: an event that carries a ``traceparent`` but no
  ``shkeptncontext`` gets the context derived from the trace id (:func:`context_for_trace_id`),
  so the sequence continues the sender's trace instead of starting a second one.
* **Emitted events** carry ``traceparent`` (and ``tracestate``) of the span that emitted them
  (:func:`inject_traceparent`); a push carries the push's own span, in its body and as the HTTP
  ``traceparent`` header (a single hop: the extension equals the header).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Link, SpanContext, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from temporalio.contrib.opentelemetry import TracingInterceptor

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "ContextTraceIdGenerator",
    "client_span",
    "configure_tracing",
    "context_for_trace_id",
    "context_from_traceparent",
    "context_span",
    "flush_tracing",
    "inject_traceparent",
    "parse_traceparent",
    "temporal_interceptors",
    "trace_id_for_context",
    "traceparent_headers",
    "tracing_enabled",
]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACER_NAME = "capstan"
_HTTP_PROTOBUF = "http/protobuf"

_W3C = TraceContextTextMapPropagator()
_forced_trace_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "capstan_forced_trace_id", default=None
)
_provider: TracerProvider | None = None


# ---- pure rules ---------------------------------------------------------------------------------


def trace_id_for_context(keptn_context: str) -> int:
    """The trace id of a Keptn context: the UUID's 128 bits, or a hash of any other string.

    Args:
        keptn_context: the ``shkeptncontext``.

    Returns:
        A valid (non-zero) 128-bit W3C trace id.
    """
    try:
        value = uuid.UUID(keptn_context).int
    except ValueError:
        value = int.from_bytes(hashlib.sha256(keptn_context.encode()).digest()[:16], "big")
    # the all-zero trace id is invalid in W3C trace context; the nil UUID maps to 1 instead
    return value or 1


def context_for_trace_id(trace_id: int) -> str:
    """The Keptn context whose trace id is ``trace_id`` (the inverse of :func:`trace_id_for_context`)."""
    return str(uuid.UUID(int=trace_id))


def parse_traceparent(traceparent: object, tracestate: object = None) -> SpanContext | None:
    """Read a W3C ``traceparent`` (and optional ``tracestate``) into a remote span context.

    Returns:
        The span context, or None when the value is missing or not a valid ``traceparent``.
    """
    if not isinstance(traceparent, str) or not traceparent:
        return None
    carrier = {TRACEPARENT: traceparent}
    if isinstance(tracestate, str) and tracestate:
        carrier[TRACESTATE] = tracestate
    found = trace.get_current_span(_W3C.extract(carrier)).get_span_context()
    return found if found.is_valid else None


def context_from_traceparent(event: Mapping[str, Any]) -> str | None:
    """The Keptn context a new event derives from its ``traceparent`` extension, if it has one."""
    parent = parse_traceparent(event.get(TRACEPARENT))
    return context_for_trace_id(parent.trace_id) if parent is not None else None


# ---- set-up -------------------------------------------------------------------------------------


class ContextTraceIdGenerator(RandomIdGenerator):
    """Random ids, except the trace id of a root span opened by :func:`context_span`."""

    def generate_trace_id(self) -> int:
        """The Keptn context's trace id inside :func:`context_span`, else a random one."""
        forced = _forced_trace_id.get()
        return forced if forced is not None else super().generate_trace_id()

    def is_trace_id_random(self) -> bool:
        """False for a context's trace id: a client may choose its context, so it may not be random.

        (The W3C ``random-trace-id`` flag then stays unset and ratio samplers do not rely on it.)
        """
        return _forced_trace_id.get() is None and super().is_trace_id_random()


def _exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    names = [name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [name for name in names if name]
    if not names:
        # Only an endpoint given: that is a clear enough wish for OTLP.
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        names = ["otlp"] if endpoint else []
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "none":
            return []
        if name == "otlp":
            protocol = (
                environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or _HTTP_PROTOBUF
            )
            if protocol != _HTTP_PROTOBUF:
                raise ValueError(
                    f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: Capstan exports OTLP over HTTP only"
                    f" ({_HTTP_PROTOBUF}); point it at the collector's HTTP port (4318)"
                )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())  # endpoint, headers, timeout from OTEL_EXPORTER_OTLP_*
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER={name!r} is not supported: use otlp, console or none")
    return exporters


def configure_tracing(service_name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Install the tracer provider the ``OTEL_*`` variables ask for; do nothing when none is asked.

    Read: ``OTEL_SDK_DISABLED``, ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``, ``none``; unset
    means off unless an OTLP endpoint is set), the ``OTEL_EXPORTER_OTLP_*`` variables (endpoint,
    headers, timeout; ``http/protobuf`` only), ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``/``_ARG`` and ``OTEL_BSP_*``.

    Args:
        service_name: ``service.name`` unless ``OTEL_SERVICE_NAME`` says otherwise.
        environ: the environment to read (``os.environ`` when omitted).

    Returns:
        True when tracing is on.

    Raises:
        ValueError: an unsupported exporter or protocol is configured.
    """
    global _provider
    env = os.environ if environ is None else environ
    if _provider is not None:
        return True
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporters(env)
    if not exporters:
        return False
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource, id_generator=ContextTraceIdGenerator())
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    return True


def flush_tracing(timeout_millis: int = 5000) -> None:
    """Export the spans still buffered (at process exit: the worker exits without finalizers).

    Flushed rather than shut down: the provider is global to the process and stays usable, e.g.
    for a second gateway app in the same process.
    """
    if _provider is not None:
        _provider.force_flush(timeout_millis)


def tracing_enabled() -> bool:
    """Whether :func:`configure_tracing` installed a tracer provider in this process."""
    return _provider is not None


def temporal_interceptors() -> list[TracingInterceptor]:
    """Temporal's tracing interceptor when tracing is on (client-side: workers inherit it)."""
    return [TracingInterceptor(trace.get_tracer(TRACER_NAME))] if tracing_enabled() else []


# ---- spans --------------------------------------------------------------------------------------


@contextlib.contextmanager
def context_span(
    name: str,
    keptn_context: str,
    *,
    traceparent: object = None,
    tracestate: object = None,
    kind: SpanKind = SpanKind.SERVER,
    attributes: Mapping[str, str] | None = None,
    tracer: trace.Tracer | None = None,
) -> Iterator[trace.Span | None]:
    """Run the block in a span of the Keptn context's trace (nothing at all when tracing is off).

    Args:
        name: the span name.
        keptn_context: the context whose trace the span joins.
        traceparent: the event's ``traceparent``: the parent if it is in the context's trace,
            else a link.
        tracestate: the event's ``tracestate``.
        kind: the span kind.
        attributes: more span attributes (``keptn.context`` is always set).
        tracer: the tracer (tests); the global provider's by default.
    """
    if tracer is None and not tracing_enabled():
        yield None
        return
    tracer = tracer or trace.get_tracer(TRACER_NAME)
    trace_id = trace_id_for_context(keptn_context)
    incoming = parse_traceparent(traceparent, tracestate)
    links = []
    # the request's own span (e.g. FastAPI's HTTP server span) is in another trace: link it
    current = trace.get_current_span().get_span_context()
    if current.is_valid and current.trace_id != trace_id:
        links.append(Link(current, {"capstan.link": "request"}))
    if incoming is not None and incoming.trace_id == trace_id:
        parent = trace.set_span_in_context(trace.NonRecordingSpan(incoming))
    elif incoming is None and current.is_valid and current.trace_id == trace_id:
        parent = otel_context.get_current()  # the request already is in the context's trace
    else:
        if incoming is not None:
            links.append(Link(incoming, {"capstan.link": "event traceparent"}))
        parent = otel_context.Context()  # a root of the context's trace (see ContextTraceIdGenerator)
    token = _forced_trace_id.set(trace_id)
    try:
        span = tracer.start_span(
            name,
            context=parent,
            kind=kind,
            links=links,
            attributes={"keptn.context": keptn_context, **(attributes or {})},
        )
    finally:
        _forced_trace_id.reset(token)
    with trace.use_span(span, end_on_exit=True):
        yield span


@contextlib.contextmanager
def client_span(name: str, attributes: Mapping[str, str] | None = None) -> Iterator[None]:
    """Run an outbound call in a CLIENT span under the current one (nothing when tracing is off)."""
    if not tracing_enabled():
        yield
        return
    with trace.get_tracer(TRACER_NAME).start_as_current_span(
        name, kind=SpanKind.CLIENT, attributes=dict(attributes or {})
    ):
        yield


def traceparent_headers() -> dict[str, str]:
    """``traceparent``/``tracestate`` of the current span, for an outbound request (empty when off)."""
    if not tracing_enabled():
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {key: carrier[key] for key in (TRACEPARENT, TRACESTATE) if key in carrier}


def inject_traceparent(event: dict[str, Any], *, replace: bool = False) -> dict[str, Any]:
    """Set the current span as the event's ``traceparent``/``tracestate`` extension attributes.

    Args:
        event: the wire event; it is changed in place.
        replace: overwrite a ``traceparent`` the event already has (a push names its own span).

    Returns:
        The same event, for chaining.
    """
    if not tracing_enabled() or (TRACEPARENT in event and not replace):
        return event
    headers = traceparent_headers()
    if TRACEPARENT in headers:
        event.pop(TRACESTATE, None)
        event.update(headers)
    return event
