"""``capstan slo evaluate``: score SLI values against an ``slo.yaml`` offline, as the server would.

Prints the ``data`` of the ``evaluation.finished`` event lighthouse would send for the input
(without project/stage/service, times and ``sloFileContent``) as JSON on stdout. Exit code 0
whenever an evaluation was produced, a failed gate included; 2 for unusable input, with one line
on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from capstan.commands.common import err_console
from keptn.lighthouse import (
    IndicatorValue,
    apply_comparison_rules,
    comparison_rules,
    evaluate,
    to_go_json_numbers,
)
from keptn.slo import InvalidSLOError, parse_slo, slo_problems

USAGE_ERROR = 2
"""Exit code for input that cannot be evaluated (the code Click uses for usage errors)."""

slo_app = typer.Typer(
    name="slo",
    help="Work with SLO files (quality gates).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _unusable(message: str) -> NoReturn:
    # One line even for PyYAML's multi-line messages (which end with a "^" marker line).
    lines = [line.strip() for line in message.splitlines() if line.strip() not in ("", "^")]
    err_console.print(f"error: {' '.join(lines)}", style="bold red", markup=False)
    raise typer.Exit(USAGE_ERROR)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _unusable(f"cannot read {path}: {reason}")


def _read_json_list(path: Path) -> list[Any]:
    try:
        document = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        _unusable(f"{path} is not valid JSON: {exc}")
    if not isinstance(document, list):
        _unusable(f"{path} must contain a JSON list, found {type(document).__name__}")
    return document


def _indicator_values(path: Path) -> list[IndicatorValue]:
    values = []
    for index, item in enumerate(_read_json_list(path)):
        if not isinstance(item, dict):
            _unusable(f"{path}[{index}] must be an object {{metric, value, success, message}}")
        try:
            values.append(IndicatorValue.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            _unusable(f"{path}[{index}].{where}: {first['msg']}")
    return values


def _previous(path: Path | None) -> list[dict[str, Any]]:
    if path is None:
        return []
    entries = _read_json_list(path)
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            _unusable(f"{path}[{index}] must be the data object of an evaluation.finished event")
    return entries


@slo_app.command("evaluate")
def evaluate_command(
    slo: Annotated[Path, typer.Option("--slo", help="The slo.yaml to evaluate against.")],
    sli: Annotated[
        Path, typer.Option("--sli", help="JSON list of SLI values: {metric, value, success, message}.")
    ],
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous",
            help="JSON list, newest first, of previous evaluation.finished data objects (optional 'id').",
        ),
    ] = None,
) -> None:
    """Score SLI values against an SLO; print the evaluation.finished data as JSON."""
    try:
        parsed = parse_slo(_read_text(slo))
    except InvalidSLOError as exc:
        _unusable(f"{slo}: {exc.detail}")
    values = _indicator_values(sli)
    history = apply_comparison_rules(comparison_rules(parsed), _previous(previous))
    for problem in slo_problems(parsed):
        err_console.print(f"warning: {problem}", style="yellow", markup=False)
    data = evaluate(parsed, values, history)
    typer.echo(json.dumps(to_go_json_numbers(data), indent=2))


def register(app: typer.Typer) -> None:
    """Add ``slo`` (with ``slo evaluate``) to the ``capstan`` app."""
    app.add_typer(slo_app)
