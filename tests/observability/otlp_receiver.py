"""A real OTLP/HTTP trace receiver on loopback: decodes ``ExportTraceServiceRequest`` protobuf."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.fixtures.ports import free_port


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, with the ids as integers (as the OTel API has them)."""

    service: str
    name: str
    kind: int
    trace_id: int
    span_id: int
    parent_span_id: int | None
    attributes: dict[str, Any]
    links: list[tuple[int, int]]
    """(trace id, span id) of each link."""


def _value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value")) if any_value.WhichOneof("value") else None


@dataclass
class OtlpReceiver:
    """Spans received at ``endpoint`` (``OTEL_EXPORTER_OTLP_ENDPOINT``), in arrival order."""

    endpoint: str
    spans: list[ReceivedSpan] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)


def _decode(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    found = []
    for resource_spans in request.resource_spans:
        attributes = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        service = str(attributes.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found.append(
                    ReceivedSpan(
                        service=service,
                        name=span.name,
                        kind=span.kind,
                        trace_id=int.from_bytes(span.trace_id, "big"),
                        span_id=int.from_bytes(span.span_id, "big"),
                        parent_span_id=int.from_bytes(span.parent_span_id, "big")
                        if span.parent_span_id
                        else None,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        links=[
                            (int.from_bytes(link.trace_id, "big"), int.from_bytes(link.span_id, "big"))
                            for link in span.links
                        ],
                    )
                )
    return found


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """Serve ``POST /v1/traces`` on a free loopback port until the block ends."""
    port = free_port()
    state = OtlpReceiver(endpoint=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            ok = self.path == "/v1/traces" and self.headers.get("content-type") == "application/x-protobuf"
            if ok:
                spans = _decode(body)
                with state.lock:
                    state.spans.extend(spans)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200 if ok else 400)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
