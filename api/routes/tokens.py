"""Capstan's API tokens: ``POST|GET /api/v1/tokens`` and ``DELETE /api/v1/tokens/{tokenID}``.

Not part of Keptn, whose single shared token could do everything. Managing tokens needs the
``admin`` scope on a token restricted to no project (otherwise a restricted token could mint an
unrestricted one). The token itself is in the answer to its creation only; listings never carry
it, nor its hash. Revoking is immediate: the next request with the token is a 401.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, scoped
from api.deps import PoolDep
from api.schemas.common import error_responses
from capstan.scopes import Scope
from keptn.errors import InvalidInputError
from keptn.events import format_keptn_time
from keptn.names import validate_project_name
from store import tokens as token_store

router = APIRouter(prefix="/v1", tags=["tokens"])

Admin = Annotated[Principal, scoped(Scope.ADMIN, all_projects=True)]

NAME_MAX_LENGTH = 200


class CreateTokenRequest(BaseModel):
    """What a new token may do."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=NAME_MAX_LENGTH, description="a label for people, e.g. 'ci-sockshop'"
    )
    scopes: list[Scope] = Field(min_length=1, description="what the token may do; 'admin' is everything")
    project: str | None = Field(
        default=None, description="restrict the token to this one project; all projects when absent"
    )


class TokenOut(BaseModel):
    """A token as listed: never the token itself."""

    id: str = Field(description="the token's id, the part after 'cap_'; used to revoke it")
    name: str
    scopes: list[str]
    project: str | None = Field(description="the one project the token may touch; null: all")
    createdAt: str
    revokedAt: str | None = Field(description="when the token was revoked; null while it is valid")


class CreatedTokenOut(BaseModel):
    """A new token, with the token itself: shown this once and stored nowhere in clear."""

    id: str
    token: str = Field(description="send it as x-token; it cannot be shown again")
    name: str
    scopes: list[str]
    project: str | None
    createdAt: str


class TokenList(BaseModel):
    """Every token, revoked ones included, oldest first."""

    tokens: list[TokenOut]


def _out(info: token_store.TokenInfo) -> TokenOut:
    return TokenOut(
        id=info.id,
        name=info.name,
        scopes=list(info.scopes),
        project=info.project,
        createdAt=format_keptn_time(info.created_at),
        revokedAt=format_keptn_time(info.revoked_at) if info.revoked_at else None,
    )


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedTokenOut,
    responses=error_responses(400, 401, 403, 503),
)
async def create_token(pool: PoolDep, _: Admin, body: CreateTokenRequest) -> CreatedTokenOut:
    """Create an API token with scopes and, optionally, one project; the answer shows it once."""
    name = body.name.strip()
    if not name:
        raise InvalidInputError("name must not be blank", field="name")
    project = body.project or None
    if project is not None:
        validate_project_name(project, field="project")
    scopes = [scope.value for scope in Scope if scope in body.scopes]  # deduplicated, in a fixed order
    created = await token_store.create_token(pool, name=name, scopes=scopes, project=project)
    info = created.info
    return CreatedTokenOut(
        id=info.id,
        token=created.token,
        name=info.name,
        scopes=list(info.scopes),
        project=info.project,
        createdAt=format_keptn_time(info.created_at),
    )


@router.get("/tokens", response_model=TokenList, responses=error_responses(401, 403, 503))
async def list_tokens(pool: PoolDep, _: Admin) -> TokenList:
    """Every API token (not the admin token from the settings), without the tokens themselves."""
    return TokenList(tokens=[_out(info) for info in await token_store.list_tokens(pool)])


@router.delete("/tokens/{tokenID}", response_model=TokenOut, responses=error_responses(401, 403, 404, 503))
async def revoke_token(pool: PoolDep, _: Admin, tokenID: str) -> TokenOut:
    """Revoke a token at once (revoking it again changes nothing); it stays listed as revoked."""
    return _out(await token_store.revoke_token(pool, tokenID))
