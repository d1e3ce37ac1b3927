"""Drawing and polling for ``capstan trigger ... --watch``.

On a terminal the context is a live rich tree (context → stage sequences → tasks) redrawn on every
poll; elsewhere (CI logs) each change is one line, so a log stays readable. The model is
:mod:`capstan.commands.watch`; this module polls the API for it about twice a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text
from rich.tree import Tree

from capstan.commands.api_client import APIError, CapstanAPI
from capstan.commands.watch import FINAL_STATES, SLI, StageNode, TaskNode, WatchModel, build_model, duration
from keptn.shipyard import Shipyard

POLL_SECONDS = 0.5
FOLLOW_UP_GRACE_SECONDS = 15.0
"""How long a follow-up the shipyard asks for may take to appear after the context looked final
(an abort that came meanwhile drops it; the view cannot tell)."""
ERROR_GRACE_SECONDS = 10.0
"""How long polling survives failing requests (a restarting gateway) before the watch gives up."""

_STYLES = {"pass": "green", "warning": "yellow", "fail": "red", "errored": "red", "aborted": "red"}


class WatchTimeout(Exception):
    """``--watch-time`` ran out; ``model`` is what was seen so far."""

    def __init__(self, model: WatchModel) -> None:
        super().__init__(model.keptn_context)
        self.model = model


def format_duration(seconds: float | None) -> str:
    """``0.4s``, ``12.3s``, ``2m03s``, ``1h02m``; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _outcome(node: StageNode | TaskNode) -> str:
    parts = [node.state]
    if node.result:
        parts.append(node.result)
    if node.status and node.status not in ("succeeded", ""):
        parts.append(node.status)
    return " ".join(parts)


def _label(title: str, node: StageNode | TaskNode, now: datetime) -> Text:
    text = Text(f"{title}  ")
    style = _STYLES.get(node.status or "", "") if node.status in ("errored", "aborted") else ""
    text.append(_outcome(node), style=style or _STYLES.get(node.result or "", "cyan"))
    took = format_duration(duration(node.triggered_at, node.end, now))
    if took:
        text.append(f"  {took}", style="dim")
    return text


def render_tree(model: WatchModel, now: datetime) -> Tree:
    """The context as a tree: context → stage sequences → tasks, with state, result and duration."""
    head = Text(f"{model.keptn_context}  ", style="bold")
    head.append(f"{model.project}/{model.service or '?'}  {model.state}", style="bold")
    if model.result:
        head.append(f"  {model.result}", style=_STYLES.get(model.result, ""))
    tree = Tree(head)
    for stage in model.stages:
        branch = tree.add(_label(f"{stage.stage} {stage.sequence}", stage, now))
        for task in stage.tasks:
            branch.add(_label(f"{task.name} ({task.source})" if task.nested else task.name, task, now))
    for pending in model.pending:
        tree.add(Text(f"{pending}  pending (triggeredOn)", style="dim"))
    return tree


def progress_lines(model: WatchModel, now: datetime) -> list[tuple[str, str, str]]:
    """``(key, what changed, line)`` per node, for one log line per change off a terminal.

    In reading order: a stage's tasks before its ``finished`` line, the context's state last.
    """
    lines = []
    for number, stage in enumerate(model.stages):
        where = f"{stage.stage} {stage.sequence}"
        took = format_duration(duration(stage.triggered_at, stage.end, now)) if stage.finished else ""
        head = (f"s{number}", _outcome(stage), f"{where}: {_outcome(stage)} {took}".rstrip())
        if not stage.finished:
            lines.append(head)
        for task in stage.tasks:
            ended = task.state == "finished"
            took = format_duration(duration(task.triggered_at, task.end, now)) if ended else ""
            line = f"{where} / {task.name}: {_outcome(task)} {took}".rstrip()
            lines.append((task.triggered_id, _outcome(task), line))
        if stage.finished:
            lines.append(head)
    lines.append(("context", model.state, f"keptnContext {model.keptn_context}: {model.state}"))
    return lines


def _sli(sli: SLI) -> str:
    value = "-" if sli.value is None else f"{sli.value:g}"
    violated = f" (violated: {', '.join(sli.violated)})" if sli.violated else ""
    return f"    {sli.status}: {sli.name} = {value}{violated}"


def summary_lines(model: WatchModel) -> list[str]:
    """The end of a watch: each evaluation's score and result, its failing SLIs, the outcome."""
    lines = []
    for evaluation in model.evaluations:
        score = "-" if evaluation.score is None else f"{evaluation.score:g}"
        lines.append(f"evaluation in {evaluation.stage}: score {score}, result {evaluation.result or '-'}")
        lines += [_sli(sli) for sli in evaluation.slis]
        if not evaluation.slis and evaluation.result not in (None, "pass") and evaluation.message:
            lines.append(f"    {evaluation.message}")
    outcome = f"result {model.result}" if model.result else "no result"
    lines.append(
        f"sequence {model.name or '?'} {model.state}: {outcome} (keptnContext {model.keptn_context})"
    )
    return lines


def fetch_model(api: CapstanAPI, project: str, context: str, shipyard: Shipyard | None) -> WatchModel:
    """Read the context's events and its sequence state once and build the model."""
    events = list(
        api.pages(
            "/mongodb-datastore/event",
            "events",
            params={"keptnContext": context, "project": project, "pageSize": 100},
        )
    )
    events.reverse()  # the datastore answers newest first
    answer = api.get(f"/controlPlane/v1/sequence/{project}", params={"keptnContext": context})
    states = answer.get("states") if isinstance(answer, dict) else None
    view: dict[str, Any] | None = states[0] if isinstance(states, list) and states else None
    return build_model(context, project, events, view, shipyard)


def watch_context(
    api: CapstanAPI,
    project: str,
    context: str,
    shipyard: Shipyard | None,
    *,
    watch_time: float,
    console: Console | None,
    clock: Callable[[], float] = time.monotonic,
) -> WatchModel:
    """Poll a context until its sequences ended and show it on ``console`` (None: show nothing).

    Raises:
        WatchTimeout: ``watch_time`` (> 0) seconds passed first.
        APIError: the API kept failing for :data:`ERROR_GRACE_SECONDS`.
    """
    began = clock()
    live = Live(console=console, auto_refresh=False) if console is not None and console.is_terminal else None
    printed: dict[str, str] = {}
    looked_final: float | None = None
    failing_since: float | None = None
    model: WatchModel | None = None
    if live is not None:
        live.start()
    try:
        while True:
            try:
                model = fetch_model(api, project, context, shipyard)
                failing_since = None
            except APIError:
                failing_since = failing_since or clock()
                if model is None or clock() - failing_since > ERROR_GRACE_SECONDS:
                    raise
            if model is not None:
                now = datetime.now(UTC)
                if live is not None:
                    live.update(render_tree(model, now), refresh=True)
                elif console is not None:
                    for key, change, line in progress_lines(model, now):
                        if printed.get(key) != change:
                            printed[key] = change
                            console.print(line, markup=False, highlight=False)
                if model.ended:
                    return model
                if model.pending and model.state in FINAL_STATES and all(s.finished for s in model.stages):
                    looked_final = looked_final or clock()
                    if clock() - looked_final > FOLLOW_UP_GRACE_SECONDS:
                        model.pending = []  # never came: the context ended without it
                        return model
                else:
                    looked_final = None
            if watch_time > 0 and clock() - began >= watch_time:
                raise WatchTimeout(model or build_model(context, project, [], None, None))
            time.sleep(POLL_SECONDS)
    finally:
        if live is not None:
            live.stop()
