"""What the Keptn-parity commands share: ``--output``, tables, JSON, input files, API errors.

Read commands print rich tables by default and the API's objects with ``--output json``; every
expected failure is one ``error: ...`` line on stderr and exit code 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from capstan.commands.api_client import APIError
from capstan.commands.common import err_console, fail

WIDE = 220
"""Width of tables when stdout is not a terminal (rich would fold ids at 80 columns)."""

SOURCE = "capstan-cli"
"""The ``source`` of the events the CLI sends."""


class OutputFormat(StrEnum):
    """How results are printed."""

    TEXT = "text"
    JSON = "json"


OutputOption = Annotated[OutputFormat, typer.Option("--output", "-o", help="text or json.")]
"""The ``--output`` option of the read commands; default :attr:`OutputFormat.TEXT`."""


@contextmanager
def api_errors() -> Iterator[None]:
    """Turn an :class:`APIError` inside the block into a one-line error and exit code 1."""
    try:
        yield
    except APIError as exc:
        fail(str(exc))


def console() -> Console:
    """A console for stdout that keeps long ids whole when piped."""
    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(highlight=False, width=WIDE)
    return out


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout."""
    typer.echo(json.dumps(value, indent=2))


def print_table(title: str, columns: tuple[str, ...], rows: list[list[str]]) -> None:
    """Print rows as a rich table on stdout."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console().print(table)


def warn(message: str) -> None:
    """Print ``warning: <message>`` on stderr."""
    err_console.print(f"warning: {message}", style="yellow", markup=False)


def read_input(path: Path, what: str) -> bytes:
    """The bytes of an input file (``-`` is stdin); a missing or unreadable one is a one-line error."""
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        fail(f"{what} {path} not found")
    except IsADirectoryError:
        fail(f"{what} {path} is a directory, not a file")
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror or exc}")


def read_text(path: Path, what: str) -> str:
    """An input file as UTF-8 text; not UTF-8 or empty is a one-line error."""
    data = read_input(path, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{what} {path} is not UTF-8 text")
    if not text.strip():
        fail(f"{what} {path} is empty")
    return text


def text(value: Any, default: str = "-") -> str:
    """A cell: the value as text, ``default`` for None or empty."""
    return default if value is None or value == "" else str(value)
