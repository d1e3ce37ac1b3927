"""Bodies of Keptn's shipyard-controller project, stage and service routes (``/api/controlPlane/v1``).

Field names are Keptn's (go-utils ``apimodels``). Fields Keptn left out when empty are left out
here too; the routes serialise with ``exclude_none``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CreateProjectRequest(BaseModel):
    """``POST /project``."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="the project name (Keptn's entity name rule, at most 200 characters)")
    shipyard: str = Field(description="the shipyard.yaml, base64 encoded")
    gitCredentials: dict[str, Any] | None = Field(
        default=None,
        description="not supported: Capstan keeps resources in its own versioned store, without a "
        "git upstream; a non-empty value is rejected with 400",
    )


class UpdateProjectRequest(BaseModel):
    """``PUT /project``: a new shipyard for an existing project (its stages must stay the same)."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="the project name")
    shipyard: str | None = Field(default=None, description="the new shipyard.yaml, base64 encoded")
    gitCredentials: dict[str, Any] | None = Field(
        default=None, description="not supported (see POST /project); a non-empty value is rejected"
    )


class CreateServiceRequest(BaseModel):
    """``POST /project/{project}/service``."""

    model_config = ConfigDict(extra="ignore")

    serviceName: str = Field(description="the service name (Keptn's entity name rule, at most 43 characters)")


class EmptyBody(BaseModel):
    """Keptn's empty success body (``{}``)."""


class MessageBody(BaseModel):
    """A success body with a message (Keptn's ``DeleteProjectResponse``/``DeleteServiceResponse``)."""

    message: str


class EventContextInfo(BaseModel):
    """Where and when the newest event of a type happened (Keptn's ``EventContextInfo``)."""

    eventId: str
    keptnContext: str | None = None
    time: str = Field(description="nanoseconds since the Unix epoch, as a decimal string (Keptn's format)")


class ExpandedService(BaseModel):
    """A service in one stage."""

    serviceName: str
    creationDate: str = Field(description="nanoseconds since the Unix epoch, as a decimal string")
    deployedImage: str | None = Field(
        default=None, description="the image of the newest finished deployment; absent before the first"
    )
    lastEventTypes: dict[str, EventContextInfo] | None = Field(
        default=None, description="per task event type, the newest event of this service in this stage"
    )
    openRemediations: list[dict[str, Any]] = Field(
        default_factory=list, description="always empty in this version of Capstan"
    )


class ExpandedStage(BaseModel):
    """A stage with its services."""

    stageName: str
    services: list[ExpandedService]


class ExpandedProject(BaseModel):
    """A project with its stages (in shipyard order) and their services."""

    projectName: str
    creationDate: str = Field(description="nanoseconds since the Unix epoch, as a decimal string")
    shipyard: str = Field(description="the shipyard.yaml text (not base64)")
    shipyardVersion: str = Field(description="the shipyard's apiVersion")
    stages: list[ExpandedStage]
    isUpstreamAutoProvisioned: bool = Field(
        default=False, description="always false: there is no git upstream"
    )


class ExpandedProjects(BaseModel):
    """A page of projects, ordered by name."""

    projects: list[ExpandedProject]
    nextPageKey: str = Field(description='key of the next page; "0" on the last page (Keptn\'s convention)')
    pageSize: int
    totalCount: int


class ExpandedStages(BaseModel):
    """A page of stages, ordered by name (as Keptn orders this list)."""

    stages: list[ExpandedStage]
    nextPageKey: str = Field(description='key of the next page; "0" on the last page')
    pageSize: int
    totalCount: int


class ExpandedServices(BaseModel):
    """A page of services of one stage, ordered by name."""

    services: list[ExpandedService]
    nextPageKey: str = Field(description='key of the next page; "0" on the last page')
    pageSize: int
    totalCount: int
