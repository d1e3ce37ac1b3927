"""The credentials ``capstan auth`` stores: ``$XDG_CONFIG_HOME/capstan/config.json``.

Keptn's CLI kept its endpoint and token in ``~/.keptn``; Capstan keeps them in the XDG config
directory (``~/.config/capstan`` when ``XDG_CONFIG_HOME`` is unset), as ``{"api_url", "token"}``.
The directory is made ``0700`` and the file ``0600``: the token is the API's admin key or a scoped
one, and nobody else on the machine should read it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

CONFIG_DIR_NAME = "capstan"
CONFIG_FILE_NAME = "config.json"


class ConfigError(Exception):
    """The stored config cannot be read or written; ``str(error)`` is one line for the user."""


@dataclass(frozen=True)
class StoredAuth:
    """What ``capstan auth`` stored."""

    api_url: str
    token: str


def config_path() -> Path:
    """Where the credentials live: ``$XDG_CONFIG_HOME/capstan/config.json``.

    As the XDG spec says, an unset, empty or relative ``XDG_CONFIG_HOME`` means ``~/.config``.
    """
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / CONFIG_DIR_NAME / CONFIG_FILE_NAME


def load_auth(path: Path | None = None) -> StoredAuth | None:
    """The stored credentials, or None when ``capstan auth`` stored none.

    Raises:
        ConfigError: the file exists but is unreadable or not in the expected shape.
    """
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); run `capstan auth` again") from exc
    url, token = (data.get("api_url"), data.get("token")) if isinstance(data, dict) else (None, None)
    if not isinstance(url, str) or not url or not isinstance(token, str) or not token:
        raise ConfigError(f"{path} has no api_url and token; run `capstan auth` again")
    return StoredAuth(api_url=url, token=token)


def save_auth(auth: StoredAuth, path: Path | None = None) -> Path:
    """Store credentials (replacing earlier ones) with mode 0600 in a 0700 directory; return the path.

    Raises:
        ConfigError: the directory or file cannot be written.
    """
    path = path or config_path()
    body = json.dumps({"api_url": auth.api_url, "token": auth.token}, indent=2) + "\n"
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.chmod(0o700)  # an existing directory too: it holds a token
        # Created 0600 from the start, never world-readable for a moment; replaced atomically so
        # a command reading concurrently sees the old or the new credentials, not half of them.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"cannot store the credentials in {path}: {exc}") from exc
    return path


def remove_auth(path: Path | None = None) -> bool:
    """Delete the stored credentials; False when there were none.

    Raises:
        ConfigError: the file exists but cannot be removed.
    """
    path = path or config_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ConfigError(f"cannot remove {path}: {exc}") from exc
    return True
