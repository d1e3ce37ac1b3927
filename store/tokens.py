"""Scoped API tokens: their format, and their rows in ``api_tokens`` (hashed, never in clear).

A token is ``cap_<id>_<secret>``: 16 hex digits of id, 64 hex digits (256 random bits) of secret.
The id is not secret; it finds the row in one index lookup and names the token in listings, logs
and ``DELETE /api/v1/tokens/{id}``. Only ``sha256(secret)`` is stored: the secret is random and
long, so a plain hash (no salt, no slow KDF) is as strong as the secret itself, and checking it
costs microseconds on every request. The full token is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from keptn.errors import NotFoundError

TOKEN_PREFIX = "cap_"
"""What every stored token starts with (tells it apart from the admin token, and from a password)."""

ID_BYTES = 8
SECRET_BYTES = 32
_TOKEN = re.compile(rf"cap_([0-9a-f]{{{2 * ID_BYTES}}})_([0-9a-f]{{{2 * SECRET_BYTES}}})")

_COLUMNS = "id, name, scopes, project, created_at, revoked_at"


@dataclass(frozen=True)
class TokenParts:
    """The two halves of a token."""

    id: str
    secret: str

    def __str__(self) -> str:
        return f"{TOKEN_PREFIX}{self.id}_{self.secret}"


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a token: everything but its secret and hash."""

    id: str
    name: str
    scopes: tuple[str, ...]
    project: str | None
    """The one project the token may touch; None: every project."""
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class StoredToken:
    """A token's row, with the hash the presented secret is compared to."""

    info: TokenInfo
    secret_hash: bytes


@dataclass(frozen=True)
class CreatedToken:
    """A new token: its info and the token itself, which exists nowhere else."""

    info: TokenInfo
    token: str


def new_token_parts() -> TokenParts:
    """A fresh random id and secret."""
    return TokenParts(id=secrets.token_hex(ID_BYTES), secret=secrets.token_hex(SECRET_BYTES))


def parse_token(text: str) -> TokenParts | None:
    """Split a presented token into id and secret; None if it does not have the stored-token form."""
    found = _TOKEN.fullmatch(text)
    return TokenParts(id=found.group(1), secret=found.group(2)) if found else None


def hash_secret(secret: str) -> bytes:
    """The digest kept in place of a secret."""
    return hashlib.sha256(secret.encode()).digest()


def _info(row: asyncpg.Record) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        name=row["name"],
        scopes=tuple(row["scopes"]),
        project=row["project"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def create_token(
    pool: asyncpg.Pool, *, name: str, scopes: Sequence[str], project: str | None
) -> CreatedToken:
    """Store a new token (its hash) and return it with the only copy of its secret.

    Args:
        pool: the event store's pool.
        name: a label for people (not unique).
        scopes: validated scope names.
        project: the one project the token may touch, or None for all.
    """
    while True:  # a 64-bit id collides practically never; if it does, draw again
        parts = new_token_parts()
        row = await pool.fetchrow(
            f"INSERT INTO api_tokens (id, name, secret_hash, scopes, project) VALUES ($1, $2, $3, $4, $5)"
            f" ON CONFLICT (id) DO NOTHING RETURNING {_COLUMNS}",
            parts.id,
            name,
            hash_secret(parts.secret),
            list(scopes),
            project,
        )
        if row is not None:
            return CreatedToken(info=_info(row), token=str(parts))


async def find_token(pool: asyncpg.Pool, token_id: str) -> StoredToken | None:
    """The token with this id, revoked or not; None if there is none."""
    row = await pool.fetchrow(f"SELECT {_COLUMNS}, secret_hash FROM api_tokens WHERE id = $1", token_id)
    return None if row is None else StoredToken(info=_info(row), secret_hash=bytes(row["secret_hash"]))


async def list_tokens(pool: asyncpg.Pool) -> list[TokenInfo]:
    """Every token, revoked ones included, oldest first."""
    return [_info(row) for row in await pool.fetch(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY seq")]


async def revoke_token(pool: asyncpg.Pool, token_id: str) -> TokenInfo:
    """Revoke a token at once; revoking a revoked token changes nothing.

    Raises:
        NotFoundError: no token has this id.
    """
    row = await pool.fetchrow(
        f"UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING {_COLUMNS}",
        token_id,
    )
    if row is None:
        raise NotFoundError(f"API token '{token_id}' not found", field="id")
    return _info(row)
