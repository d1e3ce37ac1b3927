"""The DORA page of a project (``/project/{project}/dora``): the four numbers and deployments per day.

It computes what ``GET /api/v1/metrics/dora`` answers (``store.dora`` and ``keptn.dora``), for the
last 7, 30 or 90 days, and draws the deployments of each day as a server-rendered SVG bar chart.
Like the API it needs ``events:read``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.bridge.charts import AxisLabel, label_stride
from api.bridge.session import BridgeUserDep
from api.bridge.templating import templates
from api.deps import PoolDep
from capstan.scopes import Scope
from keptn.dora import DayCount, DoraQuery
from keptn.errors import NotFoundError
from store import dora
from store import projects as project_store

router = APIRouter()

PERIODS = (7, 30, 90)
"""The windows the page offers, in days up to now."""
DEFAULT_PERIOD = 30


@dataclass(frozen=True)
class Bar:
    """One day's bar."""

    x: float
    y: float
    width: float
    height: float
    day: str
    deployments: int


@dataclass(frozen=True)
class BarChart:
    """Everything the template needs to draw the deployments-per-day chart."""

    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    bars: tuple[Bar, ...]
    y_labels: tuple[AxisLabel, ...]
    x_labels: tuple[AxisLabel, ...]


def bar_chart(
    days: tuple[DayCount, ...],
    *,
    width: int = 960,
    height: int = 180,
    margin_left: float = 40,
    margin_right: float = 16,
    margin_top: float = 12,
    margin_bottom: float = 28,
) -> BarChart:
    """Lay out one bar per day (oldest left), scaled to the busiest day; labels as the score chart's."""
    left, right = margin_left, width - margin_right
    top, bottom = margin_top, height - margin_bottom
    most = max((d.deployments for d in days), default=0)
    scale = max(most, 1)
    slot = (right - left) / max(len(days), 1)
    bars = []
    for position, day in enumerate(days):
        bar_height = round(day.deployments / scale * (bottom - top), 2)
        bars.append(
            Bar(
                x=round(left + position * slot + slot * 0.15, 2),
                y=round(bottom - bar_height, 2),
                width=round(slot * 0.7, 2),
                height=bar_height,
                day=day.day.isoformat(),
                deployments=day.deployments,
            )
        )
    stride = label_stride(len(days))
    x_labels = tuple(
        AxisLabel(position=round(bar.x + bar.width / 2, 2), text=bar.day[5:])
        for position, bar in enumerate(bars)
        if (len(bars) - 1 - position) % stride == 0
    )
    y_labels: tuple[AxisLabel, ...] = (AxisLabel(position=bottom, text="0"),)
    if most:
        y_labels += (AxisLabel(position=top, text=str(most)),)
    return BarChart(
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        bars=tuple(bars),
        y_labels=y_labels,
        x_labels=x_labels,
    )


def page_url(project: str, **params: str | int | None) -> str:
    """The DORA page's URL with query parameters (empty ones left out)."""
    query = urlencode({key: value for key, value in params.items() if value not in (None, "")})
    return f"/project/{project}/dora" + (f"?{query}" if query else "")


@router.get("/project/{project}/dora", response_class=HTMLResponse)
async def dora_page(
    request: Request,
    pool: PoolDep,
    user: BridgeUserDep,
    project: str,
    stage: str | None = None,
    service: str | None = None,
    days: int = DEFAULT_PERIOD,
) -> HTMLResponse:
    """Deployment frequency, lead time, change failure rate and time to restore of a project."""
    user.principal.require(Scope.EVENTS_READ, action="viewing DORA metrics")
    user.principal.check_project(project)
    info = await project_store.get_project(pool, project)
    if info is None:
        raise NotFoundError(f"project '{project}' not found", field="project")
    scope = dora.dora_scope(info, stage or None)
    services = sorted({s.name for st in info.stages for s in st.services})
    if service and service not in services:
        raise NotFoundError(f"service '{service}' not found in project '{project}'", field="service")
    # A page, not an API: an unknown period becomes the nearest offered one.
    days = min(PERIODS, key=lambda offered: abs(offered - days))
    end = datetime.now(UTC)
    query = DoraQuery(
        stage=scope.stage,
        first_stage=scope.first_stage,
        start=end - timedelta(days=days),
        end=end,
        service=service or None,
    )
    result = await dora.dora_metrics(pool, info, scope, query)
    context = {
        "user": user,
        "nav": "projects",
        "project": project,
        "stage": scope.stage,
        "stages": scope.stages,
        "service": service or "",
        "services": services,
        "days": days,
        "periods": PERIODS,
        "metrics": result.report.overall,
        "per_service": result.report.services,
        "truncated": result.truncated,
        "chart": bar_chart(result.report.overall.days),
        "page_url": page_url,
    }
    return templates.TemplateResponse(request, "dora.html", context)
