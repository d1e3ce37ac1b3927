"""Secrets in PostgreSQL: keys listable in clear, values only as one encrypted token."""

from __future__ import annotations

import asyncio

import pytest

from capstan.secret_box import SecretBox, generate_secret_key
from keptn.errors import ConflictError, NotFoundError, UnavailableError
from keptn.secrets import KEPTN_SCOPES, validate_secret
from store import secrets

VALUE = "hunter2-s3cr3t-value"


@pytest.fixture
def box():
    return SecretBox(generate_secret_key())


async def test_create_list_and_read(pool, box):
    info = await secrets.create_secret(
        pool, box, validate_secret("slack", "keptn-webhook-service", {"token": VALUE, "channel": "#ops"})
    )
    assert (info.name, info.scope, info.keys) == ("slack", "keptn-webhook-service", ["channel", "token"])
    await secrets.create_secret(pool, box, validate_secret("db", None, {"password": "pw"}))
    listed = await secrets.list_secrets(pool)
    assert [(s.scope, s.name, s.keys) for s in listed] == [
        ("keptn-default", "db", ["password"]),
        ("keptn-webhook-service", "slack", ["channel", "token"]),
    ]
    values = await secrets.read_secret_values(pool, box, "slack", "keptn-webhook-service")
    assert values == {"token": VALUE, "channel": "#ops"}


async def test_value_is_not_readable_in_the_table(pool, box):
    await secrets.create_secret(pool, box, validate_secret("s", None, {"k": VALUE, "u": "ünïcødé"}))
    row = await pool.fetchrow("SELECT * FROM secrets")
    raw = bytes(row["ciphertext"])
    assert VALUE.encode() not in raw and b"hunter2" not in raw
    assert "ünïcødé".encode() not in raw
    # nothing in any column of the row, nor anywhere in the table's text form, holds the value
    dumped = await pool.fetchval("SELECT string_agg(t::text, '') FROM secrets t")
    assert VALUE not in dumped and "hunter2" not in dumped
    assert list(row["keys"]) == ["k", "u"]


async def test_same_name_in_two_scopes_are_two_secrets(pool, box):
    await secrets.create_secret(pool, box, validate_secret("s", "a", {"k": "in-a"}))
    await secrets.create_secret(pool, box, validate_secret("s", "b", {"k": "in-b"}))
    assert await secrets.read_secret_values(pool, box, "s", "a") == {"k": "in-a"}
    assert await secrets.read_secret_values(pool, box, "s", "b") == {"k": "in-b"}
    assert [s.scope for s in await secrets.list_secrets(pool, name="s")] == ["a", "b"]
    assert [s.name for s in await secrets.list_secrets(pool, scope="b")] == ["s"]
    assert await secrets.list_secrets(pool, name="s", scope="c") == []


async def test_create_existing_conflicts(pool, box):
    await secrets.create_secret(pool, box, validate_secret("s", None, {"k": "1"}))
    with pytest.raises(ConflictError, match="'s' already exists in scope 'keptn-default'") as caught:
        await secrets.create_secret(pool, box, validate_secret("s", None, {"k": VALUE}))
    assert VALUE not in caught.value.message
    assert await secrets.read_secret_values(pool, box, "s", "keptn-default") == {"k": "1"}


async def test_concurrent_creates_one_wins(pool, box):
    spec = validate_secret("race", None, {"k": "v"})
    results = await asyncio.gather(
        *(secrets.create_secret(pool, box, spec) for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, ConflictError) for r in results) == 4


async def test_update_replaces_all_values(pool, box):
    await secrets.create_secret(pool, box, validate_secret("s", None, {"old": "1", "kept": "2"}))
    info = await secrets.update_secret(pool, box, validate_secret("s", None, {"kept": "3", "new": "4"}))
    assert info.keys == ["kept", "new"]
    assert await secrets.read_secret_values(pool, box, "s", "keptn-default") == {"kept": "3", "new": "4"}
    assert (await secrets.list_secrets(pool))[0].keys == ["kept", "new"]


async def test_missing_secret_is_not_found(pool, box):
    with pytest.raises(NotFoundError, match="secret 'nope' not found in scope 'keptn-default'"):
        await secrets.update_secret(pool, box, validate_secret("nope", None, {"k": "v"}))
    with pytest.raises(NotFoundError):
        await secrets.delete_secret(pool, "nope", "keptn-default")
    with pytest.raises(NotFoundError):
        await secrets.read_secret_values(pool, box, "nope", "keptn-default")


async def test_delete(pool, box):
    await secrets.create_secret(pool, box, validate_secret("s", "a", {"k": "v"}))
    await secrets.create_secret(pool, box, validate_secret("s", "b", {"k": "v"}))
    with pytest.raises(NotFoundError):
        await secrets.delete_secret(pool, "s", "keptn-default")  # the scope is part of the identity
    await secrets.delete_secret(pool, "s", "a")
    assert [s.scope for s in await secrets.list_secrets(pool)] == ["b"]


async def test_scopes_are_keptns_and_those_in_use(pool, box):
    assert await secrets.list_scopes(pool) == sorted(KEPTN_SCOPES)
    await secrets.create_secret(pool, box, validate_secret("s", "my-team", {"k": "v"}))
    await secrets.create_secret(pool, box, validate_secret("t", "keptn-default", {"k": "v"}))
    assert await secrets.list_scopes(pool) == sorted({*KEPTN_SCOPES, "my-team"})


async def test_another_key_cannot_read_and_says_so(pool, box):
    await secrets.create_secret(pool, box, validate_secret("s", None, {"k": VALUE}))
    other = SecretBox(generate_secret_key())
    with pytest.raises(
        UnavailableError, match="secret 's' in scope 'keptn-default'.*cannot be decrypted"
    ) as e:
        await secrets.read_secret_values(pool, other, "s", "keptn-default")
    assert VALUE not in str(e.value)
