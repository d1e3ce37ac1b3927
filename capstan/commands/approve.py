"""``capstan approve``: approve or decline an open approval (``keptn send event approval.finished``).

An ``approval`` task waits for a human when its shipyard strategy is ``manual``. The open
approvals are the open ``sh.keptn.event.approval.triggered`` events; a decision is an
``sh.keptn.event.approval.finished`` event posted to ``/v1/event`` with the triggered event's id
and Keptn context, ``result: pass`` to go on, ``result: fail`` to end the sequence with ``fail``.
As in Keptn, the CLI sends only the ``.finished``: the ``.started`` comes from the approval service.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from capstan.commands.api_client import (
    APIError,
    ApiUrlOption,
    CapstanAPI,
    TokenOption,
    connect,
)
from capstan.commands.common import err_console, fail
from keptn.approval import human_decision_event

APPROVAL_TRIGGERED = "sh.keptn.event.approval.triggered"
APPROVAL_FINISHED = "sh.keptn.event.approval.finished"
SOURCE = "capstan-cli"

WIDE = 220
"""Width of the table when stdout is not a terminal (rich would fold the ids at 80)."""

T = TypeVar("T")


class OutputFormat(StrEnum):
    """How results are printed."""

    TEXT = "text"
    JSON = "json"


class Evaluation(BaseModel):
    """The quality-gate result an approval carries (from an earlier ``evaluation.finished``)."""

    result: str | None
    score: float | None


class OpenApproval(BaseModel):
    """One open ``approval.triggered`` event, as listed."""

    id: str
    keptnContext: str
    project: str
    stage: str
    service: str
    time: str
    image: str | None
    evaluation: Evaluation | None
    result: str | None
    labels: dict[str, str] | None = None

    @property
    def scope(self) -> str:
        """``project/stage/service``."""
        return f"{self.project}/{self.stage}/{self.service}"

    def listed(self) -> dict[str, Any]:
        """The JSON form of ``--list --output json``."""
        return self.model_dump(
            include={"id", "keptnContext", "stage", "service", "time", "image", "evaluation", "result"}
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_approval(event: dict[str, Any]) -> OpenApproval:
    """What an ``approval.triggered`` event shows of itself; tolerant of missing fields."""
    data = _dict(event.get("data"))
    values = _dict(_dict(data.get("configurationChange")).get("values"))
    image = _text(values.get("image")) or _text(_dict(data.get("deployment")).get("image"))
    evaluation = _dict(data.get("evaluation"))
    score, result = _number(evaluation.get("score")), _text(evaluation.get("result"))
    labels = data.get("labels")
    return OpenApproval(
        id=str(event.get("id", "")),
        keptnContext=str(event.get("shkeptncontext", "")),
        project=str(data.get("project", "")),
        stage=str(data.get("stage", "")),
        service=str(data.get("service", "")),
        time=str(event.get("time", "")),
        image=image,
        evaluation=Evaluation(result=result, score=score) if evaluation else None,
        result=_text(data.get("result")),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) and labels else None,
    )


def _score(evaluation: Evaluation | None) -> str:
    if evaluation is None:
        return "-"
    score = "-" if evaluation.score is None else f"{evaluation.score:g}"
    return f"{score} ({evaluation.result})" if evaluation.result else score


def approvals_table(approvals: list[OpenApproval]) -> Table:
    """The open approvals as a numbered table."""
    table = Table(title="open approvals", title_justify="left")
    for column in ("#", "triggered id", "keptn context", "stage", "service", "time", "image"):
        table.add_column(column, overflow="fold")
    table.add_column("evaluation")
    table.add_column("result")
    for number, approval in enumerate(approvals, start=1):
        table.add_row(
            str(number),
            approval.id,
            approval.keptnContext,
            approval.stage,
            approval.service,
            approval.time,
            approval.image or "-",
            _score(approval.evaluation),
            approval.result or "-",
        )
    return table


def approval_finished_event(
    approval: OpenApproval, *, approved: bool, user: str, message: str
) -> dict[str, Any]:
    """The ``approval.finished`` that decides an approval, as Keptn's CLI sent it."""
    scope = {"project": approval.project, "stage": approval.stage, "service": approval.service}
    triggered = {
        "id": approval.id,
        "shkeptncontext": approval.keptnContext,
        "data": {**scope, "labels": approval.labels},
    }
    return human_decision_event(triggered, approved=approved, user=user, message=message, source=SOURCE)


def default_user() -> str:
    """Who decides: ``$USER``, else the login name."""
    user = os.environ.get("USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _where(project: str, stage: str | None, service: str | None) -> str:
    where = f"project {project}"
    if stage:
        where += f", stage {stage}"
    if service:
        where += f", service {service}"
    return where


def _list_approvals(
    api: CapstanAPI, project: str, stage: str | None, service: str | None, event_id: str | None = None
) -> list[OpenApproval]:
    events = api.open_triggered(
        APPROVAL_TRIGGERED, project=project, stage=stage, service=service, event_id=event_id
    )
    return [parse_approval(event) for event in events]


DECISIONS = {"a": True, "approve": True, "d": False, "decline": False}


def _ask(question: str, answers: dict[str, T], default: str | None = None) -> T:
    """Ask on stderr until one of ``answers`` (case-insensitive) is given."""
    while True:
        reply = str(typer.prompt(question, default=default, err=True)).strip().lower()
        if reply in answers:
            return answers[reply]
        err_console.print(f"please answer one of: {', '.join(answers)}", markup=False)


def _choose(approvals: list[OpenApproval], decline: bool, console: Console) -> tuple[OpenApproval, bool]:
    """Ask which approval to decide, and how."""
    console.print(approvals_table(approvals))
    chosen = approvals[0]
    if len(approvals) > 1:
        numbers = {str(number): approval for number, approval in enumerate(approvals, start=1)}
        chosen = _ask(f"which approval (1-{len(approvals)})", numbers)
    approved = _ask(
        f"{chosen.id} ({chosen.scope}): (a)pprove or (d)ecline",
        DECISIONS,
        default="decline" if decline else "approve",
    )
    return chosen, approved


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, highlight=False, width=WIDE)  # piped: keep ids whole
    return console


def _is_interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def approve(
    project: Annotated[str, typer.Option("--project", "-p", help="Project of the approval.")],
    stage: Annotated[str | None, typer.Option("--stage", "-s", help="Only approvals in this stage.")] = None,
    service: Annotated[str | None, typer.Option("--service", help="Only approvals of this service.")] = None,
    triggered_id: Annotated[
        str | None, typer.Option("--id", help="The approval.triggered event to decide (see --list).")
    ] = None,
    decline: Annotated[
        bool, typer.Option("--decline", help="Decline (result fail, ends the sequence) instead of approve.")
    ] = False,
    message: Annotated[str, typer.Option("--message", "-m", help="Why; stored with the decision.")] = "",
    user: Annotated[str | None, typer.Option("--user", help="Who decides (default $USER).")] = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Do not ask: without --id, decide the only open approval."),
    ] = False,
    list_only: Annotated[bool, typer.Option("--list", help="Only list the open approvals.")] = False,
    output: Annotated[OutputFormat, typer.Option("--output", "-o", help="text or json.")] = OutputFormat.TEXT,
    api_url: ApiUrlOption = None,
    token: TokenOption = None,
) -> None:
    """Approve or decline an open approval task (Keptn's `send event approval.finished`).

    Without --id, the open approvals are listed; on a terminal you pick one and decide.

    Without a terminal, --yes decides the only open approval.
    """
    as_json = output is OutputFormat.JSON
    console, prompt_console = _console(stderr=False), _console(stderr=True)
    with connect(api_url, token) as api:
        try:
            if list_only:
                approvals = _list_approvals(api, project, stage, service, triggered_id)
                if as_json:
                    typer.echo(json.dumps([approval.listed() for approval in approvals], indent=2))
                elif approvals:
                    console.print(approvals_table(approvals))
                else:
                    console.print(f"no open approval in {_where(project, stage, service)}", markup=False)
                return

            approved = not decline
            if triggered_id is not None:
                found = _list_approvals(api, project, stage, service, triggered_id)
                if not found:
                    fail(f"no open approval {triggered_id} in {_where(project, stage, service)}")
                chosen = found[0]
            else:
                approvals = _list_approvals(api, project, stage, service)
                if not approvals:
                    fail(f"no open approval in {_where(project, stage, service)}")
                if yes and len(approvals) == 1:
                    chosen = approvals[0]
                elif not yes and _is_interactive():
                    chosen, approved = _choose(approvals, decline, prompt_console if as_json else console)
                else:
                    (prompt_console if as_json else console).print(approvals_table(approvals))
                    if len(approvals) > 1:
                        where = _where(project, stage, service)
                        fail(f"several open approvals ({len(approvals)}) in {where}: pass --id")
                    fail("one open approval: pass --yes (or --id) to decide it")

            event = approval_finished_event(
                chosen, approved=approved, user=user or default_user(), message=message
            )
            context = api.send_event(event) or chosen.keptnContext
        except APIError as exc:
            fail(str(exc))

    result = "pass" if approved else "fail"
    if as_json:
        typer.echo(json.dumps({"triggeredid": chosen.id, "result": result, "keptnContext": context}))
    else:
        verb = "approved" if approved else "declined"
        typer.echo(f"{verb} {chosen.id} ({chosen.scope})")


def register(app: typer.Typer) -> None:
    """Add ``approve`` to the ``capstan`` app."""
    app.command()(approve)
