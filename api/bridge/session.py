"""Who is looking at the Bridge: an API token kept in a cookie, and the CSRF check of its forms.

Login takes an API token (the admin token or a scoped one from ``POST /api/v1/tokens``) and keeps
it in an ``HttpOnly``, ``SameSite=Strict`` cookie, so every page sees exactly what that token may
see through the API (``Principal``: scopes and project restriction). A missing, revoked or wrong
token sends the browser back to the login page.

Forms and htmx requests that change something carry a CSRF token derived from the session's API
token (HMAC), checked by :func:`require_csrf`; ``SameSite=Strict`` alone would leave older
browsers and same-site subdomains open.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, HTTPException, Request

from api.auth import Principal, principal_for_token
from api.deps import ServicesDep
from keptn.errors import ForbiddenError, UnauthorizedError

COOKIE = "capstan_bridge_token"
"""Cookie that holds the session's API token."""

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"


class LoginRequired(Exception):
    """The request has no valid session; the app answers with a redirect to the login page.

    Args:
        next_path: where to go back after logging in.
        reason: shown on the login page (e.g. "the token was revoked").
    """

    def __init__(self, next_path: str, reason: str | None = None) -> None:
        super().__init__(reason or "login required")
        self.next_path = next_path
        self.reason = reason


def csrf_token(api_token: str) -> str:
    """The CSRF token of a session: stable per API token, useless without it."""
    return hmac.new(api_token.encode(), b"capstan-bridge-csrf", hashlib.sha256).hexdigest()[:40]


def safe_next(path: str | None) -> str:
    """``path`` if it is a local path (no scheme, no ``//host``), else ``/``: no open redirects."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    # Browsers drop tabs and newlines from URLs, so "/\t/evil.com" would become "//evil.com".
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return "/"
    return path


def login_url(next_path: str, reason: str | None = None) -> str:
    """The login page's URL that comes back to ``next_path``."""
    url = f"/login?next={quote(safe_next(next_path), safe='/')}"
    return url + (f"&reason={quote(reason)}" if reason else "")


@dataclass(frozen=True)
class BridgeUser:
    """The logged-in caller of a Bridge page."""

    principal: Principal
    csrf: str

    @property
    def name(self) -> str:
        """Shown in the page header."""
        return self.principal.name


async def bridge_user(request: Request, services: ServicesDep) -> BridgeUser:
    """The caller of a Bridge page, from the session cookie.

    Raises:
        LoginRequired: no cookie, or a token that is no longer valid.
    """
    here = _return_path(request)
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired(here)
    # The cookie is as good as an x-token header, so guessing through it is rate limited alike.
    address = request.client.host if request.client else "unknown"
    wait = services.auth_limiter.retry_after(address)
    if wait is not None:
        raise HTTPException(
            status_code=429,
            detail=f"too many failed authentication attempts from {address}; retry in {wait} seconds",
            headers={"Retry-After": str(wait)},
        )
    try:
        principal = await principal_for_token(services, token)
    except UnauthorizedError as exc:
        services.auth_limiter.record_failure(address)
        raise LoginRequired(here, _session_reason(exc.message)) from exc
    return BridgeUser(principal=principal, csrf=csrf_token(token))


def _return_path(request: Request) -> str:
    """Where to come back after logging in: this page, or for a form post the page it came from.

    Going back to a POST-only URL with a GET would only show a 405 page.
    """
    if request.method in ("GET", "HEAD"):
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    current = request.headers.get("hx-current-url") or request.headers.get("referer") or "/"
    parsed = urlsplit(current)
    if parsed.netloc and parsed.netloc != request.url.netloc:
        return "/"
    return safe_next(parsed.path + (f"?{parsed.query}" if parsed.query else ""))


def _session_reason(message: str) -> str:
    """The API's message for a bad token, worded for a session (there is no x-token header here)."""
    return "your session ended: " + message.replace(" in x-token header", "")


BridgeUserDep = Annotated[BridgeUser, Depends(bridge_user)]


async def require_csrf(request: Request, user: BridgeUserDep) -> BridgeUser:
    """The caller of a state-changing Bridge request, whose CSRF token (header or form) matched.

    Raises:
        ForbiddenError: the CSRF token is missing or wrong.
    """
    given = request.headers.get(CSRF_HEADER)
    if not given and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    if not given or not hmac.compare_digest(given, user.csrf):
        raise ForbiddenError("missing or wrong CSRF token: reload the page and try again", field=CSRF_FIELD)
    return user


CsrfUserDep = Annotated[BridgeUser, Depends(require_csrf)]
