"""Keptn CloudEvents as pydantic models: the stored envelope, the API's partial input, common data.

* :class:`KeptnEvent` is an event as Capstan stores and emits it (CloudEvents 1.0, JSON
  structured mode, Keptn's extension attributes). :meth:`KeptnEvent.to_wire` gives the JSON
  object Keptn put on the wire and in its datastore.
* :class:`IncomingEvent` is the body of ``POST /api/v1/event``: only ``type`` and ``data`` are
  required; :func:`keptn.validation.stamp_event` turns it into a ``KeptnEvent``.
* :class:`EventData` reads the common data fields (``project``, ``stage``, ``service``, …).

Strings are strict everywhere (a number is never silently turned into a string) and ``time``
must be an RFC 3339 string with a time zone (pydantic's lax mode would read ``0`` as 1970).
"""

from __future__ import annotations

import copy
import datetime
import re
import uuid
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from keptn._gouuid import go_uuid_from_seed, go_uuid_parse
from keptn._keptntime import format_keptn_time, parse_keptn_time
from keptn.errors import InvalidEventError, InvalidInputError
from keptn.event_types import SequenceEventType, TaskEventType, parse_event_type

__all__ = [
    "DEFAULT_DATACONTENTTYPE",
    "EXTENSION_NAME_PATTERN",
    "EventData",
    "IncomingEvent",
    "KeptnEvent",
    "ResultType",
    "StatusType",
    "format_keptn_time",
    "keptn_context_from",
    "parse_incoming_event",
    "parse_keptn_time",
]

DEFAULT_DATACONTENTTYPE = "application/json"
EXTENSION_NAME_PATTERN = r"^[a-z0-9]{1,20}$"
"""CloudEvents 1.0 attribute names: lower-case ASCII letters and digits, at most 20 characters."""

_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")


class ResultType(StrEnum):
    """Known values of ``data.result`` (go-utils ``ResultType``; note ``fail``, not ``failed``)."""

    PASS = "pass"
    WARNING = "warning"
    FAIL = "fail"


class StatusType(StrEnum):
    """Known values of ``data.status`` (go-utils ``StatusType``; ``aborted`` beyond the spec)."""

    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    UNKNOWN = "unknown"
    ABORTED = "aborted"


def keptn_context_from(value: str | None, *, new_uuid: Callable[[], str] | None = None) -> str:
    """Apply Keptn's ``createOrApplyKeptnContext`` to a client-supplied ``shkeptncontext``.

    * empty or missing: a new random UUID (from ``new_uuid()`` if given, else ``uuid4``);
    * a UUID in any form Go's ``uuid.Parse`` accepts (canonical, upper case, ``urn:uuid:``,
      braces, 32 hex digits): that UUID. Capstan returns its canonical lower-case form, where
      Keptn returned the string unchanged, so that one context always has one spelling (it names
      the context workflow and is compared verbatim by queries);
    * anything else: the deterministic UUID Keptn derived from the string, see
      :func:`keptn._gouuid.go_uuid_from_seed` - so a client that repeats a non-UUID context such
      as ``"my-pipeline-run-42"`` lands in the same context every time.

    Args:
        value: the client's ``shkeptncontext``.
        new_uuid: optional zero-argument callable returning a fresh UUID string.

    Returns:
        The context to use, a canonical UUID string.
    """
    if not value:
        return str(new_uuid()) if new_uuid is not None else str(uuid.uuid4())
    parsed = go_uuid_parse(value)
    if parsed is not None:
        return str(parsed)
    return str(go_uuid_from_seed(value))


NonEmptyStr = Annotated[str, Field(strict=True, min_length=1)]


def _check_time(value: object) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_keptn_time(value)
        except InvalidInputError as exc:
            raise PydanticCustomError("keptn_time", "{reason}", {"reason": exc.message}) from None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise PydanticCustomError("keptn_time", "time: must carry a time zone", {})
        return value
    raise PydanticCustomError("keptn_time", "time: must be an RFC 3339 timestamp string", {})


class _Envelope(BaseModel):
    """Shared handling of CloudEvents extension attributes (every attribute not declared)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, Any] = Field(init=False)

    @model_validator(mode="before")
    @classmethod
    def _drop_null_extensions(cls, data: Any) -> Any:
        # CloudEvents' JSON format treats a null attribute as absent; Go clients emit them.
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v is not None or k in cls.model_fields}
        return data

    @model_validator(mode="after")
    def _check_extensions(self) -> Self:
        for name, value in (self.model_extra or {}).items():
            # Messages are formatted here, not by pydantic: its templates know no {x!r}.
            if not isinstance(name, str) or not _EXTENSION_NAME.fullmatch(name):
                raise PydanticCustomError(
                    "extension_name",
                    f"extension attribute {str(name)!r}: CloudEvents attribute names must match"
                    f" {EXTENSION_NAME_PATTERN} (lower-case letters and digits, at most 20)",
                    {"name": str(name)},
                )
            if isinstance(value, float) or not isinstance(value, str | int | bool):
                raise PydanticCustomError(
                    "extension_value",
                    f"extension attribute {name!r}: value must be a string, an integer or a boolean",
                    {"name": name},
                )
        return self

    @property
    def extensions(self) -> dict[str, str | int | bool]:
        """The CloudEvents extension attributes beyond Keptn's own (e.g. ``traceparent``)."""
        return dict(self.model_extra or {})


def _to_invalid_event(exc: ValidationError, *, prefix: str = "") -> InvalidEventError:
    """Turn pydantic's first error into an ``InvalidEventError`` naming the attribute."""
    error = exc.errors(include_url=False)[0]
    ctx = error.get("ctx") or {}
    parts = [f"[{p}]" if isinstance(p, int) else str(p) for p in error["loc"]]
    field = ".".join(parts).replace(".[", "[") or str(ctx.get("name", "")) or None
    kind = error["type"]
    if kind == "missing":
        reason = "required attribute is missing"
    elif kind in ("string_type", "string_too_short"):
        reason = "must be a non-empty string" if kind == "string_too_short" else "must be a string"
    elif kind in ("dict_type", "model_type"):
        reason = "must be a JSON object"
    elif kind == "literal_error":
        reason = f"must be {error['ctx']['expected']}" if "expected" in ctx else error["msg"]
    else:
        reason = str(error["msg"])
    if field and not reason.startswith(f"{field}:") and not reason.startswith("extension attribute"):
        reason = f"{field}: {reason}"
    return InvalidEventError(prefix + reason, field=(prefix + field) if field else None)


class KeptnEvent(_Envelope):
    """A Keptn CloudEvent as stored and emitted by Capstan.

    ``time`` is normalised to UTC and cut to milliseconds, the precision of Keptn's wire format,
    so that an event equals its own :meth:`to_wire` / :meth:`from_wire` round trip. Attributes
    not declared here are CloudEvents extensions (name ``^[a-z0-9]{1,20}$``, value string,
    integer or boolean) and are carried through unchanged.
    """

    specversion: Literal["1.0"] = "1.0"
    id: NonEmptyStr
    source: NonEmptyStr
    type: NonEmptyStr
    time: datetime.datetime
    datacontenttype: StrictStr = DEFAULT_DATACONTENTTYPE
    shkeptncontext: NonEmptyStr
    triggeredid: StrictStr | None = None
    gitcommitid: StrictStr | None = None
    shkeptnspecversion: StrictStr | None = None
    data: Annotated[dict[str, Any], Field(strict=True)]

    @model_validator(mode="before")
    @classmethod
    def _legacy_contenttype(cls, data: Any) -> Any:
        # Keptn's Go model serialised datacontenttype as "contenttype"; read either spelling.
        if isinstance(data, Mapping) and "contenttype" in data:
            data = dict(data)
            legacy = data.pop("contenttype")
            if data.get("datacontenttype") is None and legacy is not None:
                data["datacontenttype"] = legacy
        return data

    @field_validator("time", mode="before")
    @classmethod
    def _parse_time(cls, value: object) -> datetime.datetime:
        parsed = _check_time(value)
        if parsed is None:
            raise PydanticCustomError("keptn_time", "time: required attribute is missing", {})
        utc = parsed.astimezone(datetime.UTC)
        return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)

    @field_serializer("time", when_used="json")
    def _serialize_time(self, value: datetime.datetime) -> str:
        # model_dump(mode="json") and model_dump_json() then agree with to_wire().
        return format_keptn_time(value)

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON object Keptn puts on the wire and in its datastore.

        ``time`` is formatted by :func:`format_keptn_time`; attributes that are None are left
        out; ``data`` is a deep copy, safe to modify.

        Returns:
            A JSON-serialisable dict.
        """
        wire: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": format_keptn_time(self.time),
            "datacontenttype": self.datacontenttype,
            "shkeptncontext": self.shkeptncontext,
            "triggeredid": self.triggeredid,
            "gitcommitid": self.gitcommitid,
            "shkeptnspecversion": self.shkeptnspecversion,
        }
        wire = {key: value for key, value in wire.items() if value is not None}
        wire.update(self.extensions)
        wire["data"] = copy.deepcopy(self.data)
        return wire

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> KeptnEvent:
        """Read an event from its JSON object (as produced by :meth:`to_wire` or by Keptn).

        Args:
            wire: the decoded JSON object.

        Returns:
            The event.

        Raises:
            InvalidEventError: naming the offending attribute, if the object is not a valid event.
        """
        if not isinstance(wire, Mapping):
            raise InvalidEventError("event must be a JSON object", field="body")
        try:
            return cls.model_validate(dict(wire))
        except ValidationError as exc:
            raise _to_invalid_event(exc) from None

    def event_type(self) -> TaskEventType | SequenceEventType:
        """Parse this event's ``type`` (see :func:`keptn.event_types.parse_event_type`).

        Returns:
            The parsed type.

        Raises:
            InvalidEventError: if the type is not a task or sequence event type.
        """
        return parse_event_type(self.type)


class IncomingEvent(_Envelope):
    """The body of Keptn's ``POST /api/v1/event``: a partial event.

    Only ``type`` and ``data`` (an object) are required. Everything else is optional and, where
    present, must have the right JSON type: ``specversion`` must be ``"1.0"``, ``time`` an
    RFC 3339 string with a time zone; ``contenttype`` is Keptn's legacy name of
    ``datacontenttype``. Empty strings count as absent when the event is stamped, as in Keptn.
    """

    type: StrictStr
    data: Annotated[dict[str, Any], Field(strict=True)]
    specversion: Literal["1.0"] | None = None
    id: StrictStr | None = None
    source: StrictStr | None = None
    time: datetime.datetime | None = None
    datacontenttype: StrictStr | None = None
    contenttype: StrictStr | None = None
    shkeptncontext: StrictStr | None = None
    triggeredid: StrictStr | None = None
    gitcommitid: StrictStr | None = None
    shkeptnspecversion: StrictStr | None = None

    @field_validator("time", mode="before")
    @classmethod
    def _parse_time(cls, value: object) -> datetime.datetime | None:
        return _check_time(value)


def parse_incoming_event(body: object) -> IncomingEvent:
    """Read the JSON body of ``POST /api/v1/event``.

    Args:
        body: the decoded JSON value.

    Returns:
        The partial event (not yet checked against Keptn's rules, see
        :func:`keptn.validation.validate_incoming_event`).

    Raises:
        InvalidEventError: naming the offending attribute, if the body is not a partial event.
    """
    if not isinstance(body, Mapping):
        raise InvalidEventError("event must be a JSON object", field="body")
    try:
        return IncomingEvent.model_validate(dict(body))
    except ValidationError as exc:
        raise _to_invalid_event(exc) from None


class EventData(BaseModel):
    """The common fields of every Keptn event's ``data`` (go-utils ``keptnv2.EventData``).

    ``status`` and ``result`` are plain strings, as in go-utils: Keptn accepted any non-empty
    value on ``.finished`` and counted an unknown result as ``fail``, so a reader must be able to
    see such values. Compare them with :class:`StatusType` / :class:`ResultType`. Task-specific
    keys (``deployment``, ``evaluation``, …) are kept as extra attributes.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    project: StrictStr | None = None
    stage: StrictStr | None = None
    service: StrictStr | None = None
    labels: dict[StrictStr, StrictStr] | None = None
    status: StrictStr | None = None
    result: StrictStr | None = None
    message: StrictStr | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> EventData:
        """Read the common fields from an event's ``data``; other keys never cause a failure.

        Args:
            data: the ``data`` object.

        Returns:
            The common fields (missing or null ones are None).

        Raises:
            InvalidEventError: if a common field has the wrong JSON type (e.g. a numeric
                ``data.project`` or a non-string label), naming it as ``data.<field>``. This is
                where Keptn failed with "could not parse common event data".
        """
        if not isinstance(data, Mapping):
            raise InvalidEventError("data: must be a JSON object", field="data")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise _to_invalid_event(exc, prefix="data.") from None

    @classmethod
    def from_event(cls, event: KeptnEvent | IncomingEvent) -> EventData:
        """Read the common fields of an event's ``data`` (see :meth:`from_data`).

        Args:
            event: a stored or incoming event.

        Returns:
            The common fields.

        Raises:
            InvalidEventError: if a common field has the wrong JSON type.
        """
        return cls.from_data(event.data)
