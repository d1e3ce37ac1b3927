"""Geometry of the server-rendered SVG charts. Pure code: numbers in, coordinates out.

The Bridge draws its charts as inline SVG in the templates (no JavaScript chart library), so all
arithmetic lives here where it can be tested: where each point goes, the polyline through them,
the threshold lines and the axis labels. The template only writes the elements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SCORE_MIN = 0.0
SCORE_MAX = 100.0
Y_TICKS = (0.0, 25.0, 50.0, 75.0, 100.0)
MAX_X_LABELS = 8
"""More evaluations than this get every n-th label only, so the labels do not overlap."""


@dataclass(frozen=True)
class ScoreSample:
    """One evaluation's score, as the chart receives it."""

    score: float
    status: str
    """pass, warning, fail or info: the point's CSS class."""
    label: str
    """The x-axis label (a short time)."""
    title: str = ""
    """The point's tooltip."""
    href: str = ""
    """Where clicking the point goes (the page with this evaluation selected)."""
    selected: bool = False
    key: str = ""
    """The evaluation's event id."""


@dataclass(frozen=True)
class ChartPoint:
    """A sample placed on the chart."""

    x: float
    y: float
    sample: ScoreSample


@dataclass(frozen=True)
class Threshold:
    """A horizontal line at a score threshold (``pass`` or ``warning``)."""

    name: str
    value: float
    y: float


@dataclass(frozen=True)
class AxisLabel:
    """A label at an axis position (``position`` is y for the score axis, x for the time axis)."""

    position: float
    text: str


@dataclass(frozen=True)
class ScoreChart:
    """Everything the template needs to draw a score chart."""

    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    points: tuple[ChartPoint, ...]
    polyline: str
    """``x,y x,y ...`` for ``<polyline points=...>``; empty with fewer than two points."""
    thresholds: tuple[Threshold, ...]
    y_labels: tuple[AxisLabel, ...]
    x_labels: tuple[AxisLabel, ...]


def _clamp(value: float) -> float:
    if not math.isfinite(value):
        return SCORE_MIN
    return min(SCORE_MAX, max(SCORE_MIN, value))


def score_y(score: float, top: float, bottom: float) -> float:
    """The y coordinate of a score (0 at ``bottom``, 100 at ``top``; out-of-range scores clamped)."""
    fraction = (_clamp(score) - SCORE_MIN) / (SCORE_MAX - SCORE_MIN)
    return round(bottom - fraction * (bottom - top), 2)


def sample_x(index: int, count: int, left: float, right: float) -> float:
    """The x coordinate of the ``index``-th of ``count`` evenly spread samples (one: the middle)."""
    if count <= 1:
        return round((left + right) / 2, 2)
    return round(left + index * (right - left) / (count - 1), 2)


def label_stride(count: int, most: int = MAX_X_LABELS) -> int:
    """Label every n-th sample so that at most ``most`` labels are drawn."""
    return max(1, math.ceil(count / most))


def score_chart(
    samples: Sequence[ScoreSample],
    *,
    pass_threshold: float | None = None,
    warning_threshold: float | None = None,
    width: int = 960,
    height: int = 220,
    margin_left: float = 40,
    margin_right: float = 84,
    margin_top: float = 12,
    margin_bottom: float = 28,
) -> ScoreChart:
    """Lay out a score chart: scores 0–100 over evaluations, oldest left.

    Args:
        samples: the evaluations' scores, oldest first.
        pass_threshold: the SLO's ``total_score.pass`` in percent; None draws no pass line.
        warning_threshold: ``total_score.warning`` in percent; None draws no warning line.
        width: the SVG's view-box width.
        height: the SVG's view-box height.
        margin_left: room for the score labels.
        margin_right: room right of the last point, for the threshold labels.
        margin_top: room above 100.
        margin_bottom: room for the time labels.
    """
    left, right = margin_left, width - margin_right
    top, bottom = margin_top, height - margin_bottom
    count = len(samples)
    points = tuple(
        ChartPoint(x=sample_x(i, count, left, right), y=score_y(sample.score, top, bottom), sample=sample)
        for i, sample in enumerate(samples)
    )
    polyline = " ".join(f"{point.x:g},{point.y:g}" for point in points) if count > 1 else ""
    thresholds = tuple(
        Threshold(name=name, value=value, y=score_y(value, top, bottom))
        for name, value in (("pass", pass_threshold), ("warning", warning_threshold))
        if value is not None and math.isfinite(value)
    )
    y_labels = tuple(AxisLabel(position=score_y(tick, top, bottom), text=f"{tick:g}") for tick in Y_TICKS)
    stride = label_stride(count)
    # The newest sample always gets its label: it is the one people look for.
    x_labels = tuple(
        AxisLabel(position=point.x, text=point.sample.label)
        for i, point in enumerate(points)
        if (count - 1 - i) % stride == 0
    )
    return ScoreChart(
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        points=points,
        polyline=polyline,
        thresholds=thresholds,
        y_labels=y_labels,
        x_labels=x_labels,
    )
