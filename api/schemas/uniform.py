"""Bodies of Keptn's uniform, open-event and log routes (``/api/controlPlane/v1``).

Field names and shapes are go-utils' ``models.Integration``, ``EventSubscription``,
``EventSubscriptionFilter``, ``LogEntry`` and shipyard-controller's ``Events``. Inputs ignore
unknown fields, as Go's JSON decoder did; ``url`` on a subscription is Capstan's extension and is
left out of responses when unset, so Keptn clients see exactly Keptn's shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator


def go_time(moment: datetime) -> str:
    """Format a time as Go's ``time.Time`` JSON: RFC 3339, UTC, fraction without trailing zeros."""
    utc = moment.astimezone(UTC)
    fraction = f"{utc.microsecond:06d}".rstrip("0")
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


class SubscriptionFilterBody(BaseModel):
    """``EventSubscriptionFilter``: empty or absent lists mean all."""

    model_config = ConfigDict(extra="ignore")

    projects: list[StrictStr] | None = Field(default=None, description="data.project must be one of these")
    stages: list[StrictStr] | None = Field(default=None, description="data.stage must be one of these")
    services: list[StrictStr] | None = Field(
        default=None, description="data.service must be one of these; needs at least one stage"
    )


class SubscriptionBody(BaseModel):
    """``EventSubscription`` as a client sends it (an ``id`` in the body is ignored)."""

    model_config = ConfigDict(extra="ignore")

    event: StrictStr = Field(
        default="",
        description="event type pattern (NATS style): '*' matches one dot-separated token, a final"
        " '>' the rest, e.g. sh.keptn.event.deployment.triggered or sh.keptn.>",
    )
    filter: SubscriptionFilterBody | None = Field(default=None, description="projects, stages, services")
    url: StrictStr | None = Field(
        default=None,
        description="Capstan extension: an http(s) URL every matching event is POSTed to as a structured"
        " CloudEvent (application/cloudevents+json); without it the integration polls"
        " GET /controlPlane/v1/event/triggered/{eventType}",
    )


class KubernetesMetadata(BaseModel):
    """``KubernetesMetaData``."""

    model_config = ConfigDict(extra="ignore")

    namespace: StrictStr = ""
    podname: StrictStr = ""
    deploymentname: StrictStr = ""


class IntegrationMetadata(BaseModel):
    """``MetaData`` of an integration."""

    model_config = ConfigDict(extra="ignore")

    hostname: StrictStr = Field(default="", description="node name; part of the integration id")
    integrationversion: StrictStr = ""
    distributorversion: StrictStr = ""
    location: StrictStr = Field(default="", description="e.g. control-plane or remote-execution-plane")
    kubernetesmetadata: KubernetesMetadata = Field(default_factory=KubernetesMetadata)

    @field_validator("kubernetesmetadata", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        # Go decodes null into the zero struct; accept what Keptn accepted.
        return {} if value is None else value


class RegistrationBody(BaseModel):
    """``POST /uniform/registration``: an ``Integration`` (``id`` and ``metadata.lastseen`` are ignored)."""

    model_config = ConfigDict(extra="ignore")

    name: StrictStr = Field(description="the integration name, e.g. helm-service")
    metadata: IntegrationMetadata = Field(default_factory=IntegrationMetadata)
    subscriptions: list[SubscriptionBody] | None = Field(
        default=None, description="initial subscriptions; an existing integration keeps its own"
    )

    @field_validator("metadata", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class SubscriptionFilterOut(BaseModel):
    """``EventSubscriptionFilter`` in responses (always three lists)."""

    projects: list[str]
    stages: list[str]
    services: list[str]


class SubscriptionOut(BaseModel):
    """``EventSubscription`` in responses."""

    id: str
    event: str
    filter: SubscriptionFilterOut
    url: str | None = Field(
        default=None,
        description="Capstan extension; absent when unset",
        exclude_if=lambda value: value is None,
    )


class MetadataOut(IntegrationMetadata):
    """``MetaData`` in responses, with ``lastseen``."""

    lastseen: str = Field(description="last registration or heartbeat, RFC 3339 UTC")


class IntegrationOut(BaseModel):
    """``Integration`` in responses."""

    id: str = Field(description="sha1 of name-namespace-hostname, as in Keptn")
    name: str
    metadata: MetadataOut
    subscriptions: list[SubscriptionOut]


class IdBody(BaseModel):
    """``RegisterResponse`` / ``CreateSubscriptionResponse``."""

    id: str


class EmptyBody(BaseModel):
    """Keptn's empty success body (``{}``)."""


class OpenEventsPage(BaseModel):
    """Open ``.triggered`` events, newest first (shipyard-controller's ``Events``)."""

    events: list[dict[str, Any]] = Field(description="the CloudEvents as emitted")
    nextPageKey: str = Field(description='pass as nextPageKey for the next page; "0" on the last page')
    pageSize: int = Field(description="the requested page size")
    totalCount: int = Field(description="how many open events match in all")


class LogEntryBody(BaseModel):
    """``LogEntry`` as an integration sends it."""

    model_config = ConfigDict(extra="ignore")

    integrationid: StrictStr = Field(description="the integration's id")
    message: StrictStr = ""
    time: StrictStr | None = Field(default=None, description="RFC 3339; absent means now")
    shkeptncontext: StrictStr = ""
    task: StrictStr = ""
    triggeredid: StrictStr = ""
    gitcommitid: StrictStr = ""


class CreateLogsBody(BaseModel):
    """``POST /log``."""

    model_config = ConfigDict(extra="ignore")

    logs: list[LogEntryBody]


class LogEntryOut(BaseModel):
    """``LogEntry`` in responses."""

    integrationid: str
    message: str
    time: str
    shkeptncontext: str
    task: str
    triggeredid: str
    gitcommitid: str


def _zero(value: int) -> bool:
    return value == 0


class LogsPage(BaseModel):
    """``GetLogsResponse``: the numbers are left out when 0, as Keptn's ``omitempty`` did."""

    nextPageKey: int = Field(
        default=0, description="offset of the next page; absent on the last", exclude_if=_zero
    )
    pageSize: int = Field(default=0, description="entries in this page; absent when none", exclude_if=_zero)
    totalCount: int = Field(
        default=0, description="matching entries in all; absent when none", exclude_if=_zero
    )
    logs: list[LogEntryOut]
