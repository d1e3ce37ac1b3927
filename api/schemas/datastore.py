"""Bodies of Keptn's mongodb-datastore (``/api/mongodb-datastore``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class EventsPage(BaseModel):
    """A page of events, newest first (Keptn's ``GetEventsOKBody``)."""

    events: list[dict[str, Any]] = Field(description="the CloudEvents as stored, newest first")
    nextPageKey: str | None = Field(
        default=None,
        description="pass as nextPageKey to get the next page; absent on the last page",
        exclude_if=lambda value: value is None,
    )
    pageSize: int = Field(description="the requested page size")
    totalCount: int = Field(description="how many events match in all")


class EventsByType(BaseModel):
    """Events of one type, newest first (Keptn's ``GetEventsByTypeOKBody``)."""

    events: list[dict[str, Any]] = Field(description="the CloudEvents as stored, newest first")
