"""``capstan up``: run a complete control plane on this machine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from capstan.commands.common import err_console, fail, load_settings
from capstan.logs import configure_logging


def up(
    data_dir: Annotated[
        Path | None, typer.Option(help="Data directory (env CAPSTAN_DATA_DIR, default ./.capstan)")
    ] = None,
    api_port: Annotated[
        int | None, typer.Option(help="Gateway port (env CAPSTAN_API_PORT, default 8080)")
    ] = None,
    temporal_port: Annotated[
        int | None,
        typer.Option(help="Temporal dev server gRPC port (env CAPSTAN_TEMPORAL_PORT, default 7233)"),
    ] = None,
    temporal_ui_port: Annotated[
        int | None, typer.Option(help="Temporal UI port (env CAPSTAN_TEMPORAL_UI_PORT, default 8233)")
    ] = None,
    temporal_address: Annotated[
        str | None,
        typer.Option(
            help="Use this Temporal frontend (host:port), start no dev server (env CAPSTAN_TEMPORAL_ADDRESS)"
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Use this PostgreSQL, start no embedded one (env CAPSTAN_DATABASE_URL)"),
    ] = None,
    api_token: Annotated[
        str | None,
        typer.Option(help="API token (x-token) (env CAPSTAN_API_TOKEN, default generated into the data dir)"),
    ] = None,
) -> None:
    """Start PostgreSQL, Temporal, the worker and the gateway; Ctrl-C stops them all."""
    # Imported here so that `capstan --help` and other commands do not pay for temporalio.
    from capstan.supervisor import run_up

    settings = load_settings(
        data_dir=data_dir,
        api_port=api_port,
        temporal_port=temporal_port,
        temporal_ui_port=temporal_ui_port,
        temporal_address=temporal_address,
        database_url=database_url,
        api_token=api_token,
    )
    configure_logging(settings, process="capstan")
    console = Console(soft_wrap=True, highlight=False, markup=False)
    try:
        code = asyncio.run(run_up(settings, console=console, err_console=err_console))
    except Exception as exc:  # a bug, not a user error: everything is stopped already, say it in one line
        if settings.log_level == "debug":
            raise
        fail(f"{type(exc).__name__}: {exc} (run with CAPSTAN_LOG_LEVEL=debug for the traceback)")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``up`` to the ``capstan`` app."""
    app.command()(up)
