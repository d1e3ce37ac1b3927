"""``capstan send event --file FILE``: post one Keptn CloudEvent (Keptn's ``keptn send event``).

The file holds one JSON event, as Keptn's CLI took it (``-`` reads stdin). The API validates,
stamps and routes it; the command prints the Keptn context the event belongs to, alone on
stdout so that a script can capture it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from capstan.commands.api_client import ApiUrlOption, TokenOption, connect
from capstan.commands.common import fail
from capstan.commands.output import OutputFormat, OutputOption, api_errors, print_json, read_text

send_app = typer.Typer(name="send", help="Send an event.", no_args_is_help=True)


def load_event(path: Path) -> dict[str, Any]:
    """The event in a JSON file; anything but one JSON object is a one-line error."""
    content = read_text(path, "event file")
    try:
        event = json.loads(content)
    except ValueError as exc:
        fail(f"event file {path} is not valid JSON: {exc}")
    if not isinstance(event, dict):
        fail(f"event file {path} must hold one JSON object (a Keptn CloudEvent)")
    if not isinstance(event.get("type"), str) or not event["type"]:
        fail(f"the event in {path} has no type")
    return event


@send_app.command("event")
def send_event(
    file: Annotated[
        Path, typer.Option("--file", "-f", help="A JSON file with one Keptn CloudEvent (- for stdin).")
    ],
    output: OutputOption = OutputFormat.TEXT,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Send a Keptn CloudEvent from a file and print its Keptn context (`keptn send event`)."""
    event = load_event(file)
    with connect(api_url, token) as api, api_errors():
        context = api.send_event(event)
    if output is OutputFormat.JSON:
        print_json({"keptnContext": context, "type": event["type"]})
    else:
        typer.echo(context)


def register(app: typer.Typer) -> None:
    """Add ``send`` to the ``capstan`` app."""
    app.add_typer(send_app, name="send")
