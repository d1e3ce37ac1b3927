"""Keptn's secret-service rules as pure code: secret names, scopes, keys and values.

Keptn kept each secret as a Kubernetes ``Secret`` in its namespace, labelled with its *scope* (the
service account allowed to read it), so what Kubernetes accepts is what Keptn accepted:

- a secret name and a scope are DNS-1123 subdomains: lower-case letters, digits, ``-`` and ``.``,
  starting and ending with a letter or digit, each dot-separated part too, at most 253 characters
  (``my-secret``, ``webhook.slack``; not ``My_Secret``, ``-x``, ``a..b``);
- a key matches ``^[-._a-zA-Z0-9]+$``, at most 253 characters, and is not ``.``/``..`` nor starts
  with ``..`` (Kubernetes' ``IsConfigMapKey``); a secret has at least one key;
- values are strings, and a secret's keys and values together stay within 1 MiB (Kubernetes' limit
  on a Secret).

Capstan has no Kubernetes service accounts, so a scope is just a validated name: the scopes Keptn
shipped (:data:`KEPTN_SCOPES`) are always listed, and any other valid scope may be used. Webhooks
read secrets of scope ``keptn-webhook-service``, as Keptn's webhook-service did.

Error messages name the field and, for keys, the key; they never contain a value. :func:`mask`
hides values in text that may contain them (webhook messages, job output).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from keptn.errors import InvalidInputError

__all__ = [
    "DEFAULT_SCOPE",
    "KEPTN_SCOPES",
    "MAX_DATA_BYTES",
    "MAX_NAME_LENGTH",
    "WEBHOOK_SCOPE",
    "SecretSpec",
    "validate_scope",
    "validate_secret",
    "validate_secret_data",
    "validate_secret_key",
    "validate_secret_name",
]

DEFAULT_SCOPE = "keptn-default"
"""The scope of a secret created without one (Keptn's ``DefaultSecretScope``)."""

WEBHOOK_SCOPE = "keptn-webhook-service"
"""The scope whose secrets webhooks may use (``envFrom[].secretRef``)."""

KEPTN_SCOPES = ("dynatrace-service", DEFAULT_SCOPE, WEBHOOK_SCOPE)
"""The scopes of Keptn's default ``scopes.yaml``, always answered by ``GET /scope``."""

MAX_NAME_LENGTH = 253
"""Kubernetes' limit for a DNS-1123 subdomain and for a Secret's key."""

MAX_DATA_BYTES = 1024 * 1024
"""Kubernetes' limit on a Secret's data: keys and values together, in UTF-8 bytes."""

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
# fullmatch() is used throughout: Python's "$" would also match before a final newline.
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_KEY = re.compile(r"[-._a-zA-Z0-9]+")

_SUBDOMAIN_RULE = (
    "lower case letters, numbers, '-' and '.', starting and ending with a letter or number"
    f" (a DNS-1123 subdomain, at most {MAX_NAME_LENGTH} characters)"
)


@dataclass(frozen=True)
class SecretSpec:
    """A validated secret: its name, scope and values by key."""

    name: str
    scope: str
    data: Mapping[str, str]

    @property
    def keys(self) -> list[str]:
        """The keys, sorted: what may be shown of a secret."""
        return sorted(self.data)

    def __repr__(self) -> str:
        # Never let a value reach a log line or a traceback through repr().
        return f"SecretSpec(name={self.name!r}, scope={self.scope!r}, keys={self.keys!r})"


def _subdomain(value: object, *, what: str, field: str) -> str:
    if not isinstance(value, str) or value == "":
        raise InvalidInputError(f"{field}: {what} missing", field=field)
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"{field}: {what} exceeds the maximum length of {MAX_NAME_LENGTH} characters"
            f" ({len(value)} given)",
            field=field,
        )
    if not _DNS_SUBDOMAIN.fullmatch(value):
        raise InvalidInputError(f"{field}: {what} {value!r} is invalid: use {_SUBDOMAIN_RULE}", field=field)
    return value


def validate_secret_name(name: object, *, field: str = "name") -> str:
    """Check a secret name (a DNS-1123 subdomain, as Kubernetes requires of a Secret's name).

    Args:
        name: the secret name.
        field: the input field it came from, named in the error.

    Returns:
        The name, unchanged.

    Raises:
        InvalidInputError: the name is missing, too long or breaks the rule.
    """
    return _subdomain(name, what="secret name", field=field)


def validate_scope(scope: object, *, field: str = "scope") -> str:
    """Check a secret scope (a DNS-1123 subdomain: Keptn's scope named a service account).

    Args:
        scope: the scope.
        field: the input field it came from, named in the error.

    Returns:
        The scope, unchanged.

    Raises:
        InvalidInputError: the scope is missing, too long or breaks the rule.
    """
    return _subdomain(scope, what="scope", field=field)


def validate_secret_key(key: object, *, field: str = "data") -> str:
    """Check one key of a secret's data (Kubernetes' ``IsConfigMapKey``).

    Args:
        key: the key.
        field: the input field of the data, named in the error with the key.

    Returns:
        The key, unchanged.

    Raises:
        InvalidInputError: the key is empty, too long, ``.``/``..``, starts with ``..`` or has a
            character other than letters, digits, ``-``, ``_`` and ``.``.
    """
    if not isinstance(key, str) or key == "":
        raise InvalidInputError(f"{field}: a key is empty", field=field)
    where = f"{field}: key {key!r}"
    if len(key) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"{field}: a key exceeds the maximum length of {MAX_NAME_LENGTH} characters ({len(key)} given)",
            field=field,
        )
    if not _KEY.fullmatch(key):
        raise InvalidInputError(
            f"{where} is invalid: use letters, numbers, '-', '_' and '.' (^[-._a-zA-Z0-9]+$)", field=field
        )
    if key == "." or key.startswith(".."):
        raise InvalidInputError(
            f"{where} is invalid: a key must not be '.', '..' or start with '..'", field=field
        )
    return key


def validate_secret_data(data: object, *, field: str = "data") -> dict[str, str]:
    """Check a secret's values by key: at least one key, valid keys, string values, at most 1 MiB.

    Args:
        data: the ``data`` map of a request.
        field: the input field it came from, named in the error.

    Returns:
        A copy of the map.

    Raises:
        InvalidInputError: the map is missing or empty, a key is invalid, a value is not a string or
            the whole is larger than :data:`MAX_DATA_BYTES`.
    """
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"{field}: must be a map of keys to string values", field=field)
    if not data:
        raise InvalidInputError(f"{field}: a secret needs at least one key", field=field)
    size = 0
    checked: dict[str, str] = {}
    for key, value in data.items():
        validate_secret_key(key, field=field)
        if not isinstance(value, str):
            raise InvalidInputError(f"{field}.{key}: the value must be a string", field=f"{field}.{key}")
        try:
            size += len(key.encode()) + len(value.encode())
        except UnicodeEncodeError:
            # a lone surrogate (JSON "\ud800"): not text that can be stored or sent anywhere
            raise InvalidInputError(
                f"{field}.{key}: the value is not valid Unicode text", field=f"{field}.{key}"
            ) from None
        checked[key] = value
    if size > MAX_DATA_BYTES:
        raise InvalidInputError(
            f"{field}: the keys and values of a secret must not exceed {MAX_DATA_BYTES} bytes ({size} given)",
            field=field,
        )
    return checked


def validate_secret(name: object, scope: object, data: object) -> SecretSpec:
    """Check a whole secret as ``POST``/``PUT /secret`` receive it.

    Args:
        name: the secret name.
        scope: its scope; empty or None means :data:`DEFAULT_SCOPE`, as in Keptn.
        data: its values by key.

    Returns:
        The validated secret.

    Raises:
        InvalidInputError: any part breaks its rule; the message names the field.
    """
    scope = DEFAULT_SCOPE if scope in (None, "") else scope
    return SecretSpec(
        name=validate_secret_name(name),
        scope=validate_scope(scope),
        data=validate_secret_data(data),
    )


MASK = "***"
"""What :func:`mask` puts where a secret value was."""


def _lower(match: re.Match[str]) -> str:
    return match.group().lower()


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in ``text`` with ``***``.

    Besides each value as it is, its JSON-escaped and URL-encoded forms are masked, since a value
    may reach a message through a rendered payload or URL. Longer values are masked first, so a
    secret containing another is masked whole. Empty values are ignored.
    """
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms.update((secret, json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret, safe="")))
            encoded = quote(secret, safe="")
            forms.update((quote(secret, safe="/:@"), re.sub("%[0-9A-F]{2}", _lower, encoded)))
    forms.discard("")
    if not forms or not text:
        return text
    pattern = re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)))
    return pattern.sub(MASK, text)
