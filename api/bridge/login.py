"""Logging in to the Bridge with an API token, and out again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import principal_for_token
from api.bridge.session import COOKIE, CsrfUserDep, safe_next
from api.bridge.templating import templates
from api.deps import ServicesDep
from keptn.errors import UnauthorizedError

router = APIRouter()

SESSION_SECONDS = 12 * 3600
"""How long the browser keeps the session cookie; the token's own validity is checked per request."""


def _login_page(request: Request, next_path: str, message: str | None, status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "login.html",
        {"next": safe_next(next_path), "message": message, "user": None},
        status_code=status,
    )


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/", reason: str | None = None) -> HTMLResponse:
    """The login form."""
    return _login_page(request, next, reason)


@router.post("/login", response_model=None)
async def login(
    request: Request,
    services: ServicesDep,
    token: Annotated[str, Form(description="an API token")] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the token, keep it in the session cookie and go on to ``next``."""
    address = request.client.host if request.client else "unknown"
    wait = services.auth_limiter.retry_after(address)
    if wait is not None:
        message = f"too many failed attempts from {address}; retry in {wait} seconds"
        refused = _login_page(request, next, message, status=429)
        refused.headers["Retry-After"] = str(wait)
        return refused
    token = token.strip()
    if not token:
        return _login_page(request, next, "field 'token': enter an API token", status=400)
    try:
        await principal_for_token(services, token)
    except UnauthorizedError:
        services.auth_limiter.record_failure(address)
        return _login_page(request, next, "field 'token': this API token is not valid", status=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", response_model=None)
async def logout(_: CsrfUserDep) -> Response:
    """Forget the session cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response
