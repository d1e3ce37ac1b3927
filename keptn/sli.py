"""SLI files (``<provider>/sli.yaml``) and what an SLI provider does with their queries, without I/O.

An SLI file maps SLI names to provider-specific queries (Keptn's ``SLIConfig``)::

    spec_version: "1.0"
    indicators:
      throughput: sum(rate(http_requests_total{service="$SERVICE"}[$DURATION_SECONDS]))
      score:                          # web provider: where to GET a JSON document, and which value
        url: http://quality.example/api/$PROJECT/$SERVICE
        path: $.data.score
        headers: {Accept: application/json}

Queries may hold placeholders that :func:`substitute_placeholders` fills in like Keptn's
prometheus-service did. :func:`json_path` is the small, safe JSONPath subset the web provider
uses to pick a value out of a response; nothing in a path is ever evaluated as code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from keptn.errors import InvalidInputError, KeptnError, NotFoundError
from keptn.events import parse_keptn_time
from keptn.yaml_loader import load_yaml

__all__ = [
    "DEFAULT_DEPLOYMENT",
    "InvalidJSONPathError",
    "JSONPathNotFoundError",
    "NoSLIValueError",
    "SLIFile",
    "WebIndicator",
    "duration_seconds",
    "json_path",
    "numeric_value",
    "parse_sli",
    "parse_sli_time",
    "prometheus_query",
    "prometheus_value",
    "substitute_placeholders",
    "web_indicator",
]

DEFAULT_DEPLOYMENT = "primary"
"""``$DEPLOYMENT`` when the event names no deployment (Keptn's prometheus-service default)."""


class SLIFile(BaseModel):
    """A parsed ``sli.yaml``."""

    model_config = ConfigDict(frozen=True)

    spec_version: str = ""
    """``spec_version`` as written (not validated, as in Keptn). Default empty."""
    indicators: dict[str, Any]
    """SLI name → query: a string, or for the web provider a mapping (see :class:`WebIndicator`)."""


class WebIndicator(BaseModel):
    """One indicator of the web SLI provider: GET ``url``, take the number at ``path``."""

    model_config = ConfigDict(frozen=True)

    url: str
    """Where to GET the JSON document; placeholders are substituted."""
    path: str = "$"
    """JSONPath (the subset of :func:`json_path`) of the value. Default ``$``: the whole document."""
    headers: dict[str, str] = {}
    """Request headers; placeholders in values are substituted. Default none."""


def parse_sli(content: str | bytes, *, what: str = "sli.yaml") -> SLIFile:
    """Parse an SLI file.

    Indicator values are checked only when used (:func:`prometheus_query`, :func:`web_indicator`),
    so that one malformed indicator fails that SLI alone, not the other SLIs of the file.

    Args:
        content: the file's text (bytes are decoded as UTF-8).
        what: how to name the file in messages, e.g. ``prometheus/sli.yaml``.

    Raises:
        InvalidInputError: not UTF-8 or YAML, not a mapping, no ``indicators`` mapping, or an
            indicator name that is not a non-empty string.
    """
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{what} is not UTF-8 text: {exc}", field="indicators") from None
    document = load_yaml(content, what=what, field=what)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise InvalidInputError(f"{what} must be a mapping with 'indicators'", field="indicators")
    indicators = document.get("indicators")
    if indicators is None:
        # Keptn's prometheus-service: "missing required field: indicators"
        raise InvalidInputError(f"{what}: missing required field: indicators", field="indicators")
    if not isinstance(indicators, dict):
        raise InvalidInputError(
            f"{what}: indicators must be a mapping of SLI name to query, not {_kind(indicators)}",
            field="indicators",
        )
    for name in indicators:
        if not name.strip():
            raise InvalidInputError(f"{what}: an indicator has an empty name", field="indicators")
    version = document.get("spec_version")
    return SLIFile(spec_version="" if version is None else str(version), indicators=indicators)


def prometheus_query(name: str, value: Any) -> str:
    """The PromQL query of an indicator of ``prometheus/sli.yaml``.

    Raises:
        InvalidInputError: the value is not a non-empty string (numbers are accepted as text,
            as Keptn's YAML decoder did).
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInputError(f"SLI {name}: the query must be a string, not {_kind(value)}", field=name)
    query = str(value).strip()
    if not query:
        raise InvalidInputError(f"SLI {name}: the query is empty", field=name)
    return query


def web_indicator(name: str, value: Any) -> WebIndicator:
    """The request of an indicator of ``web/sli.yaml``: a URL string, or ``{url, path, headers}``.

    Raises:
        InvalidInputError: naming the indicator and what is wrong.
    """
    if isinstance(value, str):
        value = {"url": value}
    if not isinstance(value, dict):
        raise InvalidInputError(
            f"SLI {name}: must be a URL or a mapping with url, path and headers, not {_kind(value)}",
            field=name,
        )
    unknown = sorted(set(value) - {"url", "path", "headers"})
    if unknown:
        raise InvalidInputError(f"SLI {name}: unknown key(s) {', '.join(unknown)}", field=name)
    url = value.get("url")
    if not isinstance(url, str) or not url.strip():
        raise InvalidInputError(f"SLI {name}: url must be a non-empty string", field=name)
    path = value.get("path", "$")
    if not isinstance(path, str) or not path.strip():
        raise InvalidInputError(f"SLI {name}: path must be a non-empty string", field=name)
    headers = value.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in headers.values()
    ):
        raise InvalidInputError(f"SLI {name}: headers must map header names to strings", field=name)
    return WebIndicator(url=url.strip(), path=path.strip(), headers={k: str(v) for k, v in headers.items()})


class NoSLIValueError(KeptnError):
    """A data source answered, but without one usable SLI value."""


def prometheus_value(data: Any) -> float:
    """The one value in the ``data`` of a Prometheus instant query's answer.

    Keptn's prometheus-service (0.8 and later) messages: an empty vector is "query did not return any
    values" (older versions silently returned 0, so gates passed on missing data), several
    series "query did return multiple values", NaN "query did not return valid values".

    Raises:
        NoSLIValueError: with one of those messages, or for a matrix or string result.
    """
    if not isinstance(data, dict):
        raise NoSLIValueError("Prometheus answered without data")
    kind = data.get("resultType")
    result = data.get("result")
    sample: Any
    if kind == "scalar":
        sample = result
    elif kind == "vector" and isinstance(result, list):
        if not result:
            raise NoSLIValueError("query did not return any values")
        if len(result) > 1:
            raise NoSLIValueError(
                f"query did return multiple values ({len(result)} series); aggregate them, e.g. with sum()"
            )
        sample = result[0].get("value") if isinstance(result[0], dict) else None
    else:
        raise NoSLIValueError(f"query returned a {kind}, not an instant vector or a scalar")
    try:
        number = float(sample[1])  # [<unix time>, "<value>"]
    except (TypeError, ValueError, IndexError):
        raise NoSLIValueError("query did not return valid values") from None
    if not math.isfinite(number):
        raise NoSLIValueError(f"query did not return valid values ({sample[1]})")
    return number


def parse_sli_time(text: object, *, field: str) -> datetime:
    """A ``get-sli.triggered`` start/end: RFC 3339 or Unix seconds, as Keptn's providers accepted.

    Raises:
        InvalidInputError: naming ``field``.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"{field}: must be a timestamp string, not {_kind(text)}", field=field)
    if text.strip().isdigit():
        return datetime.fromtimestamp(int(text.strip()), tz=UTC)
    return parse_keptn_time(text, field=field)


def duration_seconds(start: datetime, end: datetime) -> str:
    """``$DURATION_SECONDS``: the window's length rounded up to whole seconds, e.g. ``300s``."""
    return f"{math.ceil((end - start).total_seconds())}s"


def substitute_placeholders(
    query: str,
    *,
    project: str,
    stage: str,
    service: str,
    deployment: str,
    labels: Mapping[str, str],
    custom_filters: Mapping[str, str],
    start: datetime,
    end: datetime,
) -> str:
    """Fill in a query's placeholders as Keptn's prometheus-service did.

    ``$PROJECT $STAGE $SERVICE $DEPLOYMENT $DURATION_SECONDS``, ``$LABEL.<key>`` for each event
    label, and ``$<key>`` and ``$<KEY>`` for each SLO filter (whose values lose their quotes, as
    in Keptn). A filter overrides a built-in placeholder of the same name, as Keptn replaced
    filters first. Unlike Keptn's chain of ``strings.Replace``, this is one pass with the longest
    names first: ``$SERVICE_NAME`` is a filter's, not ``$SERVICE`` + ``_NAME``, and a value that
    itself contains ``$STAGE`` is left alone.

    Args:
        query: the query or URL with placeholders.
        project: ``$PROJECT``.
        stage: ``$STAGE``.
        service: ``$SERVICE``.
        deployment: ``$DEPLOYMENT``.
        labels: event labels, for ``$LABEL.<key>``.
        custom_filters: SLO ``filter`` entries (``get-sli.triggered`` ``customFilters``).
        start: evaluation start.
        end: evaluation end.

    Returns:
        The query with every known placeholder replaced; unknown ``$words`` stay as they are.
    """
    values: dict[str, str] = {
        "PROJECT": project,
        "STAGE": stage,
        "SERVICE": service,
        "DEPLOYMENT": deployment,
        "DURATION_SECONDS": duration_seconds(start, end),
    }
    values.update({f"LABEL.{key}": value for key, value in labels.items()})
    for key, value in custom_filters.items():
        cleaned = value.replace("'", "").replace('"', "")
        values[key] = cleaned
        values[key.upper()] = cleaned
    names = sorted((n for n in values if n), key=len, reverse=True)
    if not names:
        return query
    pattern = re.compile(r"\$(" + "|".join(re.escape(n) for n in names) + ")")
    return pattern.sub(lambda m: values[m.group(1)], query)


class InvalidJSONPathError(InvalidInputError):
    """A JSONPath outside the supported subset."""


class JSONPathNotFoundError(NotFoundError):
    """A JSONPath names a key or index the document does not have."""


_NAME = re.compile(r"[\w-]+")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")


def _parse_path(path: str) -> list[str | int]:
    """The steps of a path: ``str`` keys and ``int`` indexes."""
    text = path.strip()
    pos = 0
    if text.startswith("$"):
        pos = 1
    elif text and text[0] not in ".[":
        text = "." + text  # "data.score" means "$.data.score"
    steps: list[str | int] = []
    while pos < len(text):
        if text.startswith(".", pos):
            name = _NAME.match(text, pos + 1)
            if name is None:
                raise InvalidJSONPathError(
                    f"JSONPath {path!r}: expected a key after '.' at position {pos}", field="path"
                )
            steps.append(name.group())
            pos = name.end()
        elif (index := _INDEX.match(text, pos)) is not None:
            steps.append(int(index.group(1)))
            pos = index.end()
        elif (quoted := _QUOTED.match(text, pos)) is not None:
            raw = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
            steps.append(re.sub(r"\\(.)", r"\1", raw))
            pos = quoted.end()
        else:
            raise InvalidJSONPathError(
                f"JSONPath {path!r}: unsupported syntax at position {pos} ({text[pos : pos + 10]!r});"
                " use $, .key, ['key'] and [index]",
                field="path",
            )
    return steps


def _render(steps: list[str | int]) -> str:
    return "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)


def json_path(doc: Any, path: str) -> Any:
    """The value at a JSONPath in a decoded JSON document.

    The subset: ``$`` (the root), ``.key``, ``['key']``, ``["key"]`` and ``[index]`` (negative
    counts from the end). A path without ``$`` starts at the root (``data.value``).

    Raises:
        InvalidJSONPathError: the path uses anything else (filters, wildcards, slices, ...).
        JSONPathNotFoundError: a key or index along the path does not exist.
    """
    steps = _parse_path(path)
    current = doc
    for depth, step in enumerate(steps):
        where = _render(steps[:depth])
        if isinstance(step, int):
            if not isinstance(current, list):
                raise JSONPathNotFoundError(
                    f"JSONPath {path!r}: {where} is {_kind(current)}, not a list, so has no [{step}]",
                    field="path",
                )
            if not -len(current) <= step < len(current):
                raise JSONPathNotFoundError(
                    f"JSONPath {path!r}: index [{step}] is out of range at {where}"
                    f" (a list of {len(current)})",
                    field="path",
                )
            current = current[step]
        else:
            if not isinstance(current, dict):
                raise JSONPathNotFoundError(
                    f"JSONPath {path!r}: {where} is {_kind(current)}, not an object, so has no key {step!r}",
                    field="path",
                )
            if step not in current:
                keys = ", ".join(sorted(map(str, current))[:10]) or "none"
                raise JSONPathNotFoundError(
                    f"JSONPath {path!r}: no key {step!r} at {where} (keys: {keys})", field="path"
                )
            current = current[step]
    return current


def numeric_value(value: Any, *, what: str) -> float:
    """A finite number from a JSON number or a numeric string.

    Raises:
        InvalidInputError: ``value`` is a bool, null, object, list, non-numeric string, NaN or infinite.
    """
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise InvalidInputError(f"{what} is {_describe(value)}, not a number", field="value")
    if not math.isfinite(number):
        raise InvalidInputError(f"{what} is {_short(value)}, not a finite number", field="value")
    return number


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value: Any) -> str:
    return "null" if value is None else f"{_kind(value)} {_short(value)}"
