"""The key that encrypts secret values at rest, and the box that uses it.

Secret values are encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from the ``cryptography``
package): a stolen database dump or backup reveals secret names and keys, never values. The key is
``CAPSTAN_SECRET_KEY`` or, like the API token, ``<data_dir>/secret-key``, which ``capstan up``
creates on first start (readable only by its owner) and passes to the gateway and the worker.

Losing the key loses the values (names and keys stay listable); writing a secret again with a new
key makes it usable again.
"""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, InvalidToken

from capstan.settings import Settings
from keptn.errors import UnavailableError

__all__ = [
    "SecretBox",
    "generate_secret_key",
    "load_secret_box",
    "prepare_secret_key",
    "resolve_secret_key",
]

GENERATE_HINT = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
"""A command that prints a new key, quoted in error messages."""


class SecretBox:
    """Encrypts and decrypts secret payloads with one Fernet key.

    Args:
        key: a Fernet key (32 url-safe base64-encoded bytes).

    Raises:
        ValueError: the key is not a Fernet key.
    """

    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def encrypt(self, plaintext: bytes) -> bytes:
        """One Fernet token (url-safe base64 text as bytes) of ``plaintext``."""
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        """The plaintext of a token made by :meth:`encrypt` with the same key.

        Raises:
            UnavailableError: the token was made with another key, or altered.
        """
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise UnavailableError(
                "the stored value cannot be decrypted with the configured secret key (was"
                " CAPSTAN_SECRET_KEY or the secret-key file changed?); write the secret again"
            ) from None


def generate_secret_key() -> str:
    """A new random Fernet key."""
    return Fernet.generate_key().decode("ascii")


def _configured(settings: Settings) -> str | None:
    # CAPSTAN_SECRET_KEY="" means unset, as an empty CAPSTAN_API_TOKEN does for the CLI.
    if settings.secret_key is None:
        return None
    return settings.secret_key.get_secret_value().strip() or None


def resolve_secret_key(settings: Settings, *, create: bool = False) -> str:
    """Return the secret-encryption key: the configured one, else the one kept in the data dir.

    With ``create`` (what ``capstan up`` does on first start) a missing key file is created with a
    fresh key readable only by its owner, exactly as the API token is.

    Raises:
        FileNotFoundError: no key is configured, none is stored and ``create`` is false.
    """
    configured = _configured(settings)
    if configured is not None:
        return configured
    path = settings.secret_key_file
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise FileNotFoundError(f"no secret key: set CAPSTAN_SECRET_KEY or create {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_secret_key()
    # O_EXCL so that two processes racing on first start cannot each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def _open(key: str, settings: Settings) -> SecretBox:
    try:
        return SecretBox(key)
    except ValueError:
        source = "CAPSTAN_SECRET_KEY" if _configured(settings) is not None else str(settings.secret_key_file)
        raise UnavailableError(
            f"the secret key in {source} is not a valid key (32 url-safe base64-encoded bytes);"
            f" make one with {GENERATE_HINT}"
        ) from None


def prepare_secret_key(settings: Settings) -> str:
    """The key ``capstan up`` hands to its children: generated on first start, and checked.

    Raises:
        UnavailableError: the configured or stored key is not a Fernet key.
    """
    key = resolve_secret_key(settings, create=True)
    _open(key, settings)
    return key


def load_secret_box(settings: Settings) -> SecretBox:
    """The box of the configured key, for the gateway and the worker (which never create a key).

    Raises:
        UnavailableError: no key is configured or stored, it cannot be read, or it is not a Fernet
            key; the message says how to fix it.
    """
    try:
        key = resolve_secret_key(settings, create=False)
    except FileNotFoundError:
        raise UnavailableError(
            f"CAPSTAN_SECRET_KEY is not set and {settings.secret_key_file} does not exist, so secrets"
            " cannot be stored or read: start Capstan with `capstan up` (which generates the key) or"
            f" set CAPSTAN_SECRET_KEY to a key made with {GENERATE_HINT}"
        ) from None
    except OSError as exc:
        raise UnavailableError(
            f"the secret key file {settings.secret_key_file} cannot be read ({exc.strerror})"
        ) from None
    return _open(key, settings)
