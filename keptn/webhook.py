"""Webhooks without I/O: ``webhook/webhook.yaml`` and its rendered requests (spec §7).

:func:`parse_webhook_config` reads the file (YAML 1.2, :mod:`keptn.yaml_loader`) and checks it as
Keptn's webhook-service checked ``webhookconfig.keptn.sh/v1beta1`` (with Keptn's message prefix
``Webhook configuration invalid:``), plus checks Keptn left to run time, so that a broken file
fails with the path of the bad value before any request is made. Deliberate differences:

* ``webhookconfig.keptn.sh/v1alpha1`` (requests as curl command strings) is rejected with a
  message saying to convert the file; Capstan runs no curl.
* Methods: Keptn's POST, PUT, GET and HEAD, plus PATCH and DELETE (which Keptn's specification
  listed but its code refused); written in any case, stored upper-case.
* ``options`` (extra curl options) must be absent or empty, since there is no curl to pass them to.
* Headers ``Host``, ``Content-Length``, ``Transfer-Encoding`` and ``Connection`` are refused:
  the HTTP client sets them (``Host`` from the URL, see :mod:`activities.outbound`).
* Every template is checked for syntax when the file is read (Keptn: when it ran).

The templates themselves are :mod:`keptn.webhook_template`; secret values are masked in messages
by :func:`keptn.secrets.mask`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field

from keptn._fields import describe, scalar_text
from keptn.errors import InvalidInputError
from keptn.webhook_template import TemplateError, check_template, parse_template, render
from keptn.yaml_loader import load_yaml

__all__ = [
    "CONFIG_INVALID",
    "METHODS",
    "RESERVED_HEADERS",
    "WEBHOOK_ALPHA_API_VERSION",
    "WEBHOOK_API_VERSION",
    "WEBHOOK_FILE",
    "EnvFrom",
    "Header",
    "InvalidWebhookConfigError",
    "Method",
    "RenderedRequest",
    "Webhook",
    "WebhookConfig",
    "WebhookRequest",
    "find_webhook",
    "is_json_payload",
    "parse_webhook_config",
    "render_request",
]

WEBHOOK_FILE = "webhook/webhook.yaml"
"""The resource the webhook service reads (service, then stage, then project level)."""
WEBHOOK_API_VERSION = "webhookconfig.keptn.sh/v1beta1"
WEBHOOK_ALPHA_API_VERSION = "webhookconfig.keptn.sh/v1alpha1"
CONFIG_INVALID = "Webhook configuration invalid:"
"""Keptn's prefix of every message about an unusable ``webhook.yaml``."""
Method = Literal["POST", "PUT", "GET", "HEAD", "PATCH", "DELETE"]
METHODS: tuple[Method, ...] = ("POST", "PUT", "GET", "HEAD", "PATCH", "DELETE")
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
"""Headers (lower-case) a webhook may not set: the HTTP client owns them."""
_KINDS = ("WebhookConfig", "Webhook")  # Keptn's own docs said "Webhook"; its code checked nothing
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field-name


class InvalidWebhookConfigError(InvalidInputError):
    """A ``webhook.yaml`` cannot be used: ``Webhook configuration invalid: <path>: <what>``.

    Attributes:
        detail: the message without Keptn's prefix.
    """

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(f"{CONFIG_INVALID} {detail}", field=field)
        self.detail = detail


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class Header(_Model):
    """One request header; ``value`` is a template."""

    key: str
    value: str


class WebhookRequest(_Model):
    """One HTTP request of a webhook; ``url``, header values and ``payload`` are templates."""

    url: str
    method: Method
    headers: tuple[Header, ...] = ()
    payload: str = ""
    """The body; empty sends none."""


class EnvFrom(_Model):
    """A secret value made available to the templates as ``.env.<name>``."""

    name: str
    secret_name: str
    """``secretRef.name``: the secret (in Capstan's secret store, scope ``keptn-default``)."""
    secret_key: str
    """``secretRef.key``: the key within the secret."""


class Webhook(_Model):
    """One ``spec.webhooks`` entry, tied to a uniform subscription by ``subscription_id``."""

    type: str
    """The event type, e.g. ``sh.keptn.event.deployment.triggered``."""
    subscription_id: str = Field(alias="subscriptionID")
    send_started: bool = Field(default=True, alias="sendStarted")
    """Send ``.started`` (``*.triggered`` only). Default true."""
    send_finished: bool = Field(default=False, alias="sendFinished")
    """Send ``.finished`` after the requests (``*.triggered`` only). Default false: the called
    system posts it."""
    env_from: tuple[EnvFrom, ...] = Field(default=(), alias="envFrom")
    requests: tuple[WebhookRequest, ...]
    """Executed one after the other."""


class WebhookConfig(_Model):
    """A parsed ``webhook.yaml``."""

    api_version: str = Field(alias="apiVersion")
    kind: str
    name: str = ""
    """``metadata.name``; empty when not given."""
    webhooks: tuple[Webhook, ...]


def find_webhook(config: WebhookConfig, subscription_id: str) -> Webhook | None:
    """The first webhook of ``config`` for the subscription ``subscription_id``, or None."""
    return next((hook for hook in config.webhooks if hook.subscription_id == subscription_id), None)


# --- parsing -------------------------------------------------------------------------------------


def _fail(path: str, reason: str) -> NoReturn:
    raise InvalidWebhookConfigError(f"{path}: {reason}", field=path)


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        _fail(path, "missing")
    if not isinstance(value, dict):
        _fail(path, f"expected a mapping, found {describe(value)}")
    return value


def _list(value: Any, path: str, *, required: bool) -> list[Any]:
    if value is None and not required:
        return []
    if value is None or value == []:
        _fail(path, "missing (expected a non-empty list)")
    if not isinstance(value, list):
        _fail(path, f"expected a list, found {describe(value)}")
    return value


def _string(value: Any, path: str, *, required: bool) -> str:
    """A string field; any scalar stands for its text, as with Keptn's YAML decoder."""
    text = scalar_text(value)
    if text is None:
        _fail(path, f"expected a string, found {describe(value)}")
    if required and not text.strip():
        _fail(path, "missing" if value is None else "must not be empty")
    return text


def _template(value: Any, path: str, *, required: bool) -> str:
    text = _string(value, path, required=required)
    try:
        check_template(text)
    except TemplateError as exc:
        _fail(path, exc.message)
    return text


def _flag(value: Any, path: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        _fail(path, f"expected true or false, found {describe(value)}")
    return value


def _header(item: Any, path: str) -> Header:
    fields = _mapping(item, path)
    key = _string(fields.get("key"), f"{path}.key", required=True).strip()
    if not _TOKEN.fullmatch(key):
        _fail(f"{path}.key", f"{key!r} is not a valid header name")
    if key.lower() in RESERVED_HEADERS:
        _fail(f"{path}.key", f"{key} is set by the HTTP client and cannot be set by a webhook")
    return Header(key=key, value=_template(fields.get("value"), f"{path}.value", required=True))


def _request(item: Any, path: str) -> WebhookRequest:
    if isinstance(item, str):
        _fail(path, "a curl command is a v1alpha1 request; v1beta1 needs {url, method, headers, payload}")
    fields = _mapping(item, path)
    method = _string(fields.get("method"), f"{path}.method", required=True).strip().upper()
    if method not in METHODS:
        _fail(f"{path}.method", f"unsupported webhook request method {method!r} (use {', '.join(METHODS)})")
    options = _string(fields.get("options"), f"{path}.options", required=False)
    if options.strip():
        _fail(
            f"{path}.options",
            f"curl options are not supported (found {options.strip()!r}): Capstan sends the request "
            "itself, without curl; remove the field",
        )
    headers_path = f"{path}.headers"
    headers = tuple(
        _header(header, f"{headers_path}[{index}]")
        for index, header in enumerate(_list(fields.get("headers"), headers_path, required=False))
    )
    return WebhookRequest(
        url=_template(fields.get("url"), f"{path}.url", required=True).strip(),
        method=method,  # checked against METHODS above
        headers=headers,
        payload=_template(fields.get("payload"), f"{path}.payload", required=False),
    )


def _env_from(item: Any, path: str) -> EnvFrom:
    fields = _mapping(item, path)
    ref = _mapping(fields.get("secretRef"), f"{path}.secretRef")
    return EnvFrom(
        name=_string(fields.get("name"), f"{path}.name", required=True).strip(),
        secret_name=_string(ref.get("name"), f"{path}.secretRef.name", required=True).strip(),
        secret_key=_string(ref.get("key"), f"{path}.secretRef.key", required=True).strip(),
    )


def _webhook(item: Any, path: str) -> Webhook:
    fields = _mapping(item, path)
    env_path = f"{path}.envFrom"
    env = [
        _env_from(entry, f"{env_path}[{index}]")
        for index, entry in enumerate(_list(fields.get("envFrom"), env_path, required=False))
    ]
    names = [entry.name for entry in env]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        _fail(env_path, f"the name {duplicate!r} is used more than once")
    requests_path = f"{path}.requests"
    requests = [
        _request(request, f"{requests_path}[{index}]")
        for index, request in enumerate(_list(fields.get("requests"), requests_path, required=True))
    ]
    return Webhook(
        type=_string(fields.get("type"), f"{path}.type", required=True).strip(),
        subscription_id=_string(
            fields.get("subscriptionID"), f"{path}.subscriptionID", required=True
        ).strip(),
        send_started=_flag(fields.get("sendStarted"), f"{path}.sendStarted", True),
        send_finished=_flag(fields.get("sendFinished"), f"{path}.sendFinished", False),
        env_from=tuple(env),
        requests=tuple(requests),
    )


def parse_webhook_config(content: str | bytes) -> WebhookConfig:
    """Parse a ``webhook.yaml`` (spec §7.2; the module docstring lists the differences from Keptn).

    Unknown keys are ignored, as Keptn ignored them.

    Raises:
        InvalidWebhookConfigError: ``Webhook configuration invalid: <path>: <what is wrong>``
            with ``field`` set to the path (e.g. ``spec.webhooks[0].requests[1].method``).
    """
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            _fail(WEBHOOK_FILE, "the file is not UTF-8 text")
    try:
        document = load_yaml(content, what=WEBHOOK_FILE, field=WEBHOOK_FILE)
    except InvalidInputError as exc:
        raise InvalidWebhookConfigError(exc.message, field=WEBHOOK_FILE) from None
    if document is None:
        _fail(WEBHOOK_FILE, "the file is empty")
    top = _mapping(document, WEBHOOK_FILE)
    api_version = top.get("apiVersion")
    if api_version == WEBHOOK_ALPHA_API_VERSION:
        _fail(
            "apiVersion",
            f"{WEBHOOK_ALPHA_API_VERSION} (requests as curl commands) is not supported; convert the "
            f"file to {WEBHOOK_API_VERSION} (requests as url, method, headers and payload), e.g. with "
            "Keptn's `keptn migrate-webhooks`",
        )
    if api_version != WEBHOOK_API_VERSION:
        found = "nothing" if api_version is None else describe(api_version)
        _fail("apiVersion", f"expected {WEBHOOK_API_VERSION!r}, found {found}")
    kind = top.get("kind")
    if kind not in _KINDS:
        _fail("kind", f"expected 'WebhookConfig', found {'nothing' if kind is None else describe(kind)}")
    metadata = top.get("metadata")
    metadata = {} if metadata is None else _mapping(metadata, "metadata")
    name = _string(metadata.get("name"), "metadata.name", required=False)
    webhooks = _list(_mapping(top.get("spec"), "spec").get("webhooks"), "spec.webhooks", required=True)
    return WebhookConfig(
        api_version=api_version,
        kind=kind,
        name=name,
        webhooks=tuple(_webhook(item, f"spec.webhooks[{index}]") for index, item in enumerate(webhooks)),
    )


def is_json_payload(payload: str, headers: Iterable[Header | tuple[str, str]]) -> bool:
    """Whether ``payload`` is JSON, so that :func:`render` must escape values inside its strings.

    A ``Content-Type`` header decides when there is one (``application/json`` or ``*/*+json``);
    otherwise the payload is JSON if it parses as JSON with every action replaced by ``0``.
    """
    for header in headers:
        key, value = (header.key, header.value) if isinstance(header, Header) else header
        if key.lower() == "content-type" and "{{" not in value:
            media = value.split(";", 1)[0].strip().lower()
            return media == "application/json" or media.endswith("+json")
    try:
        probe = "".join(part if isinstance(part, str) else "0" for part in parse_template(payload))
        json.loads(probe)
    except (TemplateError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class RenderedRequest:
    """A :class:`WebhookRequest` with its templates filled in, ready for ``activities.outbound.send``."""

    method: Method
    url: str
    headers: tuple[tuple[str, str], ...]
    body: str | None
    """None when the payload is empty."""


def render_request(
    request: WebhookRequest, context: Mapping[str, Any], *, path: str = "request"
) -> RenderedRequest:
    """Render the url, the header values and the payload of one request.

    Raises:
        TemplateError: naming ``<path>.url``, ``<path>.headers[i].value`` or ``<path>.payload``; also
            for a header value that renders with a line break (header injection).
    """
    headers = []
    for index, header in enumerate(request.headers):
        field = f"{path}.headers[{index}].value"
        value = render(header.value, context, json_escape=False, field=field)
        if any(char in value for char in "\r\n\0"):
            raise TemplateError(f"{field}: the rendered value contains a line break or NUL", field=field)
        headers.append((header.key, value))
    url = render(request.url, context, json_escape=False, field=f"{path}.url").strip()
    body = None
    if request.payload:
        as_json = is_json_payload(request.payload, request.headers)
        body = render(request.payload, context, json_escape=as_json, field=f"{path}.payload")
    return RenderedRequest(method=request.method, url=url, headers=tuple(headers), body=body)
