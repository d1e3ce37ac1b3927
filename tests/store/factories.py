"""Builders of store inputs for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from store.projects import ShipyardUpdate

BASE_TIME = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.3
kind: Shipyard
metadata:
  name: shipyard-sockshop
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - name: deployment
    - name: staging
      sequences:
        - name: delivery
          triggeredOn:
            - event: dev.delivery.finished
          tasks:
            - name: deployment
"""


def shipyard(stages: tuple[str, ...] = ("dev", "staging"), text: str = SHIPYARD) -> ShipyardUpdate:
    return ShipyardUpdate(text=text, version="spec.keptn.sh/0.2.3", stages=stages)


def keptn_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def wire(
    type: str = "sh.keptn.event.dev.delivery.triggered",
    *,
    id: str | None = None,
    seconds: float = 0,
    context: str | None = "ctx-1",
    project: str | None = "sockshop",
    stage: str | None = "dev",
    service: str | None = "carts",
    triggeredid: str | None = None,
    source: str = "test",
    **data: Any,
) -> dict[str, Any]:
    """A Keptn wire event as KeptnEvent.to_wire() produces it."""
    payload: dict[str, Any] = {
        k: v for k, v in (("project", project), ("stage", stage), ("service", service)) if v is not None
    }
    payload.update(data)
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": id or str(uuid.uuid4()),
        "source": source,
        "type": type,
        "time": keptn_time(BASE_TIME + timedelta(seconds=seconds)),
        "datacontenttype": "application/json",
        "shkeptnspecversion": "0.2.4",
        "data": payload,
    }
    if context is not None:
        event["shkeptncontext"] = context
    if triggeredid is not None:
        event["triggeredid"] = triggeredid
    return event
