"""The ``capstan`` command: a Typer app that each command module registers itself on.

A command module lives in :mod:`capstan.commands`, exposes ``register(app)`` and is listed in
:data:`COMMAND_MODULES`. Commands turn expected failures into one line on stderr and exit code 1
(:func:`capstan.commands.common.fail`), never a traceback.
"""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES = (
    "capstan.commands.up",
    "capstan.commands.slo",
    "capstan.commands.approve",
    "capstan.commands.token",
    "capstan.commands.auth",
    "capstan.commands.create",
    "capstan.commands.resources",
    "capstan.commands.get",
    "capstan.commands.dora",
    "capstan.commands.events",
    "capstan.commands.monitoring",
    "capstan.commands.sequence_control",
    "capstan.commands.trigger",
    "capstan.commands.executor",
)
"""Modules with a ``register(app: typer.Typer)`` function, in the order of ``capstan --help``."""

app = typer.Typer(
    name="capstan",
    help="Capstan: a Keptn-v1-compatible control plane on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main() -> None:
    """Capstan: a Keptn-v1-compatible control plane on Temporal."""


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)
