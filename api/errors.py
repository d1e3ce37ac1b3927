"""The one place where errors become HTTP responses.

Every error body has Keptn's shape, ``{"code": <HTTP status>, "message": "..."}``, and the message
names the offending field. A client mistake is never a 500: request validation errors become 400,
unknown routes 404, a dependency that is down 503, and only a real bug is a 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.bridge.errors import error_page, is_bridge_request, login_required
from api.bridge.session import LoginRequired
from keptn.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    KeptnError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
)

log = structlog.get_logger(__name__)

# Most specific first: the first class an error is an instance of decides its status.
STATUS_BY_ERROR: tuple[tuple[type[KeptnError], int], ...] = (
    (InvalidInputError, 400),
    (UnauthorizedError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (UnavailableError, 503),
)

# asyncpg raises these (or plain OSError) when PostgreSQL is unreachable or restarting.
DATABASE_DOWN_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.exceptions.PostgresConnectionError,  # class 08: ConnectionDoesNotExist, ConnectionFailure, …
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    # A pool connection cut while PostgreSQL shuts down can fail its reset on release with "cannot
    # switch to state …; another operation is in progress" (found by tests/chaos/test_faults.py).
    asyncpg.exceptions.InternalClientError,
)


def error_body(code: int, message: str) -> dict[str, Any]:
    """Keptn's error body.

    A message that quotes client input may hold a lone surrogate (from a JSON or YAML unicode
    escape), which UTF-8 cannot encode: it is written as that escape instead of failing the answer.
    """
    return {"code": code, "message": message.encode("utf-8", "backslashreplace").decode("utf-8")}


def error_response(code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error response with Keptn's body."""
    return JSONResponse(error_body(code, message), status_code=code, headers=headers)


def status_for(error: KeptnError) -> int:
    """The HTTP status an error maps to (500 for a KeptnError of no known branch)."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 500


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """Turn pydantic/FastAPI validation errors into one message naming each field.

    ``("query", "pageSize")`` becomes ``query parameter 'pageSize'``, ``("body", "data", "project")``
    becomes ``field 'data.project'``.
    """
    parts: list[str] = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ())]
        where, path = (loc[0], loc[1:]) if loc else ("body", [])
        name = ".".join(path)
        if where == "body":
            subject = f"field '{name}'" if name else "request body"
        elif where in ("query", "path", "header", "cookie"):
            subject = f"{where} parameter '{name}'"
        else:
            subject = f"'{'.'.join(loc)}'"
        parts.append(f"{subject}: {err.get('msg', 'invalid')}")
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return "; ".join(parts) or "invalid request"


async def _keptn_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeptnError)
    status = status_for(exc)
    if is_bridge_request(request):
        return error_page(request, status, exc.message)
    headers = {"WWW-Authenticate": "x-token"} if status == 401 else None
    return error_response(status, exc.message, headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if is_bridge_request(request):
        return error_page(request, 400, describe_validation_errors(exc.errors()))
    return error_response(400, describe_validation_errors(exc.errors()))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if is_bridge_request(request):
        return error_page(request, exc.status_code, message, dict(exc.headers or {}))
    return error_response(exc.status_code, message, dict(exc.headers or {}))


# PostgreSQL text cannot hold a NUL byte (or characters the database encoding lacks); a client
# that sends one made a mistake, which is a 400, not a 500.
UNSTORABLE_TEXT_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.exceptions.CharacterNotInRepertoireError,
    asyncpg.exceptions.UntranslatableCharacterError,
)


async def _unstorable_text(request: Request, _: Exception) -> Response:
    message = "a parameter or field contains a NUL byte or a character that cannot be stored"
    if is_bridge_request(request):
        return error_page(request, 400, message)
    return error_response(400, message)


async def _data_error(request: Request, exc: Exception) -> Response:
    # asyncpg could not encode an argument: from client text, a lone surrogate (a JSON "\\ud800"
    # escape), which UTF-8 cannot hold. Any other encoding failure is a bug.
    if isinstance(exc.__cause__, UnicodeEncodeError):
        return await _unstorable_text(request, exc)
    return await _unexpected(request, exc)


async def _database_down(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable", path=request.url.path, error=repr(exc))
    message = "the event store (PostgreSQL) is unavailable; retry later"
    if is_bridge_request(request):
        return error_page(request, 503, message)
    return error_response(503, message)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.url.path, error=repr(exc))
    if is_bridge_request(request):
        return error_page(request, 500, "internal error")
    return error_response(500, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error Keptn's body."""
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(KeptnError, _keptn_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for cls in DATABASE_DOWN_ERRORS:
        app.add_exception_handler(cls, _database_down)
    for cls in UNSTORABLE_TEXT_ERRORS:
        app.add_exception_handler(cls, _unstorable_text)
    app.add_exception_handler(asyncpg.exceptions.DataError, _data_error)  # subclasses above keep theirs
    app.add_exception_handler(Exception, _unexpected)
