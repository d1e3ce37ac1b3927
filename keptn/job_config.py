"""The job executor's ``job/config.yaml`` without I/O: parsing, event matching and JSONPath.

The format is Keptn's job-executor-service ``apiVersion: v2``::

    apiVersion: v2
    actions:
      - name: run the load test
        events:
          - name: sh.keptn.event.test.triggered
            jsonpath: {property: $.data.test.teststrategy, match: performance}
        tasks:
          - name: load test
            files: [load/run.py]
            cmd: [python3]
            args: [run.py, --target, $(TARGET)]
            env:
              - {name: TARGET, value: "$.data.deployment.deploymentURIsLocal[0]", valueFrom: event}
              - {name: load-credentials, valueFrom: secret}
              - {name: RATE, value: "20", valueFrom: string}
            maxPollDuration: 120

:func:`parse_job_config` reads it (YAML 1.2, :mod:`keptn.yaml_loader`) and refuses every field
the executor does not support with the path of the field (``actions[0].tasks[1].resources: …``),
so a config never silently does less than it says. :func:`find_action` picks the first action
with an event entry matching the event (type, then the optional JSONPath property/match), and
the property is read with the JSONPath subset of :mod:`keptn.jsonpath` (``$``, ``.key``,
``['key']``, ``[index]``).

Differences from Keptn (see docs/executor.md): ``cmd`` must be a non-empty list (v2 already
required it); ``timeout`` (a Go duration) is accepted beside ``maxPollDuration`` (seconds);
Kubernetes-only fields (``resources``, ``serviceAccount``, ``securityContext``, ``namespace``,
``ttlSecondsAfterFinished``, ``imagePullPolicy``, ``nodeSelector``) are refused.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict

from keptn.durations import parse_duration
from keptn.errors import InvalidInputError
from keptn.jsonpath import JsonPathError, jsonpath_get, parse_jsonpath, render_value
from keptn.yaml_loader import load_yaml

__all__ = [
    "API_VERSION",
    "CONFIG_URI",
    "DEFAULT_TIMEOUT_SECONDS",
    "Action",
    "EnvVar",
    "EventMatch",
    "InvalidJobConfigError",
    "JobConfig",
    "JobTask",
    "JsonPathError",
    "expand_args",
    "find_action",
    "jsonpath_get",
    "parse_job_config",
    "render_value",
]

CONFIG_URI = "job/config.yaml"
"""The resource the executor reads (service, then stage, then project level)."""
API_VERSION = "v2"
DEFAULT_TIMEOUT_SECONDS = 300.0
"""A task's timeout when it names none (Keptn's ``maxPollDuration`` default: 5 minutes)."""
CONFIG_INVALID = "Job configuration invalid:"

_TOP_KEYS = frozenset({"apiVersion", "actions"})
_ACTION_KEYS = frozenset({"name", "events", "tasks", "silent"})
_EVENT_KEYS = frozenset({"name", "jsonpath"})
_JSONPATH_KEYS = frozenset({"property", "match"})
_TASK_KEYS = frozenset(
    {"name", "image", "cmd", "args", "env", "files", "workingDir", "maxPollDuration", "timeout"}
)
_ENV_KEYS = frozenset({"name", "value", "valueFrom", "formatAs"})
_KUBERNETES_ONLY = frozenset(
    {
        "resources",
        "serviceAccount",
        "securityContext",
        "namespace",
        "ttlSecondsAfterFinished",
        "imagePullPolicy",
        "nodeSelector",
        "imagePullSecrets",
    }
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_EXPANSION = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$\(")


class InvalidJobConfigError(InvalidInputError):
    """A ``job/config.yaml`` cannot be used: ``Job configuration invalid: <path>: <what>``."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(f"{CONFIG_INVALID} {detail}", field=field)
        self.detail = detail


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class EventMatch(_Model):
    """One ``events`` entry: an event type (``*`` matches one dot-separated part) and a filter."""

    name: str
    property: str | None = None
    """JSONPath into the whole event, e.g. ``$.data.test.teststrategy``. Default: no filter."""
    match: str | None = None
    """The text the property must equal (non-strings compare as their JSON text)."""


class EnvVar(_Model):
    """One ``env`` entry."""

    name: str
    """The variable's name; for ``valueFrom: secret``, the secret's name (all its keys become
    variables, as in Keptn)."""
    value: str = ""
    """The literal (``string``) or the JSONPath into the event (``event``)."""
    value_from: Literal["event", "secret", "string"] = "string"
    format_as: Literal["string", "json"] = "string"
    """``json``: an event value is passed as JSON even when it is a string. Default ``string``."""


class JobTask(_Model):
    """One ``tasks`` entry: a command run in a fresh working directory."""

    name: str
    cmd: tuple[str, ...]
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    files: tuple[str, ...] = ()
    """Resource URIs (or folders of them) copied into the working directory."""
    working_dir: str = ""
    """Relative to the task's directory; ``/keptn[/…]`` is the directory itself (Keptn's mount)."""
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    image: str | None = None
    """Run in a container of this image (needs the ``container`` feature and docker or podman)."""


class Action(_Model):
    """One ``actions`` entry."""

    name: str
    events: tuple[EventMatch, ...]
    tasks: tuple[JobTask, ...]
    silent: bool = False
    """Keptn's silent mode: run the tasks but send no ``.started``/``.finished``."""


class JobConfig(_Model):
    """A parsed ``job/config.yaml``."""

    api_version: str
    actions: tuple[Action, ...]


# --- matching ------------------------------------------------------------------------------------


def _type_matches(pattern: str, event_type: str) -> bool:
    wanted, actual = pattern.split("."), event_type.split(".")
    return len(wanted) == len(actual) and all(w == "*" or w == a for w, a in zip(wanted, actual, strict=True))


def event_matches(match: EventMatch, event: Mapping[str, Any]) -> bool:
    """Whether an event has the entry's type and, if it names a property, the property's value."""
    event_type = event.get("type")
    if not isinstance(event_type, str) or not _type_matches(match.name, event_type):
        return False
    if match.property is None:
        return True
    try:
        value = jsonpath_get(event, match.property)
    except JsonPathError:
        return False
    return render_value(value) == (match.match or "")


def find_action(config: JobConfig, event: Mapping[str, Any]) -> Action | None:
    """The first action with an event entry matching ``event``, or None (Keptn ran the first)."""
    for action in config.actions:
        if any(event_matches(match, event) for match in action.events):
            return action
    return None


def expand_args(args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Replace ``$(NAME)`` in each argument by the variable's value.

    As Kubernetes does for a container's ``args``: an unknown name stays as written, ``$$(``
    stands for a literal ``$(``. The result is an argv list; no shell ever reads it.
    """

    def replace(found: re.Match[str]) -> str:
        name = found.group(1)
        if name is None:
            return "$("
        return env.get(name, found.group(0))

    return [_EXPANSION.sub(replace, arg) for arg in args]


def command_allowed(command: str, patterns: Sequence[str]) -> bool:
    """Whether ``cmd[0]`` (as written, or its last path part) matches one of the glob patterns."""
    base = command.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(command, p) or fnmatch.fnmatchcase(base, p) for p in patterns)


# --- parsing -------------------------------------------------------------------------------------


def _fail(path: str, reason: str) -> NoReturn:
    raise InvalidJobConfigError(f"{path}: {reason}", field=path)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else repr(value)


def _mapping(value: Any, path: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(path, f"expected a mapping, found {_kind(value)}")
    for key in value:
        if key in _KUBERNETES_ONLY:
            _fail(f"{path}.{key}", "a Kubernetes setting the executor does not support; remove it")
        if key not in allowed:
            _fail(f"{path}.{key}", f"unknown field (supported: {', '.join(sorted(allowed))})")
    return value


def _list(value: Any, path: str, *, required: bool) -> list[Any]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        _fail(path, f"expected a non-empty list, found {_kind(value)}" if required else "expected a list")
    return value


def _text(value: Any, path: str, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        _fail(path, f"expected a string, found {_kind(value)}")
    text = str(value)
    if required and not text.strip():
        _fail(path, "must not be empty")
    return text


def _strings(value: Any, path: str, *, required: bool) -> tuple[str, ...]:
    return tuple(
        _text(item, f"{path}[{i}]", required=False)
        for i, item in enumerate(_list(value, path, required=required))
    )


def _event(item: Any, path: str) -> EventMatch:
    fields = _mapping(item, path, _EVENT_KEYS)
    name = _text(fields.get("name"), f"{path}.name", required=True).strip()
    if fields.get("jsonpath") is None:
        return EventMatch(name=name)
    jsonpath = _mapping(fields["jsonpath"], f"{path}.jsonpath", _JSONPATH_KEYS)
    prop = _text(jsonpath.get("property"), f"{path}.jsonpath.property", required=True).strip()
    try:
        parse_jsonpath(prop)
    except JsonPathError as exc:
        _fail(f"{path}.jsonpath.property", exc.message)
    match = _text(jsonpath.get("match"), f"{path}.jsonpath.match", required=False)
    return EventMatch(name=name, property=prop, match=match)


def _env(item: Any, path: str) -> EnvVar:
    fields = _mapping(item, path, _ENV_KEYS)
    name = _text(fields.get("name"), f"{path}.name", required=True).strip()
    source = _text(fields.get("valueFrom", "string"), f"{path}.valueFrom", required=True).strip()
    if source not in ("event", "secret", "string"):
        _fail(f"{path}.valueFrom", f"{source!r} is not one of event, secret, string")
    value = _text(fields.get("value"), f"{path}.value", required=source == "event")
    fmt = _text(fields.get("formatAs", "string"), f"{path}.formatAs", required=True).strip()
    if fmt not in ("string", "json"):
        _fail(f"{path}.formatAs", f"{fmt!r} is not one of string, json")
    if source == "secret":
        if not _SECRET_NAME.fullmatch(name):
            _fail(f"{path}.name", f"{name!r} is not a secret name")
    elif not _ENV_NAME.fullmatch(name):
        _fail(f"{path}.name", f"{name!r} is not an environment variable name")
    if source == "event":
        try:
            parse_jsonpath(value)
        except JsonPathError as exc:
            _fail(f"{path}.value", exc.message)
    return EnvVar(name=name, value=value, value_from=source, format_as=fmt)


def _timeout(fields: Mapping[str, Any], path: str) -> float:
    if fields.get("timeout") is not None and fields.get("maxPollDuration") is not None:
        _fail(f"{path}.timeout", "give either timeout or maxPollDuration, not both")
    if fields.get("timeout") is not None:
        text = _text(fields["timeout"], f"{path}.timeout", required=True)
        try:
            seconds = parse_duration(text, field=f"{path}.timeout").total_seconds()
        except InvalidInputError as exc:
            _fail(f"{path}.timeout", exc.message)
    elif fields.get("maxPollDuration") is not None:
        raw = fields["maxPollDuration"]
        if isinstance(raw, bool) or not isinstance(raw, int):
            _fail(f"{path}.maxPollDuration", f"expected whole seconds, found {_kind(raw)}")
        seconds = float(raw)
    else:
        return DEFAULT_TIMEOUT_SECONDS
    if seconds <= 0:
        _fail(path, "the timeout must be positive")
    return seconds


def _files(value: Any, path: str) -> tuple[str, ...]:
    files = _strings(value, path, required=False)
    for i, uri in enumerate(files):
        parts = uri.strip("/").split("/")
        if not uri.strip() or any(part in ("", ".", "..") for part in parts):
            _fail(f"{path}[{i}]", f"{uri!r} is not a resource path inside the project")
    return tuple(uri.strip("/") for uri in files)


def _task(item: Any, path: str) -> JobTask:
    fields = _mapping(item, path, _TASK_KEYS)
    if isinstance(fields.get("cmd"), str):
        _fail(f"{path}.cmd", "expected a list of strings (apiVersion v2), e.g. [python3, run.py]")
    cmd = _strings(fields.get("cmd"), f"{path}.cmd", required=True)
    if not cmd[0].strip():
        _fail(f"{path}.cmd[0]", "must not be empty")
    env_path = f"{path}.env"
    env = tuple(
        _env(e, f"{env_path}[{i}]") for i, e in enumerate(_list(fields.get("env"), env_path, required=False))
    )
    image = _text(fields.get("image"), f"{path}.image", required=False).strip() or None
    working_dir = _text(fields.get("workingDir"), f"{path}.workingDir", required=False).strip()
    if ".." in working_dir.split("/"):
        _fail(f"{path}.workingDir", "must not contain '..'")
    return JobTask(
        name=_text(fields.get("name"), f"{path}.name", required=True).strip(),
        cmd=cmd,
        args=_strings(fields.get("args"), f"{path}.args", required=False),
        env=env,
        files=_files(fields.get("files"), f"{path}.files"),
        working_dir=working_dir,
        timeout_seconds=_timeout(fields, path),
        image=image,
    )


def _action(item: Any, path: str) -> Action:
    fields = _mapping(item, path, _ACTION_KEYS)
    silent = fields.get("silent", False)
    if not isinstance(silent, bool):
        _fail(f"{path}.silent", f"expected true or false, found {_kind(silent)}")
    return Action(
        name=_text(fields.get("name"), f"{path}.name", required=True).strip(),
        events=tuple(
            _event(e, f"{path}.events[{i}]")
            for i, e in enumerate(_list(fields.get("events"), f"{path}.events", required=True))
        ),
        tasks=tuple(
            _task(t, f"{path}.tasks[{i}]")
            for i, t in enumerate(_list(fields.get("tasks"), f"{path}.tasks", required=True))
        ),
        silent=silent,
    )


def parse_job_config(content: str | bytes) -> JobConfig:
    """Parse a ``job/config.yaml`` (``apiVersion: v2``).

    Raises:
        InvalidJobConfigError: ``Job configuration invalid: <path>: <what is wrong>``, with
            ``field`` set to the path (e.g. ``actions[0].tasks[1].cmd``).
    """
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            _fail(CONFIG_URI, "the file is not UTF-8 text")
    try:
        document = load_yaml(content, what=CONFIG_URI, field=CONFIG_URI)
    except InvalidInputError as exc:
        raise InvalidJobConfigError(exc.message, field=CONFIG_URI) from None
    if document is None:
        _fail(CONFIG_URI, "the file is empty")
    top = _mapping(document, CONFIG_URI, _TOP_KEYS)
    version = _text(top.get("apiVersion"), "apiVersion", required=True).strip()
    if version != API_VERSION:
        _fail("apiVersion", f"{version!r} is not supported (use {API_VERSION})")
    actions = _list(top.get("actions"), "actions", required=True)
    return JobConfig(
        api_version=version, actions=tuple(_action(a, f"actions[{i}]") for i, a in enumerate(actions))
    )
