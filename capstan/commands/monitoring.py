"""``capstan configure monitoring PROVIDER``: name a project's SLI provider (Keptn's CLI command).

As Keptn's CLI did, it sends ``sh.keptn.event.monitoring.configure`` with ``data.type`` the
provider; the gateway stores the provider for the project (the lighthouse's ``sli-provider``,
Keptn's ``lighthouse-config-<project>`` ConfigMap) and SLI providers see the event too.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from capstan.commands.api_client import ApiUrlOption, TokenOption, connect
from capstan.commands.output import SOURCE, OutputFormat, OutputOption, api_errors, print_json

MONITORING_CONFIGURE = "sh.keptn.event.monitoring.configure"

configure_app = typer.Typer(name="configure", help="Configure monitoring.", no_args_is_help=True)


def monitoring_event(provider: str, project: str, service: str | None) -> dict[str, Any]:
    """The ``monitoring.configure`` event Keptn's CLI sent."""
    data = {"type": provider, "project": project}
    if service:
        data["service"] = service
    return {"type": MONITORING_CONFIGURE, "specversion": "1.0", "source": SOURCE, "data": data}


@configure_app.command("monitoring")
def configure_monitoring(
    provider: Annotated[str, typer.Argument(help="The SLI provider, e.g. prometheus or dynatrace.")],
    project: Annotated[str, typer.Option("--project", "-p", help="The project.")],
    service: Annotated[str | None, typer.Option("--service", help="The service.")] = None,
    output: OutputOption = OutputFormat.TEXT,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Set the SLI provider of a project (`keptn configure monitoring`)."""
    with connect(api_url, token) as api, api_errors():
        context = api.send_event(monitoring_event(provider, project, service))
    if output is OutputFormat.JSON:
        print_json({"keptnContext": context, "provider": provider, "project": project})
    else:
        typer.echo(
            f"monitoring provider {provider} configured for project {project} (keptn context {context})"
        )


def register(app: typer.Typer) -> None:
    """Add ``configure`` to the ``capstan`` app."""
    app.add_typer(configure_app, name="configure")
