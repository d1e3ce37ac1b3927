"""``capstan pause|resume|abort sequence``: control a running sequence (Keptn's CLI commands).

``POST /controlPlane/v1/sequence/{project}/{keptnContext}/control`` with ``{state, stage}``: pause
holds each sequence's next task, resume continues, abort ends the sequences (status ``aborted``).
Without ``--stage`` every stage of the context is affected.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from capstan.commands.api_client import ApiUrlOption, TokenOption, connect
from capstan.commands.output import api_errors

DONE = {"pause": "paused", "resume": "resumed", "abort": "aborted"}


def _control(state: str) -> typer.Typer:
    """The ``<state>`` group with its one ``sequence`` command."""
    group = typer.Typer(name=state, help=f"{state.capitalize()} a sequence.", no_args_is_help=True)

    @group.command(
        "sequence", help=f"{state.capitalize()} the sequences of a Keptn context (`keptn {state} sequence`)."
    )
    def control(
        project: Annotated[str, typer.Option("--project", "-p", help="The project.")],
        keptn_context: Annotated[str, typer.Option("--keptn-context", help="The sequence's Keptn context.")],
        stage: Annotated[
            str | None, typer.Option("--stage", "-s", help="Only this stage (default: all stages).")
        ] = None,
        api_url: ApiUrlOption = None,
        token: TokenOption = None,
    ) -> None:
        """Send the control request (the help text is the command's ``help``)."""
        body = {"state": state, **({"stage": stage} if stage else {})}
        path = f"/controlPlane/v1/sequence/{quote(project, safe='')}/{quote(keptn_context, safe='')}/control"
        with connect(api_url, token) as api, api_errors():
            api.post(path, body)
        where = f" in stage {stage}" if stage else ""
        typer.echo(f"{DONE[state]} sequence {keptn_context} of project {project}{where}")

    return group


def register(app: typer.Typer) -> None:
    """Add ``pause``, ``resume`` and ``abort`` to the ``capstan`` app."""
    for state in DONE:
        app.add_typer(_control(state), name=state)
