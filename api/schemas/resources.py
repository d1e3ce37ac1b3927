"""Bodies of Keptn's resource-service (``/api/resource-service/v1``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ResourceIn(BaseModel):
    """A resource to write."""

    model_config = ConfigDict(extra="ignore")

    resourceURI: str = Field(description="path of the resource, e.g. slo.yaml or webhook/webhook.yaml")
    resourceContent: str = Field(default="", description="the content, base64 encoded")


class ResourcesIn(BaseModel):
    """``POST``/``PUT .../resource``: resources written in one commit."""

    model_config = ConfigDict(extra="ignore")

    resources: list[ResourceIn]


class ResourceContentIn(BaseModel):
    """``PUT .../resource/{resourceURI}``."""

    model_config = ConfigDict(extra="ignore")

    resourceContent: str = Field(description="the content, base64 encoded")


class Version(BaseModel):
    """Which version of the resources an answer describes (Keptn's ``Version``)."""

    version: str = Field(description="the commit id (what Keptn events carry as gitcommitid)")
    upstreamURL: str | None = Field(default=None, description="never set: there is no git upstream")
    branch: str | None = Field(default=None, description="never set")


class ResourceOut(BaseModel):
    """A resource; lists leave the content out."""

    resourceURI: str
    resourceContent: str | None = Field(default=None, description="the content, base64 encoded")
    metadata: Version


class ResourcesPage(BaseModel):
    """A page of the resources of one level, ordered by URI."""

    resources: list[ResourceOut]
    nextPageKey: str = Field(description='key of the next page; "0" on the last page')
    pageSize: int
    totalCount: int


class WriteResponse(BaseModel):
    """The commit a write created."""

    commitID: str = Field(description="the new commit id")
    metadata: Version
