"""Errors on Bridge pages: HTML for people instead of the API's JSON, and the login redirect."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.bridge.session import COOKIE, LoginRequired, csrf_token, login_url
from api.bridge.templating import templates


def is_bridge_request(request: Request) -> bool:
    """Whether a request is for a Bridge page (everything outside ``/api`` and the probes)."""
    path = request.url.path
    return not (path == "/api" or path.startswith("/api/") or path in ("/health", "/ready"))


def error_page(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """The error page, or for an htmx request the message alone (htmx swaps it into the page).

    The page keeps the navigation when the browser has a session cookie (its CSRF token is derived
    from the cookie alone, so no database call is needed while, say, the database is down).
    """
    if request.headers.get("hx-request"):
        return HTMLResponse(
            templates.get_template("_error_line.html").render(message=message),
            status_code=status,
            headers=headers,
        )
    token = request.cookies.get(COOKIE)
    csrf = csrf_token(token) if token else None
    context = {"status": status, "message": message, "user": None, "csrf": csrf}
    return templates.TemplateResponse(request, "error.html", context, status_code=status, headers=headers)


async def login_required(request: Request, exc: Exception) -> Response:
    """Send the browser to the login page; htmx follows ``HX-Redirect`` instead of a 303."""
    assert isinstance(exc, LoginRequired)
    target = login_url(exc.next_path, exc.reason)
    response: Response
    if request.headers.get("hx-request"):
        response = Response(status_code=200, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    if request.cookies.get(COOKIE):
        # The cookie's token is no longer valid: forget it, so that pages stop presenting it.
        response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response
