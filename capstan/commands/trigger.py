"""``capstan trigger delivery|evaluation|sequence``: start a sequence, as ``keptn trigger`` did.

- ``delivery`` sends ``sh.keptn.event.<stage>.<sequence>.triggered`` (sequence ``delivery`` by
  default, the shipyard's first stage unless ``--stage``) with ``configurationChange.values.image``
  set to ``image:tag``;
- ``evaluation`` calls Keptn's evaluation endpoint, which sends
  ``sh.keptn.event.<stage>.evaluation.triggered`` with the window ``evaluation.start``/``end``;
- ``sequence NAME`` sends ``sh.keptn.event.<stage>.<NAME>.triggered``.

Each prints the Keptn context. With ``--watch`` the command follows the context until its
sequences ended (:mod:`capstan.commands.watch_view`) and its exit code is the outcome: 0 for pass
or warning, 1 for fail, errored, aborted or timed out, and for ``--watch-time`` running out.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from capstan.commands.api_client import (
    APIError,
    ApiUrlOption,
    CapstanAPI,
    TokenOption,
    connect,
)
from capstan.commands.common import fail
from capstan.commands.watch_view import WatchTimeout, render_tree, summary_lines, watch_context
from keptn.errors import InvalidInputError
from keptn.shipyard import Shipyard, parse_shipyard
from keptn.yaml_loader import load_yaml

SOURCE = "capstan-cli"
WIDE = 220
"""Width of the output when stdout is not a terminal (rich would fold lines at 80)."""

trigger_app = typer.Typer(
    name="trigger",
    help="Trigger a delivery, an evaluation or any sequence (Keptn's `keptn trigger`).",
    no_args_is_help=True,
)


class OutputFormat(StrEnum):
    """How results are printed."""

    TEXT = "text"
    JSON = "json"


ProjectOption = Annotated[str, typer.Option("--project", help="The project.")]
ServiceOption = Annotated[str, typer.Option("--service", help="The service.")]
LabelsOption = Annotated[
    list[str] | None,
    typer.Option("--labels", "-l", help="Labels for every event of the sequence: k=v,k2=v2 (repeatable)."),
]
WatchOption = Annotated[bool, typer.Option("--watch", help="Follow the sequence until it ends.")]
WatchTimeOption = Annotated[
    int,
    typer.Option("--watch-time", min=0, help="With --watch: give up after this many seconds (0: never)."),
]
OutputOption = Annotated[OutputFormat, typer.Option("--output", "-o", help="text or json.")]


def parse_labels(values: list[str] | None) -> dict[str, str] | None:
    """``k=v,k2=v2`` (cobra's StringToString, as Keptn's ``--labels``), from one or more options."""
    labels: dict[str, str] = {}
    for value in values or []:
        for pair in value.split(","):
            if not pair.strip():
                continue
            key, sep, text = pair.partition("=")
            if not sep or not key.strip():
                raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="'--labels'")
            labels[key.strip()] = text
    return labels or None


def image_reference(image: str, tag: str | None) -> str:
    """``image:tag``: ``--tag`` replaces a tag in ``--image``; without either the tag is ``latest``.

    A registry port (``localhost:5000/carts``) is not a tag, and a digest reference is kept as given.
    """
    image = image.strip().rstrip("/")
    if "@" in image and not tag:
        return image
    name, _, last = image.rpartition("/")
    repository, colon, found = last.partition(":")
    base = f"{name}/{repository}" if name else repository
    if tag:
        return f"{base}:{tag}"
    return f"{base}:{found}" if colon and found else f"{base}:latest"


def _project(api: CapstanAPI, project: str) -> tuple[dict[str, Any], Shipyard]:
    """The project (``GET /controlPlane/v1/project/{p}``) and its parsed shipyard."""
    found = api.get(f"/controlPlane/v1/project/{project}")
    if not isinstance(found, dict) or not isinstance(found.get("shipyard"), str):
        raise APIError(f"unexpected answer for project {project}: no shipyard")
    try:
        return found, parse_shipyard(found["shipyard"])
    except InvalidInputError as exc:
        raise APIError(f"the shipyard of project {project} is invalid: {exc}") from exc


def _check_target(info: dict[str, Any], shipyard: Shipyard, stage: str, sequence: str, service: str) -> None:
    """Keptn's checks before a trigger: the stage, the sequence in it, the service in the stage."""
    project = info.get("projectName", "")
    found = shipyard.stage(stage)
    if found is None:
        fail(f"could not start sequence {sequence}: no stage {stage} in project {project}")
    if found.sequence(sequence) is None:
        fail(
            f"could not start sequence {sequence}: no sequence {sequence} in stage {stage}"
            f" of project {project}"
        )
    services = next(
        (s.get("services") or [] for s in info.get("stages") or [] if s.get("stageName") == stage), []
    )
    if service not in {s.get("serviceName") for s in services}:
        fail(f"could not start sequence {sequence}: service {service} not found in project {project}")


def _triggered(stage: str, sequence: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": f"sh.keptn.event.{stage}.{sequence}.triggered",
        "specversion": "1.0",
        "source": SOURCE,
        "contenttype": "application/json",
        "data": data,
    }


def _started(
    api: CapstanAPI,
    context: str,
    where: tuple[str, str, str, str],
    shipyard: Shipyard | None,
    *,
    watch: bool,
    watch_time: int,
    output: OutputFormat,
) -> None:
    """Report the started sequence; with ``watch``, follow it and exit with its outcome."""
    sequence, project, stage, service = where
    as_json = output is OutputFormat.JSON
    started = {"keptnContext": context, "project": project, "stage": stage, "service": service}
    if not watch:
        if as_json:
            typer.echo(json.dumps({**started, "sequence": sequence}))
        else:
            typer.echo(
                f"Started sequence {sequence} in {project}/{stage} for {service}, keptnContext {context}"
            )
        return
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=WIDE)  # a log: keep ids and lines whole
    if not as_json:
        console.print(
            f"Started sequence {sequence} in {project}/{stage} for {service}, keptnContext {context}",
            markup=False,
        )
    try:
        model = watch_context(
            api, project, context, shipyard, watch_time=watch_time, console=None if as_json else console
        )
    except WatchTimeout as timeout:
        if as_json:
            typer.echo(json.dumps(timeout.model.to_json(datetime.now(UTC)), indent=2))
        elif not console.is_terminal:
            console.print(render_tree(timeout.model, datetime.now(UTC)))
        fail(f"--watch-time {watch_time}s expired before sequence {sequence} ended (keptnContext {context})")
    except APIError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(model.to_json(datetime.now(UTC)), indent=2))
    else:
        if not console.is_terminal:  # the live tree stays on a terminal; a log gets it once
            console.print(render_tree(model, datetime.now(UTC)))
        for line in summary_lines(model):
            console.print(line, markup=False)
    if not model.succeeded:
        raise typer.Exit(1)


@trigger_app.command("delivery")
def delivery(
    project: ProjectOption,
    service: ServiceOption,
    image: Annotated[str, typer.Option("--image", help="The image, e.g. docker.io/org/carts[:tag].")],
    tag: Annotated[
        str | None, typer.Option("--tag", help="The image tag (default: from --image, else latest).")
    ] = None,
    sequence: Annotated[str, typer.Option("--sequence", help="The sequence to trigger.")] = "delivery",
    stage: Annotated[
        str | None, typer.Option("--stage", help="The stage (default: the shipyard's first).")
    ] = None,
    labels: LabelsOption = None,
    values: Annotated[
        Path | None,
        typer.Option("--values", help="YAML file merged into configurationChange.values.", dir_okay=False),
    ] = None,
    watch: WatchOption = False,
    watch_time: WatchTimeOption = 0,
    output: OutputOption = OutputFormat.TEXT,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Deliver a new image of a service (Keptn's `keptn trigger delivery`)."""
    parsed_labels = parse_labels(labels)
    change: dict[str, Any] = {}
    if values is not None:
        try:
            loaded = load_yaml(values.read_text(), what="values file", field="--values")
        except (OSError, UnicodeDecodeError, InvalidInputError) as exc:
            fail(f"cannot read --values {values}: {exc}")
        if not isinstance(loaded, dict):
            fail(f"--values {values} must hold a YAML mapping")
        change.update(loaded)
    change["image"] = image_reference(image, tag)
    with connect(api_url, token) as api:
        try:
            info, shipyard = _project(api, project)
            stage = stage or shipyard.stage_names()[0]
            _check_target(info, shipyard, stage, sequence, service)
            data: dict[str, Any] = {"project": project, "stage": stage, "service": service}
            if parsed_labels:
                data["labels"] = parsed_labels
            data["configurationChange"] = {"values": change}
            context = api.send_event(_triggered(stage, sequence, data))
        except APIError as exc:
            fail(str(exc))
        _started(
            api, context, (sequence, project, stage, service), shipyard,
            watch=watch, watch_time=watch_time, output=output,
        )  # fmt: skip


@trigger_app.command("evaluation")
def evaluation(
    project: ProjectOption,
    stage: Annotated[str, typer.Option("--stage", help="The stage.")],
    service: ServiceOption,
    timeframe: Annotated[
        str | None, typer.Option("--timeframe", help="Window length, e.g. 5m (not with --end).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="Window start, e.g. 2024-05-01T10:00:00 (UTC).")
    ] = None,
    end: Annotated[str | None, typer.Option("--end", help="Window end (needs --start).")] = None,
    labels: LabelsOption = None,
    watch: WatchOption = False,
    watch_time: WatchTimeOption = 0,
    output: OutputOption = OutputFormat.TEXT,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Evaluate the quality gate of a service in a stage (Keptn's `keptn trigger evaluation`).

    The window is the last 5 minutes unless --timeframe, --start or --end say otherwise.
    """
    body: dict[str, Any] = {
        "timeframe": timeframe,
        "start": start,
        "end": end,
        "labels": parse_labels(labels),
    }
    body = {key: value for key, value in body.items() if value}
    with connect(api_url, token) as api:
        try:
            _, shipyard = _project(api, project)
            answer = api.post(
                f"/controlPlane/v1/project/{project}/stage/{stage}/service/{service}/evaluation", body
            )
        except APIError as exc:
            fail(str(exc))
        context = str(answer.get("keptnContext", "")) if isinstance(answer, dict) else ""
        if not context:
            fail("the API answered no keptnContext")
        _started(
            api, context, ("evaluation", project, stage, service), shipyard,
            watch=watch, watch_time=watch_time, output=output,
        )  # fmt: skip


@trigger_app.command("sequence")
def sequence(
    name: Annotated[str, typer.Argument(help="The sequence, as named in the shipyard.", metavar="SEQUENCE")],
    project: ProjectOption,
    service: ServiceOption,
    stage: Annotated[str, typer.Option("--stage", help="The stage.")],
    labels: LabelsOption = None,
    watch: WatchOption = False,
    watch_time: WatchTimeOption = 0,
    output: OutputOption = OutputFormat.TEXT,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Trigger any sequence of the shipyard (Keptn's `keptn trigger sequence`)."""
    parsed_labels = parse_labels(labels)
    with connect(api_url, token) as api:
        try:
            info, shipyard = _project(api, project)
            _check_target(info, shipyard, stage, name, service)
            data: dict[str, Any] = {"project": project, "stage": stage, "service": service}
            if parsed_labels:
                data["labels"] = parsed_labels
            context = api.send_event(_triggered(stage, name, data))
        except APIError as exc:
            fail(str(exc))
        _started(
            api, context, (name, project, stage, service), shipyard,
            watch=watch, watch_time=watch_time, output=output,
        )  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``trigger delivery|evaluation|sequence`` to the ``capstan`` app."""
    app.add_typer(trigger_app)
