"""``capstan create project|service|secret`` and ``capstan delete project|service|secret``.

Keptn's ``keptn create``/``keptn delete``, on the shipyard-controller and secret-service APIs.
Keptn 1.x wanted a git upstream per project (``--git-remote-url``, ``--git-user``,
``--git-token``...); Capstan keeps resources in its own versioned store, so those flags are
accepted, so that ported scripts run, and ignored with a warning on stderr.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from capstan.commands.api_client import ApiUrlOption, TokenOption, connect
from capstan.commands.common import fail
from capstan.commands.output import api_errors, read_text, warn

PROJECTS = "/controlPlane/v1/project"
SECRETS = "/secrets/v1/secret"
DEFAULT_SCOPE = "keptn-default"

create_app = typer.Typer(name="create", help="Create a project, service or secret.", no_args_is_help=True)
delete_app = typer.Typer(name="delete", help="Delete a project, service or secret.", no_args_is_help=True)

GitOption = Annotated[
    str | None, typer.Option(help="Accepted for Keptn scripts and ignored: Capstan has no git upstream.")
]


def _segment(value: str) -> str:
    return quote(value, safe="")


def _message(answer: Any, fallback: str) -> str:
    message = answer.get("message") if isinstance(answer, dict) else None
    return message if isinstance(message, str) and message else fallback


@create_app.command("project")
def create_project(
    name: Annotated[str, typer.Argument(help="The project name.")],
    shipyard: Annotated[Path, typer.Option("--shipyard", "-s", help="The shipyard.yaml file (- for stdin).")],
    git_user: GitOption = None,
    git_token: GitOption = None,
    git_remote_url: GitOption = None,
    git_private_key: GitOption = None,
    git_private_key_pass: GitOption = None,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a project from a shipyard (`keptn create project`)."""
    given = {
        "--git-user": git_user,
        "--git-token": git_token,
        "--git-remote-url": git_remote_url,
        "--git-private-key": git_private_key,
        "--git-private-key-pass": git_private_key_pass,
    }
    ignored = [flag for flag, value in given.items() if value]
    if ignored:
        warn(
            f"{', '.join(ignored)} ignored: Capstan keeps project resources in its own versioned store "
            "and does not sync them to a git upstream"
        )
    content = read_text(shipyard, "shipyard")
    body = {"name": name, "shipyard": base64.b64encode(content.encode()).decode()}
    with connect(api_url, token) as api, api_errors():
        api.post(PROJECTS, body)
        created = api.get(f"{PROJECTS}/{_segment(name)}")
    stages = (
        [str(s.get("stageName")) for s in created.get("stages") or []] if isinstance(created, dict) else []
    )
    typer.echo(f"project {name} created with stages {', '.join(stages) or '(none)'}")


@create_app.command("service")
def create_service(
    name: Annotated[str, typer.Argument(help="The service name.")],
    project: Annotated[str, typer.Option("--project", "-p", help="The project.")],
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a service in every stage of a project (`keptn create service`)."""
    with connect(api_url, token) as api, api_errors():
        answer = api.post(f"{PROJECTS}/{_segment(project)}/service", {"serviceName": name})
    typer.echo(_message(answer, f"service {name} created in project {project}"))


def parse_literals(values: list[str]) -> dict[str, str]:
    """``key=value`` pairs of ``--from-literal``; the value may contain ``=``, the key may not be empty."""
    data: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            fail(f"invalid --from-literal {value!r}: expected key=value")
        if key in data:
            fail(f"--from-literal key {key!r} given twice")
        data[key] = val
    return data


@create_app.command("secret")
def create_secret(
    name: Annotated[str, typer.Argument(help="The secret name.")],
    from_literal: Annotated[
        list[str], typer.Option("--from-literal", help="key=value, repeatable; at least one.")
    ],
    scope: Annotated[str, typer.Option("--scope", help="The secret's scope.")] = DEFAULT_SCOPE,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a secret (`keptn create secret`); its values are never printed back."""
    body = {"name": name, "scope": scope, "data": parse_literals(from_literal)}
    with connect(api_url, token) as api, api_errors():
        created = api.post(SECRETS, body)
    keys = created.get("keys") if isinstance(created, dict) else None
    typer.echo(f"secret {name} created in scope {scope} with keys {', '.join(keys or sorted(body['data']))}")


@delete_app.command("project")
def delete_project(
    name: Annotated[str, typer.Argument(help="The project name.")],
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a project with its stages, services, resources and events (`keptn delete project`)."""
    with connect(api_url, token) as api, api_errors():
        answer = api.delete(f"{PROJECTS}/{_segment(name)}")
    typer.echo(_message(answer, f"project {name} deleted"))


@delete_app.command("service")
def delete_service(
    name: Annotated[str, typer.Argument(help="The service name.")],
    project: Annotated[str, typer.Option("--project", "-p", help="The project.")],
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a service from every stage of a project (`keptn delete service`)."""
    with connect(api_url, token) as api, api_errors():
        answer = api.delete(f"{PROJECTS}/{_segment(project)}/service/{_segment(name)}")
    typer.echo(_message(answer, f"service {name} deleted from project {project}"))


@delete_app.command("secret")
def delete_secret(
    name: Annotated[str, typer.Argument(help="The secret name.")],
    scope: Annotated[str, typer.Option("--scope", help="The secret's scope.")] = DEFAULT_SCOPE,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a secret (`keptn delete secret`)."""
    with connect(api_url, token) as api, api_errors():
        api.delete(SECRETS, params={"name": name, "scope": scope})
    typer.echo(f"secret {name} deleted from scope {scope}")


def register(app: typer.Typer) -> None:
    """Add ``create`` and ``delete`` to the ``capstan`` app."""
    app.add_typer(create_app, name="create")
    app.add_typer(delete_app, name="delete")
