"""``capstan add-resource``: store a file in the resource service (Keptn's ``keptn add-resource``).

The level follows the flags as in Keptn: ``--project`` alone stores a project resource,
``--stage`` a stage resource, ``--stage`` and ``--service`` a service resource, and ``--service``
without ``--stage`` the service resource in every stage that has the service.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from capstan.commands.api_client import ApiUrlOption, CapstanAPI, TokenOption, connect
from capstan.commands.common import fail
from capstan.commands.output import api_errors, read_input

RESOURCES = "/resource-service/v1/project"
PROJECTS = "/controlPlane/v1/project"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _stages_with_service(api: CapstanAPI, project: str, service: str) -> list[str]:
    """The stages of a project that have the service, in shipyard order."""
    found = api.get(f"{PROJECTS}/{_segment(project)}")
    stages = found.get("stages") if isinstance(found, dict) else None
    names = [
        str(stage.get("stageName"))
        for stage in stages or []
        if any(s.get("serviceName") == service for s in stage.get("services") or [])
    ]
    if not names:
        fail(f"service '{service}' not found in any stage of project '{project}'")
    return names


def _path(project: str, stage: str | None, service: str | None) -> str:
    path = f"{RESOURCES}/{_segment(project)}"
    if stage:
        path += f"/stage/{_segment(stage)}"
        if service:
            path += f"/service/{_segment(service)}"
    return path + "/resource"


def _where(project: str, stage: str | None, service: str | None) -> str:
    where = f"project {project}"
    if stage:
        where += f", stage {stage}"
    if service:
        where += f", service {service}"
    return where


def add_resource(
    project: Annotated[str, typer.Option("--project", "-p", help="The project.")],
    resource: Annotated[Path, typer.Option("--resource", help="The local file to upload (- for stdin).")],
    resource_uri: Annotated[
        str | None,
        typer.Option(
            "--resourceUri",
            "--resource-uri",
            help="Where to store it, e.g. slo.yaml (default: the file's name).",
        ),
    ] = None,
    stage: Annotated[str | None, typer.Option("--stage", "-s", help="Store it in this stage.")] = None,
    service: Annotated[
        str | None, typer.Option("--service", help="Store it for this service (every stage without --stage).")
    ] = None,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Add or replace a resource of a project, stage or service (`keptn add-resource`)."""
    uri = resource_uri or (resource.name if str(resource) != "-" else None)
    if not uri:
        fail("give --resourceUri when the resource comes from stdin")
    content = base64.b64encode(read_input(resource, "resource")).decode("ascii")
    body = {"resources": [{"resourceURI": uri, "resourceContent": content}]}
    with connect(api_url, token) as api, api_errors():
        stages: list[str | None] = [stage]
        if service and not stage:
            stages = list(_stages_with_service(api, project, service))
        for one in stages:
            answer: Any = api.post(_path(project, one, service), body)
            commit = answer.get("commitID") if isinstance(answer, dict) else None
            typer.echo(
                f"resource {uri} added to {_where(project, one, service)}"
                + (f" (version {commit})" if commit else "")
            )


def register(app: typer.Typer) -> None:
    """Add ``add-resource`` to the ``capstan`` app."""
    app.command("add-resource")(add_resource)
