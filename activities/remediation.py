"""The remediation service's read: the action a ``get-action`` task asks for (§6.3)."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import BaseModel
from temporalio import activity

from keptn.errors import InvalidInputError, NotFoundError
from keptn.evaluation_payload import scope_data
from keptn.remediation import (
    choose_action,
    get_action_finished_data,
    get_action_index,
    parse_remediation,
    remediation_missing_message,
)
from store.resources import ResourceScope, get_resource

CHOOSE_ACTION_ACTIVITY = "choose_action"
REMEDIATION_FILE = "remediation.yaml"


class ChooseActionInput(BaseModel):
    """Input of ``choose_action``."""

    event: dict[str, Any]
    """The stored ``get-action.triggered`` wire event."""


class ChooseActionResult(BaseModel):
    """``data`` of the ``get-action.finished`` to emit."""

    data: dict[str, Any]


class RemediationActivities:
    """Reads ``remediation.yaml`` and picks the action.

    Args:
        pool: the resource store.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name=CHOOSE_ACTION_ACTIVITY)
    async def choose_action(self, input: ChooseActionInput) -> ChooseActionResult:
        """The next action of the remediation loop, from ``remediation.yaml`` at the event's version.

        A missing or invalid file, or a bad ``actionIndex``, ends the task errored/fail with the
        reason, as Keptn's remediation-service did.
        """
        data: dict[str, Any] = input.event.get("data") or {}
        scope = ResourceScope(
            project=str(data.get("project", "")),
            stage=str(data.get("stage", "")),
            service=str(data.get("service", "")),
        )
        try:
            resource = await get_resource(
                self._pool, scope, REMEDIATION_FILE, commit_id=input.event.get("gitcommitid")
            )
        except NotFoundError:
            return ChooseActionResult(data=_errored(data, remediation_missing_message(data)))
        try:
            index = get_action_index(data)
            remediation = parse_remediation(resource.content)
        except InvalidInputError as err:
            return ChooseActionResult(data=_errored(data, err.message))
        # choose_action never raises: a problem Keptn could not decode is an errored outcome too.
        outcome = choose_action(remediation, data.get("problem"), index)
        return ChooseActionResult(data=get_action_finished_data(data, outcome))


def _errored(data: dict[str, Any], message: str) -> dict[str, Any]:
    return {**scope_data(data), "result": "fail", "status": "errored", "message": message}
