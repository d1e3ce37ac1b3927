"""The one error hierarchy of Capstan.

Every error Capstan raises on purpose derives from :class:`KeptnError`; the gateway maps the
branches to HTTP status codes in one place (``api/errors.py``)::

    KeptnError                      base; carries a human message
    ├── InvalidInputError           the client sent something unusable (HTTP 400)
    │   ├── InvalidEventError       a CloudEvent broke Keptn's rules
    │   ├── InvalidShipyardError    a shipyard failed schema or name validation
    │   └── InvalidNameError        a project/stage/service name breaks Keptn's name rules
    ├── UnauthorizedError           missing, unknown or revoked API token (HTTP 401)
    ├── ForbiddenError              a valid token lacks the scope or project a request needs (HTTP 403)
    ├── NotFoundError               a named thing does not exist (HTTP 404)
    ├── ConflictError               a create collided with an existing thing (HTTP 409)
    └── UnavailableError            a dependency (PostgreSQL, Temporal) is down (HTTP 503)

Errors carry the field they concern (``field``) so that responses can name it, and optional
Keptn scope attributes for logging.
"""

from __future__ import annotations


class KeptnError(Exception):
    """Base of every error Capstan raises deliberately.

    Args:
        message: what is wrong, in words a user can act on.
        field: the input field concerned, if any (e.g. ``data.project``).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class InvalidInputError(KeptnError):
    """The client sent input Capstan cannot accept."""


class InvalidEventError(InvalidInputError):
    """A CloudEvent does not follow Keptn's event rules."""


class InvalidShipyardError(InvalidInputError):
    """A shipyard file failed validation."""


class InvalidNameError(InvalidInputError):
    """A project, stage or service name breaks Keptn's naming rules."""


class UnauthorizedError(KeptnError):
    """The request carried no valid API token."""


class ForbiddenError(KeptnError):
    """The request carried a valid API token that may not do this (scope or project restriction).

    Kept apart from :class:`UnauthorizedError` so clients can tell "fix your token" (401) from
    "ask for a token with more rights" (403).
    """


class NotFoundError(KeptnError):
    """A named project, stage, service, resource or event does not exist."""


class ConflictError(KeptnError):
    """Creating something collided with something that already exists."""


class UnavailableError(KeptnError):
    """A dependency Capstan needs (PostgreSQL, Temporal) cannot be reached."""
