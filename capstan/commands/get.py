"""``capstan get event|project|sequence``: read what the control plane holds (Keptn's ``keptn get``).

Text output is a table; ``--output json`` prints the API's objects (a list, or the one project
``get project NAME`` asks for).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from capstan.commands.api_client import ApiUrlOption, TokenOption, connect
from capstan.commands.common import fail
from capstan.commands.output import OutputFormat, OutputOption, api_errors, print_json, print_table, text

PROJECTS = "/controlPlane/v1/project"
EVENTS = "/mongodb-datastore/event"
EVENT_PREFIX = "sh.keptn."
MAX_EVENTS = 100
"""The datastore's largest page."""

get_app = typer.Typer(name="get", help="Show events, projects and sequences.", no_args_is_help=True)


def full_event_type(event_type: str) -> str:
    """Keptn's short types (``evaluation.finished``) as full ones (``sh.keptn.event.evaluation.finished``)."""
    return event_type if event_type.startswith(EVENT_PREFIX) else f"sh.keptn.event.{event_type}"


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    return data if isinstance(data, dict) else {}


@get_app.command("event")
def get_event(
    event_type: Annotated[
        str,
        typer.Argument(metavar="TYPE", help="e.g. evaluation.finished or sh.keptn.event.evaluation.finished"),
    ],
    project: Annotated[str, typer.Option("--project", "-p", help="The project.")],
    stage: Annotated[str | None, typer.Option("--stage", "-s", help="Only events of this stage.")] = None,
    service: Annotated[str | None, typer.Option("--service", help="Only events of this service.")] = None,
    keptn_context: Annotated[
        str | None, typer.Option("--keptn-context", help="Only events of this Keptn context.")
    ] = None,
    num_of_events: Annotated[
        int, typer.Option("--num-of-events", min=1, max=MAX_EVENTS, help="How many, newest first.")
    ] = 1,
    output: OutputOption = OutputFormat.TEXT,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Show the newest events of a type (`keptn get event`)."""
    full = full_event_type(event_type)
    params: dict[str, str | int] = {"type": full, "project": project, "pageSize": num_of_events}
    for key, value in (("stage", stage), ("service", service), ("keptnContext", keptn_context)):
        if value:
            params[key] = value
    with connect(api_url, token) as api, api_errors():
        api.get(f"{PROJECTS}/{quote(project, safe='')}")  # an unknown project is an error, not "none"
        page = api.get(EVENTS, params=params)
    events = page.get("events") if isinstance(page, dict) else None
    if not isinstance(events, list):
        fail(f"unexpected answer of GET {EVENTS}: no 'events' list")
    if output is OutputFormat.JSON:
        print_json(events)
        return
    if not events:
        typer.echo(f"no {full} event in project {project}")
        return
    rows = [
        [
            text(event.get("time")),
            text(_data(event).get("stage")),
            text(_data(event).get("service")),
            event_result(event),
            text(event.get("id")),
            text(event.get("shkeptncontext")),
        ]
        for event in events
    ]
    print_table(full, ("time", "stage", "service", "result", "id", "keptn context"), rows)


def event_result(event: dict[str, Any]) -> str:
    """The result, with the score for an evaluation (``pass (score 92.5)``): what people look for."""
    data = _data(event)
    result = text(data.get("result"))
    evaluation = data.get("evaluation")
    score = evaluation.get("score") if isinstance(evaluation, dict) else None
    if isinstance(score, int | float) and not isinstance(score, bool):
        return f"{result} (score {score:g})"
    return result


def _project_row(project: dict[str, Any]) -> list[str]:
    stages = project.get("stages") or []
    services = sorted({s.get("serviceName") for stage in stages for s in stage.get("services") or []})
    return [
        text(project.get("projectName")),
        text(project.get("shipyardVersion")),
        ", ".join(str(stage.get("stageName")) for stage in stages) or "-",
        ", ".join(str(s) for s in services) or "-",
    ]


@get_app.command("project")
def get_project(
    name: Annotated[str | None, typer.Argument(help="One project (default: all).")] = None,
    output: OutputOption = OutputFormat.TEXT,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Show projects with their stages and services (`keptn get project`)."""
    with connect(api_url, token) as api, api_errors():
        if name:
            one = api.get(f"{PROJECTS}/{quote(name, safe='')}")
            projects = [one] if isinstance(one, dict) else []
        else:
            projects = list(api.pages(PROJECTS, "projects"))
    if output is OutputFormat.JSON:
        print_json(projects[0] if name and projects else projects)
    elif projects:
        print_table(
            "projects",
            ("name", "shipyard version", "stages", "services"),
            [_project_row(p) for p in projects],
        )
    else:
        typer.echo("no projects")


def _stages(state: dict[str, Any]) -> str:
    return ", ".join(f"{s.get('name')}: {s.get('state')}" for s in state.get("stages") or []) or "-"


@get_app.command("sequence")
def get_sequence(
    project: Annotated[str, typer.Option("--project", "-p", help="The project.")],
    keptn_context: Annotated[
        str | None,
        typer.Option("--keptn-context", help="Only this Keptn context (comma-separated for several)."),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only sequences in this state, e.g. started, paused, finished."),
    ] = None,
    sequence: Annotated[str | None, typer.Option("--sequence", help="Only sequences of this name.")] = None,
    output: OutputOption = OutputFormat.TEXT,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Show the state of a project's sequences, newest first (Keptn's sequence view)."""
    params = {"keptnContext": keptn_context, "state": state, "name": sequence}
    query: dict[str, str | int] = {key: value for key, value in params.items() if value}
    with connect(api_url, token) as api, api_errors():
        states = list(
            api.pages(f"/controlPlane/v1/sequence/{quote(project, safe='')}", "states", params=query)
        )
    if output is OutputFormat.JSON:
        print_json(states)
        return
    if not states:
        typer.echo(f"no sequences in project {project}")
        return
    rows = [
        [
            text(s.get("shkeptncontext")),
            text(s.get("name")),
            text(s.get("service")),
            text(s.get("state")),
            text(s.get("time")),
            _stages(s),
        ]
        for s in states
    ]
    print_table(
        f"sequences of {project}", ("keptn context", "sequence", "service", "state", "time", "stages"), rows
    )


def register(app: typer.Typer) -> None:
    """Add ``get`` to the ``capstan`` app."""
    app.add_typer(get_app, name="get")
