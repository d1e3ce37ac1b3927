"""``capstan auth``: check an endpoint and token and store them (Keptn's ``keptn auth``).

``capstan auth --endpoint URL --api-token T`` sends ``POST <URL>/v1/auth`` with the token and, if
it is accepted, stores both in ``$XDG_CONFIG_HOME/capstan/config.json`` (mode 0600). Every other
command then uses them unless ``--api-url``/``--token`` or ``CAPSTAN_API_URL``/``CAPSTAN_API_TOKEN``
say otherwise. ``--status`` shows where commands connect and checks the token; ``--logout``
forgets the stored credentials.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from capstan.commands.api_client import CapstanAPI, resolve_connection
from capstan.commands.cli_config import ConfigError, StoredAuth, config_path, remove_auth, save_auth
from capstan.commands.common import fail
from capstan.commands.output import OutputFormat, OutputOption, api_errors, print_json

AUTH_PATH = "/v1/auth"

SOURCES = {
    "option": "option/environment",
    "config": "capstan auth",
    "default": "default",
    "data-dir": "data dir token file",
}


def normalize_endpoint(endpoint: str) -> str:
    """The API base URL of an endpoint: no trailing ``/``, ending in ``/api`` (appended if missing).

    Keptn's endpoints were given with ``/api``; the gateway's root URL (what ``capstan up`` prints)
    is accepted too. Anything but an http(s) URL is a one-line error.
    """
    url = endpoint.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or url in ("http:", "https:"):
        fail(f"invalid --endpoint {endpoint!r}: it must start with http:// or https://")
    return url if url.endswith("/api") else f"{url}/api"


def check_token(api_url: str, token: str) -> None:
    """``POST /v1/auth``: a refused token or an unreachable API is a one-line error."""
    with CapstanAPI(api_url, token) as api, api_errors():
        api.post(AUTH_PATH, {})


def _ask_token() -> str:
    if not sys.stdin.isatty():
        fail("give the API token with --api-token")
    return str(typer.prompt("API token", hide_input=True, err=True)).strip()


def auth(
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="The API's URL, e.g. http://127.0.0.1:8080/api.")
    ] = None,
    api_token: Annotated[
        str | None, typer.Option("--api-token", help="The API token (asked for on a terminal if missing).")
    ] = None,
    status: Annotated[
        bool, typer.Option("--status", help="Show where commands connect and check the token.")
    ] = False,
    logout: Annotated[bool, typer.Option("--logout", help="Forget the stored endpoint and token.")] = False,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Check an endpoint and API token and store them for the other commands (`keptn auth`)."""
    if status + logout + (endpoint is not None) > 1:
        fail("give one of --endpoint, --status and --logout")
    try:
        if logout:
            removed = remove_auth()
            typer.echo(f"logged out: removed {config_path()}" if removed else "not logged in")
            return
        if status:
            _status(output)
            return
        if endpoint is None:
            fail("give --endpoint (and --api-token), or --status, or --logout")
        url = normalize_endpoint(endpoint)
        token = api_token or _ask_token()
        if not token:
            fail("the API token is empty")
        check_token(url, token)
        path = save_auth(StoredAuth(api_url=url, token=token))
    except ConfigError as exc:
        fail(str(exc))
    if output is OutputFormat.JSON:
        print_json({"apiUrl": url, "configFile": str(path)})
    else:
        typer.echo(f"authenticated against {url}; credentials stored in {path}")


def _status(output: OutputFormat) -> None:
    """Where commands connect now (after options, env vars, stored config, defaults)."""
    # The environment variables count as for every other command (auth has no --api-url/--token).
    env_url, env_token = os.environ.get("CAPSTAN_API_URL"), os.environ.get("CAPSTAN_API_TOKEN")
    connection = resolve_connection(env_url or None, env_token or None)
    check_token(connection.api_url, connection.token)
    if output is OutputFormat.JSON:
        print_json(
            {
                "apiUrl": connection.api_url,
                "urlSource": connection.url_source,
                "tokenSource": connection.token_source,
                "configFile": str(config_path()),
            }
        )
        return
    typer.echo(
        f"connected to {connection.api_url} (URL from {SOURCES[connection.url_source]}, "
        f"token from {SOURCES[connection.token_source]}); the token is valid"
    )


def register(app: typer.Typer) -> None:
    """Add ``auth`` to the ``capstan`` app."""
    app.command()(auth)
