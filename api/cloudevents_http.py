"""Reading a Keptn event from an HTTP request, in any of the modes Keptn clients use.

The mode is chosen by Content-Type, as the CloudEvents HTTP binding says (the cloudevents SDK
guesses from ``ce-`` headers instead, which misreads structured requests that repeat them):

- ``application/cloudevents+json``: structured mode; the body is the whole event and the
  envelope is strict (``specversion``, ``id``, ``source``, ``type`` required).
- any content type with a ``ce-specversion`` header: binary mode; attributes come from
  percent-encoded ``ce-*`` headers, the body is the event's ``data`` (a JSON object).
- ``application/json`` (or none) without ``ce-`` headers: Keptn's own ``POST /v1/event`` body, a
  *partial* event whose ``id``, ``time`` and ``shkeptncontext`` the gateway fills in.
- ``application/cloudevents-batch+json`` and anything else: 415.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from fastapi import HTTPException, Request

from keptn.errors import InvalidEventError
from keptn.events import IncomingEvent, parse_incoming_event

STRUCTURED_TYPE = "application/cloudevents+json"
BATCH_TYPE = "application/cloudevents-batch+json"
CE_HEADER_PREFIX = "ce-"

# CloudEvents consumers SHOULD accept 64 KiB; Keptn payloads with merged task data grow larger,
# so allow more, but bound it: the event is stored and carried through workflow history.
MAX_EVENT_BYTES = 1024 * 1024

REQUIRED_STRUCTURED = ("specversion", "id", "source", "type")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type in ("", "application/json", "text/json") or media_type.endswith("+json")


# "\ud800" decodes to a lone surrogate, which no UTF-8 text (nor PostgreSQL) can hold. Only such
# an escape can produce one (the body is decoded strictly), so only then is the value checked.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which are not JSON: PostgreSQL's jsonb refuses them.
    raise ValueError(f"{name} is not a JSON value")


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        # The encoding as json.loads(bytes) detects it (UTF-8, with or without BOM, or UTF-16/32).
        text = body.decode(json.detect_encoding(body))
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        # JSONDecodeError, UnicodeDecodeError, NaN/Infinity, and integers of more than 4300 digits
        raise InvalidEventError(f"{what} is not valid JSON: {exc}", field=what) from None
    except RecursionError:
        raise InvalidEventError(f"{what} is nested too deeply", field=what) from None
    if "\\u0000" in text and isinstance(value, dict):
        _refuse_nul(value)
    if _SURROGATE_ESCAPE.search(text) is not None and not _encodable(value):
        raise InvalidEventError(
            f"{what} is not valid JSON: a \\u escape is half of a UTF-16 surrogate pair", field=what
        )
    if not isinstance(value, dict):
        raise InvalidEventError(f"{what} must be a JSON object", field=what)
    return value


def _require_envelope(attributes: dict[str, Any], names: tuple[str, ...], *, prefix: str = "") -> None:
    for name in names:
        value = attributes.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidEventError(
                f"CloudEvent attribute '{prefix}{name}' is required and must be a non-empty string",
                field=f"{prefix}{name}",
            )


def _binary_attributes(request: Request) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for name, raw in request.headers.items():
        lower = name.lower()
        if not lower.startswith(CE_HEADER_PREFIX):
            continue
        attribute = lower[len(CE_HEADER_PREFIX) :]
        if attribute == "datacontenttype":
            # The binding carries datacontenttype in Content-Type; a second copy could disagree.
            raise InvalidEventError("use Content-Type, not ce-datacontenttype, in binary mode", field=lower)
        try:
            attributes[attribute] = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise InvalidEventError(
                f"header {lower} is not valid percent-encoded UTF-8", field=lower
            ) from None
    return attributes


def _nul_path(value: Any, path: str) -> str | None:
    """The path of the first key or string holding a NUL character, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = where if "\x00" in key else _nul_path(item, where)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _refuse_nul(document: dict[str, Any]) -> None:
    # PostgreSQL text and jsonb cannot hold NUL: say where it is, not just that the store refused.
    where = _nul_path(document, "")
    if where is not None:
        raise InvalidEventError(f"{where!r}: contains a NUL character, which cannot be stored", field=where)


def _to_incoming(document: dict[str, Any]) -> IncomingEvent:
    # JSON null means "absent" in the CloudEvents JSON format; Go clients send nulls freely.
    return parse_incoming_event({key: value for key, value in document.items() if value is not None})


async def read_incoming_event(request: Request) -> IncomingEvent:
    """Decode the event in a request, in structured, binary or Keptn JSON mode.

    Raises:
        InvalidEventError: the body or headers do not form an event (HTTP 400).
        HTTPException: 413 for an oversized body, 415 for an unsupported content type.
    """
    body = await request.body()
    if len(body) > MAX_EVENT_BYTES:
        raise HTTPException(413, f"event body larger than {MAX_EVENT_BYTES} bytes")
    media_type = _media_type(request)
    if media_type == BATCH_TYPE:
        raise HTTPException(415, "batched CloudEvents are not supported: send one event per request")
    if media_type == STRUCTURED_TYPE:
        document = _json_object(body, "body")
        _require_envelope(document, REQUIRED_STRUCTURED)
        return _to_incoming(document)
    if "ce-specversion" in request.headers:
        attributes = _binary_attributes(request)
        _require_envelope(attributes, REQUIRED_STRUCTURED, prefix=CE_HEADER_PREFIX)
        _refuse_nul({f"{CE_HEADER_PREFIX}{name}": value for name, value in attributes.items()})
        if not _is_json(media_type):
            raise HTTPException(415, f"Content-Type '{media_type}': Keptn event data must be JSON")
        attributes["data"] = _json_object(body, "data")
        return _to_incoming(attributes)
    if _is_json(media_type):
        return _to_incoming(_json_object(body, "body"))
    raise HTTPException(
        415,
        f"Content-Type '{media_type}' is not supported: send application/json, "
        f"{STRUCTURED_TYPE}, or a binary-mode CloudEvent",
    )
