"""A monitoring tool's "problem resolved" ends the remediation loop of its service.

Keptn 1.x left this to the monitoring integration (usually by aborting the sequence). Capstan
also honours the legacy problem event monitoring tools still send: ``sh.keptn.events.problem``
with ``data.State`` ``RESOLVED`` or ``CLOSED`` aborts the service's open ``remediation``
sequences (in ``data.stage`` if given), as an operator's abort would.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from temporalio.client import Client

from api.routing import control_sequence
from keptn.errors import NotFoundError
from keptn.event_types import PROBLEM_EVENT_TYPE
from keptn.events import KeptnEvent
from store.problems import open_remediations
from workflows.context_models import ControlRequest

log = structlog.get_logger(__name__)

RESOLVED_STATES = frozenset({"RESOLVED", "CLOSED"})


def resolved_problem(event: KeptnEvent) -> dict[str, Any] | None:
    """The data of a legacy problem event saying the problem is over; None for anything else."""
    if event.type != PROBLEM_EVENT_TYPE:
        return None
    data = event.data
    state = data.get("State", data.get("state"))
    if not isinstance(state, str) or state.upper() not in RESOLVED_STATES:
        return None
    if not isinstance(data.get("project"), str) or not isinstance(data.get("service"), str):
        return None
    return data


async def end_remediations(pool: asyncpg.Pool, client: Client, event: KeptnEvent) -> list[str]:
    """Abort the open remediation sequences a resolved problem event concerns.

    Returns:
        The Keptn contexts that were told to abort.
    """
    data = resolved_problem(event)
    if data is None:
        return []
    stage = data.get("stage") if isinstance(data.get("stage"), str) and data.get("stage") else None
    contexts = await open_remediations(pool, project=data["project"], service=data["service"], stage=stage)
    aborted = []
    for context in contexts:
        try:
            await control_sequence(
                client, data["project"], context, ControlRequest(state="abort", stage=stage)
            )
        except NotFoundError:
            continue  # it ended meanwhile
        aborted.append(context)
    if aborted:
        log.info("problem resolved: remediation aborted", event_id=event.id, keptn_contexts=aborted)
    return aborted
