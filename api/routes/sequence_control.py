"""Keptn's sequence control: ``POST /api/controlPlane/v1/sequence/{project}/{keptnContext}/control``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, scoped
from api.deps import ServicesDep
from api.routing import control_sequence
from api.schemas.common import ErrorBody
from capstan.scopes import Scope
from keptn.errors import NotFoundError
from store import projects as project_store
from workflows.context_models import ControlRequest

router = APIRouter(prefix="/controlPlane/v1", tags=["sequence"])


class SequenceControl(BaseModel):
    """Keptn's control body."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["pause", "resume", "abort"] = Field(description="what to do with the sequence")
    stage: str | None = Field(default=None, description="only this stage; all stages of the context if empty")


@router.post(
    "/sequence/{project}/{keptnContext}/control",
    responses={
        400: {"model": ErrorBody, "description": "invalid body"},
        404: {"model": ErrorBody, "description": "unknown project, or no running sequence in that context"},
        503: {"model": ErrorBody, "description": "Temporal is unavailable"},
    },
)
async def control(
    project: str,
    keptnContext: str,
    body: SequenceControl,
    services: ServicesDep,
    principal: Annotated[Principal, scoped(Scope.EVENTS_WRITE)],
) -> dict[str, str]:
    """Pause, resume or abort the running sequences of a Keptn context (all stages, or one).

    Pause holds each sequence's next task (a running task finishes); resume continues; abort ends
    the sequences with status ``aborted`` and result ``pass``, frees their queue slots and triggers
    no follow-up sequence. Needs ``events:write``.
    """
    principal.check_project(project)
    if await project_store.get_project(services.pool, project) is None:
        raise NotFoundError(f"project '{project}' not found", field="project")
    await control_sequence(
        services.temporal, project, keptnContext, ControlRequest(state=body.state, stage=body.stage or None)
    )
    return {}
