"""A small client of the Capstan (Keptn-compatible) REST API, shared by the ``capstan`` commands.

Commands talk to a running control plane the way Keptn's CLI did: a base URL ending in ``/api``
and the admin token in the ``x-token`` header. Every failure, an error answer in Keptn's
``{"code", "message"}`` shape as well as a gateway that cannot be reached, becomes one
:class:`APIError` whose text is a single line a command can print as it is.

Commands add the connection options with :data:`ApiUrlOption` and :data:`TokenOption` (both
default None) and build the client with :func:`connect`, which resolves each of URL and token in
this order: the option or its environment variable, then what ``capstan auth`` stored, then the
defaults (:data:`DEFAULT_API_URL` and the token file of ``capstan up``'s data dir).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any, Self

import httpx
import typer

from capstan.commands.cli_config import ConfigError, config_path, load_auth
from capstan.commands.common import fail, load_settings
from capstan.settings import resolve_api_token

DEFAULT_API_URL = "http://127.0.0.1:8080/api"
"""Where ``capstan up`` serves the API with its default settings."""

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for connecting and for each answer."""

MAX_PAGES = 1000
"""Stop paging after this many pages (a server repeating its page keys must not loop us forever)."""

ApiUrlOption = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        envvar="CAPSTAN_API_URL",
        show_envvar=False,
        help=f"Base URL of the Capstan API (env CAPSTAN_API_URL; default: what `capstan auth` stored, "
        f"else {DEFAULT_API_URL})",
    ),
]
"""The ``--api-url`` option; give it the default None (then :func:`connect` resolves it)."""

TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="CAPSTAN_API_TOKEN",
        show_envvar=False,
        help="API token sent as x-token (env CAPSTAN_API_TOKEN; default: what `capstan auth` stored, "
        "else <CAPSTAN_DATA_DIR>/api-token)",
    ),
]
"""The ``--token`` option; give it the default None (then :func:`connect` resolves it)."""


class APIError(Exception):
    """A request to the API failed; ``str(error)`` is one line fit for the user.

    Args:
        message: what went wrong, one line.
        status: the HTTP status of the answer, None when no answer came.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _error_message(response: httpx.Response) -> str:
    """The message of an error answer: Keptn's ``message`` if the body has one, else the body."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = body.get("message") or body.get("detail")
        if isinstance(message, str) and message.strip():
            return f"{_one_line(message)} (HTTP {status})"
    text = _one_line(response.text)
    reason = response.reason_phrase or "error"
    return f"HTTP {status} {reason}" + (f": {text}" if text else "")


class CapstanAPI:
    """A synchronous client of one control plane's API.

    Args:
        base_url: the API's base URL, e.g. ``http://127.0.0.1:8080/api``.
        token: the API token, sent as ``x-token``.
        timeout: seconds to wait for connecting and for each answer.
        transport: an httpx transport to use instead of the network (for tests).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"x-token": token, "accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one request and return the decoded JSON answer (None for an empty body).

        Args:
            method: the HTTP method.
            path: the path below the base URL, e.g. ``/v1/event``.
            params: query parameters; None values are left out.
            json: the request body, sent as JSON unless None.

        Raises:
            APIError: no answer, an answer with an error status, or one that is not JSON.
        """
        query = {key: value for key, value in (params or {}).items() if value is not None}
        try:
            response = self._http.request(method, path.lstrip("/"), params=query, json=json)
        except httpx.TimeoutException as exc:
            raise APIError(f"the Capstan API at {self.base_url} did not answer in time ({exc!r})") from exc
        except httpx.HTTPError as exc:
            reason = _one_line(str(exc)) or type(exc).__name__
            raise APIError(f"cannot reach the Capstan API at {self.base_url}: {reason}") from exc
        if response.is_error:
            raise APIError(_error_message(response), status=response.status_code)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise APIError(
                f"the answer of {method} {response.request.url} is not JSON: {_one_line(response.text, 120)}",
                status=response.status_code,
            ) from exc

    def get(self, path: str, *, params: Mapping[str, str | int] | None = None) -> Any:
        """``GET`` a path; see :meth:`request`."""
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any) -> Any:
        """``POST`` a JSON body to a path; see :meth:`request`."""
        return self.request("POST", path, json=json)

    def delete(self, path: str, *, params: Mapping[str, str | int] | None = None) -> Any:
        """``DELETE`` a path; see :meth:`request`."""
        return self.request("DELETE", path, params=params)

    def pages(
        self, path: str, items: str, *, params: Mapping[str, str | int] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a Keptn-paged list (``{<items>: [...], nextPageKey}``), page after page.

        Args:
            path: the list's path.
            items: the name of the list in each page, e.g. ``events``.
            params: filters; ``nextPageKey`` is added per page.

        Raises:
            APIError: a page could not be read or has an unexpected shape.
        """
        key: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            page = self.get(path, params={**(params or {}), **({"nextPageKey": key} if key else {})})
            found = page.get(items) if isinstance(page, dict) else None
            if not isinstance(found, list):
                raise APIError(f"unexpected answer of GET {path}: no '{items}' list")
            yield from (item for item in found if isinstance(item, dict))
            following = page.get("nextPageKey")
            if not following or following == "0" or following in seen:
                return
            seen.add(str(following))
            key = str(following)

    def open_triggered(
        self,
        event_type: str,
        *,
        project: str | None = None,
        stage: str | None = None,
        service: str | None = None,
        event_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Open ``.triggered`` events of one type (``GET /controlPlane/v1/event/triggered/<type>``).

        Raises:
            APIError: the list could not be read (an unknown project is a 404).
        """
        filters = {"project": project, "stage": stage, "service": service, "eventID": event_id}
        params = {name: value for name, value in filters.items() if value}
        return list(self.pages(f"/controlPlane/v1/event/triggered/{event_type}", "events", params=params))

    def send_event(self, event: dict[str, Any]) -> str:
        """Send an event (``POST /v1/event``) and return the Keptn context it belongs to.

        Raises:
            APIError: the event was refused.
        """
        answer = self.post("/v1/event", event)
        context = answer.get("keptnContext") if isinstance(answer, dict) else None
        return str(context or event.get("shkeptncontext") or "")


@dataclass(frozen=True)
class Connection:
    """Where a command connects, with a token, and where each came from (for ``capstan auth --status``)."""

    api_url: str
    token: str
    url_source: str
    """``option`` (``--api-url`` or CAPSTAN_API_URL), ``config`` (``capstan auth``) or ``default``."""
    token_source: str
    """``option`` (``--token`` or CAPSTAN_API_TOKEN), ``config`` or ``data-dir``."""


def _same_url(first: str, second: str) -> bool:
    return first.rstrip("/") == second.rstrip("/")


def _data_dir_token() -> str:
    """The admin token ``capstan up`` keeps in ``<CAPSTAN_DATA_DIR>/api-token``; else a one-line error."""
    settings = load_settings()
    if settings.api_token is not None and not settings.api_token.get_secret_value():
        settings = settings.model_copy(update={"api_token": None})  # CAPSTAN_API_TOKEN="" is unset
    try:
        token = resolve_api_token(settings, create=False)
    except (OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            fail(f"{exc} (or pass --token, or run `capstan auth`)")
        fail(f"no API token: {exc}")
    if not token:
        fail(f"no API token: {settings.token_file} is empty (set CAPSTAN_API_TOKEN or pass --token)")
    return token


def resolve_connection(api_url: str | None, token: str | None) -> Connection:
    """The URL and token a command uses: option/env, else ``capstan auth``'s config, else defaults.

    The stored token goes only with the stored URL: with another ``--api-url`` it is not sent
    (a token of one control plane is no use to, and should not leak to, another).
    """
    stored = None
    if not api_url or not token:
        try:
            stored = load_auth()
        except ConfigError as exc:
            fail(str(exc))
    if api_url:
        url, url_source = api_url, "option"
    elif stored is not None:
        url, url_source = stored.api_url, "config"
    else:
        url, url_source = DEFAULT_API_URL, "default"
    if not url.startswith(("http://", "https://")):
        where = f" (stored in {config_path()})" if url_source == "config" else ""
        fail(f"invalid --api-url {url!r}{where}: it must start with http:// or https://")
    if token:
        return Connection(url, token, url_source, "option")
    if stored is not None and _same_url(stored.api_url, url):
        return Connection(url, stored.token, url_source, "config")
    return Connection(url, _data_dir_token(), url_source, "data-dir")


def connect(api_url: str | None, token: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> CapstanAPI:
    """The client a command uses, from its ``--api-url`` and ``--token`` options (None: not given).

    See :func:`resolve_connection` for where a missing URL or token comes from; if no token is
    found anywhere, the command ends with a one-line error.
    """
    connection = resolve_connection(api_url, token)
    return CapstanAPI(connection.api_url, connection.token, timeout=timeout)
