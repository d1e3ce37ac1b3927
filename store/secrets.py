"""Secrets, identified by scope and name: keys in clear, values encrypted.

A secret's values are stored as one encrypted token of their JSON map (``ciphertext``); its keys,
sorted, are stored in clear so that secrets can be listed without the key and without decrypting
anything. Only :func:`read_secret_values` decrypts, for webhooks and SLI providers; the API never
reads a value back.

The store does not know the cipher: anything with ``encrypt``/``decrypt`` of bytes will do
(Capstan's is :class:`capstan.secret_box.SecretBox`), so that the store depends on no key handling.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from keptn.errors import ConflictError, NotFoundError, UnavailableError
from keptn.secrets import KEPTN_SCOPES, SecretSpec


class Cipher(Protocol):
    """What encrypts a secret's values (``SecretBox``)."""

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``."""
        ...

    def decrypt(self, token: bytes) -> bytes:
        """The plaintext of a token of :meth:`encrypt`; raises UnavailableError if it is not one."""
        ...


@dataclass(frozen=True)
class SecretInfo:
    """What may be shown of a secret: never its values."""

    name: str
    scope: str
    keys: list[str]


def _seal(cipher: Cipher, data: Mapping[str, str]) -> bytes:
    return cipher.encrypt(json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False).encode())


async def create_secret(pool: asyncpg.Pool, cipher: Cipher, secret: SecretSpec) -> SecretInfo:
    """Store a new secret.

    Raises:
        ConflictError: a secret of that name exists in that scope.
    """
    created = await pool.fetchval(
        "INSERT INTO secrets (scope, name, keys, ciphertext) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (scope, name) DO NOTHING RETURNING name",
        secret.scope,
        secret.name,
        secret.keys,
        _seal(cipher, secret.data),
    )
    if created is None:
        raise ConflictError(
            f"secret '{secret.name}' already exists in scope '{secret.scope}'; update it with PUT",
            field="name",
        )
    return SecretInfo(secret.name, secret.scope, secret.keys)


async def update_secret(pool: asyncpg.Pool, cipher: Cipher, secret: SecretSpec) -> SecretInfo:
    """Replace all values of an existing secret (keys not given are removed, as in Keptn).

    Raises:
        NotFoundError: no secret of that name exists in that scope.
    """
    updated = await pool.fetchval(
        "UPDATE secrets SET keys = $3, ciphertext = $4, updated_at = now()"
        " WHERE scope = $1 AND name = $2 RETURNING name",
        secret.scope,
        secret.name,
        secret.keys,
        _seal(cipher, secret.data),
    )
    if updated is None:
        raise _not_found(secret.name, secret.scope)
    return SecretInfo(secret.name, secret.scope, secret.keys)


async def delete_secret(pool: asyncpg.Pool, name: str, scope: str) -> None:
    """Delete a secret.

    Raises:
        NotFoundError: no secret of that name exists in that scope.
    """
    deleted = await pool.fetchval(
        "DELETE FROM secrets WHERE scope = $1 AND name = $2 RETURNING name", scope, name
    )
    if deleted is None:
        raise _not_found(name, scope)


async def list_secrets(
    pool: asyncpg.Pool, *, name: str | None = None, scope: str | None = None
) -> list[SecretInfo]:
    """Secrets with their keys, by scope then name, optionally only of one name and/or scope."""
    rows = await pool.fetch(
        "SELECT scope, name, keys FROM secrets"
        " WHERE ($1::text IS NULL OR name = $1) AND ($2::text IS NULL OR scope = $2)"
        " ORDER BY scope, name",
        name,
        scope,
    )
    return [SecretInfo(row["name"], row["scope"], list(row["keys"])) for row in rows]


async def list_scopes(pool: asyncpg.Pool) -> list[str]:
    """Keptn's default scopes and every scope a secret uses, sorted."""
    used = await pool.fetch("SELECT DISTINCT scope FROM secrets")
    return sorted({*KEPTN_SCOPES, *(row["scope"] for row in used)})


async def read_secret_values(pool: asyncpg.Pool, cipher: Cipher, name: str, scope: str) -> dict[str, str]:
    """The values of a secret by key, for webhooks (``envFrom``) and SLI providers.

    The caller must not log, return or put into an event what this returns.

    Raises:
        NotFoundError: no secret of that name exists in that scope.
        UnavailableError: the values cannot be decrypted with this cipher's key.
    """
    token = await pool.fetchval("SELECT ciphertext FROM secrets WHERE scope = $1 AND name = $2", scope, name)
    if token is None:
        raise _not_found(name, scope)
    try:
        plaintext = cipher.decrypt(bytes(token))
    except UnavailableError as exc:
        raise UnavailableError(f"secret '{name}' in scope '{scope}': {exc.message}") from None
    values: dict[str, str] = json.loads(plaintext)
    return values


def _not_found(name: str, scope: str) -> NotFoundError:
    return NotFoundError(f"secret '{name}' not found in scope '{scope}'", field="name")
