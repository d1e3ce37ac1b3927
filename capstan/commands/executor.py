"""``capstan executor``: run commands for tasks, Keptn's job-executor-service without Kubernetes.

A separate process that connects to a control plane by URL and token (pull mode by default, so
it may run on another machine or network), registers as ``job-executor-service`` with a
subscription per ``--task``, and runs the actions of ``job/config.yaml`` (docs/executor.md).

The URL and token resolve like every ``capstan`` command's (``--url``/``--token``, their
``CAPSTAN_EXECUTOR_*`` or ``CAPSTAN_API_*`` variables, then ``capstan auth``'s config, then the
defaults); every other option also has a ``CAPSTAN_EXECUTOR_*`` variable.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Literal

import typer

from capstan.commands.api_client import resolve_connection
from capstan.commands.common import fail

ENV = "CAPSTAN_EXECUTOR_"


def _split(values: list[str] | None) -> tuple[str, ...]:
    # Repeated options and comma lists (the form an environment variable takes) mean the same.
    return tuple(part.strip() for value in values or [] for part in value.split(",") if part.strip())


def executor(
    task: Annotated[
        list[str],
        typer.Option(
            "--task", envvar=f"{ENV}TASKS", help="Task to answer, e.g. deployment (repeatable or comma list)"
        ),
    ],
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            "--api-url",
            envvar=[f"{ENV}URL", "CAPSTAN_API_URL"],
            show_envvar=False,
            help="Base URL of the Capstan API (env CAPSTAN_EXECUTOR_URL or CAPSTAN_API_URL)",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar=[f"{ENV}TOKEN", "CAPSTAN_API_TOKEN"],
            show_envvar=False,
            help="API token (env CAPSTAN_EXECUTOR_TOKEN or CAPSTAN_API_TOKEN)",
        ),
    ] = None,
    project: Annotated[
        list[str] | None,
        typer.Option(envvar=f"{ENV}PROJECTS", help="Only events of this project (repeatable)"),
    ] = None,
    stage: Annotated[
        list[str] | None, typer.Option(envvar=f"{ENV}STAGES", help="Only events of this stage (repeatable)")
    ] = None,
    service: Annotated[
        list[str] | None,
        typer.Option(envvar=f"{ENV}SERVICES", help="Only events of this service (repeatable; needs --stage)"),
    ] = None,
    name: Annotated[str, typer.Option(envvar=f"{ENV}NAME", help="Integration name")] = "job-executor-service",
    mode: Annotated[str, typer.Option(envvar=f"{ENV}MODE", help="pull or push")] = "pull",
    host: Annotated[
        str, typer.Option(envvar=f"{ENV}HOST", help="Push mode: address to listen on")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar=f"{ENV}PORT", help="Push mode: port to listen on")] = 8080,
    public_url: Annotated[
        str | None, typer.Option(envvar=f"{ENV}PUBLIC_URL", help="Push mode: URL the control plane posts to")
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            envvar=f"{ENV}ALLOW",
            help="Allow a feature that is off by default: container (repeatable)",
        ),
    ] = None,
    deny: Annotated[
        list[str] | None,
        typer.Option(envvar=f"{ENV}DENY", help="Forbid a feature that is on by default (repeatable)"),
    ] = None,
    allow_command: Annotated[
        list[str] | None,
        typer.Option(
            envvar=f"{ENV}ALLOW_COMMANDS", help="Glob pattern cmd[0] must match (repeatable; default *)"
        ),
    ] = None,
    output_limit: Annotated[
        int,
        typer.Option(envvar=f"{ENV}OUTPUT_LIMIT", help="Bytes of stdout and of stderr kept per task", min=0),
    ] = 16384,
    max_timeout: Annotated[
        float, typer.Option(envvar=f"{ENV}MAX_TIMEOUT", help="Longest task timeout in seconds", min=0.1)
    ] = 3600.0,
    work_dir: Annotated[
        str | None,
        typer.Option(envvar=f"{ENV}WORK_DIR", help="Where task directories are made (default: temp)"),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            envvar=f"{ENV}STATE_DIR",
            help="Where the journal of started tasks is kept (default ~/.local/state/capstan)",
        ),
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option(envvar=f"{ENV}RUNTIME", help="Container runtime: podman or docker (default: found)"),
    ] = None,
    poll_interval: Annotated[
        float, typer.Option(envvar=f"{ENV}POLL_INTERVAL", help="Seconds between polls", min=0.01)
    ] = 1.0,
    heartbeat_interval: Annotated[
        float, typer.Option(envvar=f"{ENV}HEARTBEAT_INTERVAL", help="Seconds between heartbeats", min=0.05)
    ] = 10.0,
    concurrency: Annotated[
        int, typer.Option(envvar=f"{ENV}CONCURRENCY", help="Actions running at once", min=1)
    ] = 4,
    log_level: Annotated[
        str, typer.Option(envvar=f"{ENV}LOG_LEVEL", help="debug, info, warning or error")
    ] = "info",
) -> None:
    """Run job/config.yaml actions for task events (Keptn's job-executor-service); Ctrl-C stops it."""
    from capstan.executor.job import DEFAULT_FEATURES, FEATURES, Policy
    from capstan.executor.journal import JournalLockedError
    from capstan.executor.service import Executor, ExecutorOptions, default_state_dir

    if mode not in ("pull", "push"):
        fail(f"invalid --mode {mode!r}: use pull or push")
    features = set(DEFAULT_FEATURES)
    for feature in (*_split(allow), *_split(deny)):
        if feature not in FEATURES:
            fail(f"unknown feature {feature!r} (features: {', '.join(FEATURES)})")
    features |= set(_split(allow))
    features -= set(_split(deny))
    tasks, stages, services = _split(task), _split(stage), _split(service)
    if services and not stages:
        fail("--service needs --stage too (as Keptn's subscriptions)")
    connection = resolve_connection(url, token)
    policy = Policy(
        features=frozenset(features),
        commands=_split(allow_command) or ("*",),
        output_limit=output_limit,
        max_timeout=max_timeout,
        work_root=work_dir,
        runtime=runtime,
    )
    connect_mode: Literal["pull", "push"] = "push" if mode == "push" else "pull"
    try:
        service_ = Executor(
            ExecutorOptions(
                api_url=connection.api_url,
                token=connection.token,
                tasks=tasks,
                projects=_split(project),
                stages=stages,
                services=services,
                name=name,
                mode=connect_mode,
                poll_interval=poll_interval,
                heartbeat_interval=heartbeat_interval,
                max_concurrency=concurrency,
                host=host,
                port=port,
                public_url=public_url,
                policy=policy,
                state_dir=state_dir or default_state_dir(),
            )
        )
    except (ValueError, TypeError) as exc:
        fail(str(exc))
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        fail(f"invalid --log-level {log_level!r}")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))  # one line per poll otherwise
    try:
        asyncio.run(service_.serve())
    except (JournalLockedError, OSError) as exc:
        fail(f"cannot use the journal {service_.journal.path}: {exc}")


def register(app: typer.Typer) -> None:
    """Add ``executor`` to the ``capstan`` app."""
    app.command()(executor)
