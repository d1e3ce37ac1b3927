"""``capstan token create|list|revoke``: scoped API tokens (``/api/v1/tokens``).

The admin token (``<CAPSTAN_DATA_DIR>/api-token`` or ``CAPSTAN_API_TOKEN``) can do everything;
these commands make narrower ones for CI jobs, integrations and people, each with scopes and
perhaps one project. ``create`` prints the token alone on stdout (``TOKEN=$(capstan token create
...)``) and the rest on stderr: the token is shown this once and is stored only as a hash.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table

from capstan.commands.api_client import APIError, ApiUrlOption, TokenOption, connect
from capstan.commands.common import err_console, fail
from capstan.scopes import ALL_SCOPES, parse_scope

TOKENS = "/v1/tokens"
WIDE = 200
"""Width of the table when stdout is not a terminal (rich would fold the ids at 80)."""

app = typer.Typer(
    name="token",
    help="Create, list and revoke scoped API tokens.",
    no_args_is_help=True,
)


class OutputFormat(StrEnum):
    """How results are printed."""

    TEXT = "text"
    JSON = "json"


OutputOption = Annotated[OutputFormat, typer.Option("--output", "-o", help="text or json.")]


def parse_scopes(values: list[str]) -> list[str]:
    """The scopes of repeated and/or comma-separated ``--scope`` values, deduplicated, in order.

    Unknown names end the command with a one-line error listing the known ones.
    """
    found: list[str] = []
    for value in values:
        for name in value.split(","):
            if not name.strip():
                continue
            scope = parse_scope(name)
            if scope is None:
                fail(f"unknown scope {name.strip()!r}; known scopes: {', '.join(ALL_SCOPES)}")
            if scope.value not in found:
                found.append(scope.value)
    if not found:
        fail(f"give at least one --scope ({', '.join(ALL_SCOPES)})")
    return found


def tokens_table(tokens: list[dict[str, Any]]) -> Table:
    """The tokens as a table (never the tokens themselves: the API does not have them)."""
    table = Table(title="API tokens", title_justify="left")
    for column in ("id", "name", "scopes", "project", "created", "revoked"):
        table.add_column(column, overflow="fold")
    for token in tokens:
        table.add_row(
            str(token.get("id", "")),
            str(token.get("name", "")),
            ", ".join(token.get("scopes") or []),
            token.get("project") or "(all)",
            str(token.get("createdAt", "")),
            token.get("revokedAt") or "-",
        )
    return table


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="A label for people, e.g. ci-sockshop.")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            "-s",
            help=f"A scope, repeatable or comma-separated: {', '.join(ALL_SCOPES)}.",
        ),
    ],
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Restrict the token to this one project.")
    ] = None,
    output: OutputOption = OutputFormat.TEXT,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a token and print it (shown this once; store it now)."""
    body: dict[str, Any] = {"name": name, "scopes": parse_scopes(scope)}
    if project:
        body["project"] = project
    with connect(api_url, token) as api:
        try:
            created = api.post(TOKENS, body)
        except APIError as exc:
            fail(str(exc))
    if not isinstance(created, dict) or not isinstance(created.get("token"), str):
        fail(f"unexpected answer of POST {TOKENS}: no token")
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(created, indent=2))
        return
    where = f"project {created.get('project')}" if created.get("project") else "all projects"
    err_console.print(
        f"created token {created.get('id')} ({created.get('name')}): "
        f"{', '.join(created.get('scopes') or [])} on {where}; it is shown only now",
        markup=False,
    )
    typer.echo(created["token"])


@app.command("list")
def list_tokens(
    output: OutputOption = OutputFormat.TEXT,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """List the tokens (revoked ones too); never the tokens themselves."""
    with connect(api_url, token) as api:
        try:
            answer = api.get(TOKENS)
        except APIError as exc:
            fail(str(exc))
    tokens = answer.get("tokens") if isinstance(answer, dict) else None
    if not isinstance(tokens, list):
        fail(f"unexpected answer of GET {TOKENS}: no 'tokens' list")
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(tokens, indent=2))
    elif tokens:
        console = Console(highlight=False)
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console = Console(highlight=False, width=WIDE)  # piped: keep ids whole
        console.print(tokens_table(tokens))
    else:
        typer.echo("no API tokens (the admin token is not listed)")


@app.command()
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (see `capstan token list`).")],
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Revoke a token at once: its next request is answered 401."""
    with connect(api_url, token) as api:
        try:
            revoked = api.request("DELETE", f"{TOKENS}/{quote(token_id, safe='')}")
        except APIError as exc:
            fail(str(exc))
    name = revoked.get("name") if isinstance(revoked, dict) else None
    typer.echo(f"revoked {token_id}" + (f" ({name})" if name else ""))


def register(root: typer.Typer) -> None:
    """Add ``token`` to the ``capstan`` app."""
    root.add_typer(app, name="token")
