"""What every ``capstan`` command shares: settings from env plus options, and one-line errors."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from capstan.settings import Settings

err_console = Console(stderr=True, soft_wrap=True, highlight=False)
"""Where one-line errors go."""


def fail(message: str) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with code 1."""
    err_console.print(f"error: {message}", style="bold red", markup=False)
    raise typer.Exit(1)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the command-line options that were given on top.

    Args:
        overrides: field name to value; ``None`` means "option not given".

    Returns:
        The validated settings. An invalid value ends the command with a one-line error that
        names the environment variable (and the option, if it came from one).
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        # Fields with validation aliases are reported under the alias, already an env name.
        name = field if field.isupper() else f"CAPSTAN_{field.upper()}"
        option = f" (--{field.replace('_', '-')})" if field in given else ""
        fail(f"invalid setting {name}{option}: {first['msg']}")
