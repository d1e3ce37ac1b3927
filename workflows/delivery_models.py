"""Names and input of the delivery workflow, importable without the workflow's code."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

DELIVERY_WORKFLOW = "DeliverEvent"


def delivery_workflow_id(event_id: str) -> str:
    """One delivery workflow per event id: starting it twice is a no-op."""
    return f"capstan-deliver-{event_id}"


class DeliveryInput(BaseModel):
    """Input of the delivery workflow."""

    event: dict[str, Any]
    """The stored wire event."""
