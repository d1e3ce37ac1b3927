"""The Bridge's Jinja2 environment: where templates and static files live, and the filters pages use."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=TEMPLATE_DIR)
"""Shared by every page module; autoescaping is on for ``.html`` templates."""


def parse_time(value: Any) -> datetime.datetime | None:
    """A Keptn/RFC 3339 time (or a datetime) as an aware datetime; None when it is not one."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def format_time(value: Any) -> str:
    """``2026-11-26 12:59:50`` in UTC, or the value as it is when it is no time."""
    parsed = parse_time(value)
    if parsed is None:
        return "" if value is None else str(value)
    return parsed.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: Any) -> str:
    """``850 ms``, ``12.3 s``, ``4m 05s``, ``2h 03m``; empty for no value."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def duration_between(start: Any, end: Any) -> float | None:
    """Seconds from ``start`` to ``end`` (times as :func:`parse_time` reads them), None if unknown."""
    first, last = parse_time(start), parse_time(end)
    if first is None or last is None:
        return None
    return max(0.0, (last - first).total_seconds())


def pretty_json(value: Any) -> str:
    """Indented JSON for payload views."""
    return json.dumps(value, indent=2, sort_keys=False, default=str)


templates.env.filters["keptn_time"] = format_time
templates.env.filters["duration"] = format_duration
templates.env.filters["pretty_json"] = pretty_json
templates.env.globals["duration_between"] = duration_between
