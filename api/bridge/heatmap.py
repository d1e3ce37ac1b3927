"""The evaluation heatmap's model: ``evaluation.finished`` events turned into rows and cells. Pure code.

Keptn's Bridge showed a service's quality-gate history as a heatmap: one row per SLI, one column
per evaluation (oldest on the left), each cell coloured by the indicator's status and showing its
value, plus a score row coloured by the evaluation's result. This module builds that model from
the stored wire events; the template only lays it out.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keptn.errors import InvalidInputError
from keptn.slo import parse_slo

STATUSES = ("pass", "warning", "fail", "info")
"""The cell classes; every indicator status maps to one of them."""

# Keptn's own spec example writes "failed"; lighthouse writes "fail".
_STATUS_ALIASES = {"failed": "fail", "passed": "pass", "warn": "warning"}


def cell_status(status: Any) -> str:
    """The CSS class of an indicator or evaluation status: pass, warning, fail or info."""
    text = str(status).strip().lower() if isinstance(status, str) else ""
    text = _STATUS_ALIASES.get(text, text)
    return text if text in STATUSES else "info"


def format_value(value: Any) -> str:
    """An SLI value as the Bridge shows it: whole numbers plain, others with at most 2 decimals."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    if abs(value) < 0.01:
        return f"{value:.3g}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True)
class Target:
    """One criterion of an indicator, with the value it resolved to."""

    criteria: str
    target_value: float | None
    violated: bool

    def describe(self) -> str:
        """``<=+10% (= 440)``, with a ✗ when the value violated it."""
        shown = self.criteria
        if self.target_value is not None:
            shown += f" (= {format_value(self.target_value)})"
        return shown + (" ✗" if self.violated else "")


def _targets(raw: Any) -> tuple[Target, ...]:
    if not isinstance(raw, list):
        return ()
    targets = []
    for item in raw:
        if isinstance(item, Mapping):
            targets.append(
                Target(
                    criteria=str(item.get("criteria", "")),
                    target_value=_number(item.get("targetValue")),
                    violated=bool(item.get("violated")),
                )
            )
    return tuple(targets)


@dataclass(frozen=True)
class Indicator:
    """One SLI's result in one evaluation (an entry of ``indicatorResults``)."""

    sli: str
    display_name: str
    value: float | None
    status: str
    """pass, warning, fail or info."""
    score: float
    key_sli: bool
    success: bool
    message: str
    compared_value: float | None
    pass_targets: tuple[Target, ...]
    warning_targets: tuple[Target, ...]

    @property
    def label(self) -> str:
        """The row label: the display name, or the SLI name."""
        return self.display_name or self.sli

    @property
    def shown_value(self) -> str:
        """The value in the cell; ``n/a`` when the provider failed to deliver one."""
        return format_value(self.value) if self.success else "n/a"

    @property
    def pass_criteria(self) -> str:
        """The pass criteria, comma separated."""
        return ", ".join(target.describe() for target in self.pass_targets)

    @property
    def warning_criteria(self) -> str:
        """The warning criteria, comma separated."""
        return ", ".join(target.describe() for target in self.warning_targets)

    @property
    def title(self) -> str:
        """The cell's tooltip: value, targets, status and score."""
        lines = [f"{self.label}: {self.shown_value}" + (" (key SLI)" if self.key_sli else "")]
        if self.pass_targets:
            lines.append(f"pass: {self.pass_criteria}")
        if self.warning_targets:
            lines.append(f"warning: {self.warning_criteria}")
        if not self.pass_targets:
            lines.append("informational: no pass criteria")
        lines.append(f"status: {self.status}, score: {format_value(self.score)}")
        if self.message:
            lines.append(self.message)
        return "\n".join(lines)


def parse_indicator(raw: Mapping[str, Any]) -> Indicator | None:
    """An ``indicatorResults`` entry, or None when it names no SLI."""
    value = raw.get("value")
    value = value if isinstance(value, Mapping) else {}
    sli = value.get("metric")
    if not isinstance(sli, str) or not sli:
        return None
    display = raw.get("displayName")
    message = value.get("message")
    return Indicator(
        sli=sli,
        display_name=display if isinstance(display, str) else "",
        value=_number(value.get("value")),
        status=cell_status(raw.get("status")),
        score=_number(raw.get("score")) or 0.0,
        key_sli=bool(raw.get("keySli")),
        success=value.get("success") is not False,
        message=message if isinstance(message, str) else "",
        compared_value=_number(value.get("comparedValue")),
        pass_targets=_targets(raw.get("passTargets")),
        warning_targets=_targets(raw.get("warningTargets")),
    )


@dataclass(frozen=True)
class Evaluation:
    """One ``evaluation.finished`` event, as the page shows it."""

    event_id: str
    keptn_context: str
    triggered_id: str
    time: str
    source: str
    result: str
    """pass, warning, fail or info (the class of the overall result)."""
    status: str
    score: float
    message: str
    time_start: str
    time_end: str
    indicators: tuple[Indicator, ...]
    slo_content: str
    """The decoded ``slo.yaml`` the evaluation used; empty when unknown."""
    labels: Mapping[str, str] = field(default_factory=dict)

    def indicator(self, sli: str) -> Indicator | None:
        """This evaluation's result for ``sli``."""
        return next((item for item in self.indicators if item.sli == sli), None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def decode_slo(content: Any) -> str:
    """``sloFileContent`` (base64) as text; empty when absent or not base64 of UTF-8."""
    if not isinstance(content, str) or not content:
        return ""
    try:
        return base64.b64decode(content, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def parse_evaluation(event: Mapping[str, Any]) -> Evaluation:
    """An ``evaluation.finished`` wire event as an :class:`Evaluation` (missing parts empty)."""
    data = event.get("data")
    data = data if isinstance(data, Mapping) else {}
    inner = data.get("evaluation")
    inner = inner if isinstance(inner, Mapping) else {}
    raw_indicators = inner.get("indicatorResults")
    indicators = [
        parse_indicator(item)
        for item in (raw_indicators if isinstance(raw_indicators, list) else [])
        if isinstance(item, Mapping)
    ]
    labels = data.get("labels")
    return Evaluation(
        event_id=_text(event.get("id")),
        keptn_context=_text(event.get("shkeptncontext")),
        triggered_id=_text(event.get("triggeredid")),
        time=_text(event.get("time")),
        source=_text(event.get("source")),
        # data.result is what the sequence acted on; evaluation.result is lighthouse's own copy.
        result=cell_status(data.get("result") or inner.get("result")),
        status=_text(data.get("status")),
        score=_number(inner.get("score")) or 0.0,
        message=_text(data.get("message")),
        time_start=_text(inner.get("timeStart")),
        time_end=_text(inner.get("timeEnd")),
        indicators=tuple(item for item in indicators if item is not None),
        slo_content=decode_slo(inner.get("sloFileContent")),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {},
    )


def score_thresholds(slo_content: str) -> tuple[float | None, float | None]:
    """The ``total_score`` pass and warning thresholds (percent) of an SLO, None where unknown."""
    if not slo_content:
        return None, None
    try:
        slo = parse_slo(slo_content)
    except InvalidInputError:
        return None, None
    if slo.total_score is None:
        return None, None
    return _percent(slo.total_score.pass_), _percent(slo.total_score.warning)


def _percent(text: str) -> float | None:
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Row:
    """One SLI of the heatmap: its cells, one per column (None where that evaluation lacked it)."""

    sli: str
    label: str
    key_sli: bool
    cells: tuple[Indicator | None, ...]


@dataclass(frozen=True)
class Heatmap:
    """Columns (evaluations, oldest first) and rows (SLIs)."""

    columns: tuple[Evaluation, ...]
    rows: tuple[Row, ...]


def build_heatmap(events_newest_first: Sequence[Mapping[str, Any]]) -> Heatmap:
    """The heatmap of ``evaluation.finished`` events as the store returns them (newest first).

    Rows follow the newest evaluation's SLI order; SLIs only older evaluations had come after,
    newest first, so a renamed or removed objective keeps its history visible.
    """
    newest_first = [parse_evaluation(event) for event in events_newest_first]
    order: dict[str, tuple[str, bool]] = {}
    for evaluation in newest_first:
        for indicator in evaluation.indicators:
            order.setdefault(indicator.sli, (indicator.label, indicator.key_sli))
    columns = tuple(reversed(newest_first))
    rows = tuple(
        Row(
            sli=sli,
            label=label,
            key_sli=key_sli,
            cells=tuple(column.indicator(sli) for column in columns),
        )
        for sli, (label, key_sli) in order.items()
    )
    return Heatmap(columns=columns, rows=rows)
