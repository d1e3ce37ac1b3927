"""``capstan get dora``: a project's DORA metrics (``GET /api/v1/metrics/dora``, see docs/dora.md).

Text output is one table row for the project and one per service; ``--output json`` prints the
API's answer as it is.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from capstan.commands.api_client import ApiUrlOption, TokenOption, connect
from capstan.commands.common import fail
from capstan.commands.get import get_app
from capstan.commands.output import OutputFormat, OutputOption, api_errors, print_json, print_table

DORA = "/v1/metrics/dora"
COLUMNS = (
    "scope",
    "deployments",
    "per week",
    "lead time median",
    "lead time p90",
    "change failure rate",
    "time to restore median",
    "open incidents",
)


def duration(seconds: Any) -> str:
    """``45s``, ``12m 05s``, ``3h 20m``, ``2d 04h``; ``-`` for none."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.0f}s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def _row(scope: str, metrics: dict[str, Any]) -> list[str]:
    rate = metrics.get("changeFailureRate")
    return [
        scope,
        str(metrics.get("deployments", 0)),
        f"{metrics.get('deploymentsPerWeek', 0):.1f}",
        duration(metrics.get("leadTimeMedianSeconds")),
        duration(metrics.get("leadTimeP90Seconds")),
        "-" if not isinstance(rate, int | float) else f"{rate * 100:.0f}%",
        duration(metrics.get("timeToRestoreMedianSeconds")),
        str(metrics.get("openIncidents", 0)),
    ]


def get_dora(
    project: Annotated[str, typer.Option("--project", "-p", help="The project.")],
    stage: Annotated[
        str | None, typer.Option("--stage", "-s", help="Default: the shipyard's last stage.")
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="Only this service.")] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Window start (RFC 3339); default 30 days before --to.")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Window end (RFC 3339); default now.")] = None,
    failure_window: Annotated[
        str | None,
        typer.Option(
            "--failure-window", help="How long a rollback or problem counts against a deployment (24h)."
        ),
    ] = None,
    output: OutputOption = OutputFormat.TEXT,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Show deployment frequency, lead time, change failure rate and time to restore."""
    given = {
        "project": project,
        "stage": stage,
        "service": service,
        "from": from_,
        "to": to,
        "failureWindow": failure_window,
    }
    params: dict[str, str | int] = {key: value for key, value in given.items() if value}
    with connect(api_url, token) as api, api_errors():
        body = api.get(DORA, params=params)
    if not isinstance(body, dict) or not isinstance(body.get("metrics"), dict):
        fail(f"unexpected answer of GET {DORA}: no 'metrics'")
    if output is OutputFormat.JSON:
        print_json(body)
        return
    rows = [_row(f"project {project}" if not service else f"service {service}", body["metrics"])]
    if not service:
        rows.extend(_row(f"  {s.get('service')}", s.get("metrics") or {}) for s in body.get("services") or [])
    title = f"DORA metrics of {project} in {body.get('stage')}, {body.get('from')} – {body.get('to')}"
    print_table(title, COLUMNS, rows)


def register(app: typer.Typer) -> None:
    """Add ``dora`` to ``capstan get`` (``app`` already holds ``get``)."""
    del app
    get_app.command("dora")(get_dora)
