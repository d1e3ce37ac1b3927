"""Webhook templates without I/O: the subset of Go's ``text/template`` that webhooks use (spec §7).

Read by a small parser, never evaluated as code: ``{{.data.project}}``, ``{{ .id }}``,
``{{$.env.key}}``, ``{{index .data.labels "my-label"}}``, ``{{/* comments */}}`` and the
``{{-``/``-}}`` trim markers. Anything else (pipes, functions, ``if``, ``range``, variables) is an
``unsupported template expression``. A missing key is an error, as with Go's ``missingkey=error``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from keptn.errors import InvalidInputError

__all__ = ["TemplateError", "check_template", "parse_template", "render", "template_context"]


class TemplateError(InvalidInputError):
    """A template cannot be read (syntax) or rendered (a missing key); never names a value."""


_SPACE = " \t\r\n"
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_CHAIN = re.compile(rf"\$|\$?(?:\.{_IDENT})+|\.")
_ARG = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|-?\d+')
_INDEX = re.compile(rf"index\s+({_CHAIN.pattern})((?:\s+(?:{_ARG.pattern}))+)")


@dataclass(frozen=True)
class _Action:
    source: str
    """The action as written, ``{{ .data.x }}``, for messages."""
    steps: tuple[str | int, ...]
    in_json_string: bool
    """Whether the action stands inside a JSON string literal of the template's text."""


def _chain(text: str) -> list[str | int]:
    return [name for name in text.lstrip("$").split(".") if name]


def _action(inner: str, source: str, in_json_string: bool) -> _Action | None:
    text = inner.strip(_SPACE)
    if text.startswith("/*") and text.endswith("*/") and len(text) >= 4:
        return None  # a comment
    if _CHAIN.fullmatch(text):
        return _Action(source, tuple(_chain(text)), in_json_string)
    match = _INDEX.fullmatch(text)
    if match is not None:
        steps = _chain(match.group(1))
        try:
            for arg in _ARG.findall(match.group(2)):
                steps.append(arg[1:-1] if arg[0] == "`" else json.loads(arg))  # Go's and JSON's escapes
        except ValueError:
            pass  # an escape JSON does not know
        else:
            return _Action(source, tuple(steps), in_json_string)
    raise TemplateError(
        f"unsupported template expression {source}: Capstan supports only {{{{.key.key}}}}, "
        '{{index .key "name"}} and comments (no pipes, functions, conditions or loops)'
    )


def _json_string_state(text: str, state: tuple[bool, bool]) -> tuple[bool, bool]:
    in_string, escaped = state
    for char in text:
        if escaped:
            escaped = False
        elif in_string and char == "\\":
            escaped = True
        elif char == '"':
            in_string = not in_string
    return in_string, escaped


@lru_cache(maxsize=512)
def parse_template(template: str) -> tuple[str | _Action, ...]:
    """The template's literal text and actions, in order (cached: configs are parsed repeatedly).

    Raises:
        TemplateError: an unclosed ``{{`` or an unsupported expression.
    """
    parts: list[str | _Action] = []
    state = (False, False)
    pos, trim_next = 0, False
    while True:
        start = template.find("{{", pos)
        text = template[pos:] if start < 0 else template[pos:start]
        if trim_next:
            text = text.lstrip(_SPACE)
        if start < 0:
            parts.append(text)
            return tuple(part for part in parts if part != "")
        end = template.find("}}", start + 2)
        if end < 0:
            line = template.count("\n", 0, start) + 1
            raise TemplateError(f"unclosed action {template[start : start + 20]!r} (line {line})")
        inner = template[start + 2 : end]
        if inner[:1] == "-" and inner[1:2] in tuple(_SPACE):
            inner, text = inner[2:], text.rstrip(_SPACE)
        trim_next = inner[-1:] == "-" and inner[-2:-1] in tuple(_SPACE)
        if trim_next:
            inner = inner[:-2]
        parts.append(text)
        state = _json_string_state(text, state)
        action = _action(inner, template[start : end + 2], state[0])
        if action is not None:
            parts.append(action)
        pos = end + 2


def check_template(template: str) -> None:
    """Check a template's syntax without rendering it.

    Raises:
        TemplateError: an unclosed ``{{`` or an unsupported expression.
    """
    parse_template(template)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else "a scalar"


def _evaluate(action: _Action, context: Mapping[str, Any]) -> Any:
    value: Any = context
    walked = ""
    for step in action.steps:
        where = walked or "the event"
        if isinstance(value, Mapping):
            if step not in value:
                raise TemplateError(f"{action.source}: map has no entry for key {json.dumps(step)}")
            value = value[step]
        elif isinstance(value, list) and isinstance(step, int):
            if not 0 <= step < len(value):
                raise TemplateError(f"{action.source}: index {step} out of range ({where} has {len(value)})")
            value = value[step]
        else:
            raise TemplateError(f"{action.source}: {where} is {_kind(value)}, so it has no entry {step!r}")
        walked = f"{walked}.{step}" if walked else str(step)
    return value


def _text(value: Any) -> str:
    """Strings as they are, whole floats as integers (as Go prints them), the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, bool | int | float | dict | list) or value is None:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def render(template: str, context: Mapping[str, Any], *, json_escape: bool, field: str | None = None) -> str:
    """Fill in a template's actions from ``context`` (the whole event plus ``env``).

    Values are written as text: strings as they are, numbers and booleans as Go writes them,
    ``null`` as ``null``, maps and lists as compact JSON.

    Args:
        template: the text with ``{{...}}`` actions (see the module docstring).
        context: what ``.`` stands for, usually :func:`template_context`.
        json_escape: the template is a JSON document (:func:`is_json_payload`): a value whose
            action stands inside a JSON string literal (``"text": "{{.data.message}}"``) is
            escaped for it (quotes, backslashes, control characters); a value outside a string
            (``"score": {{.data.score}}``, ``"data": {{.data}}``) is written as is.
        field: names the template in messages, e.g. ``requests[0].payload``.

    Raises:
        TemplateError: a syntax error, or a key or index the context does not have. The message
            names the action, never a value.
    """
    try:
        parts = parse_template(template)
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            text = _text(_evaluate(part, context))
            if json_escape and part.in_json_string:
                text = json.dumps(text, ensure_ascii=False)[1:-1]
            out.append(text)
    except TemplateError as exc:
        if field is None:
            raise
        raise TemplateError(f"{field}: {exc.message}", field=field) from None
    return "".join(out)


def template_context(event: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """What templates see: the whole event (``.id``, ``.type``, ``.data.project``, ...) and ``.env``."""
    return {**event, "env": dict(env)}
