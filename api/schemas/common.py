"""What every area shares: Keptn's error body and its offset paging."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from keptn.errors import InvalidInputError

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
"""Keptn's default ``pageSize``."""

PG_BIGINT_MAX = 2**63 - 1
"""The largest ``pageSize`` and ``nextPageKey``: PostgreSQL's LIMIT and OFFSET are bigints."""


class ErrorBody(BaseModel):
    """Keptn's error body (``models.Error``)."""

    code: int = Field(description="the HTTP status code")
    message: str = Field(description="what is wrong, naming the field")


_DESCRIPTIONS = {
    400: "invalid input; the message names the parameter or field",
    401: "missing, unknown or revoked x-token",
    403: "the token lacks the scope this route needs, or is restricted to another project",
    404: "a named project, stage, service, resource or commit does not exist",
    409: "the thing to create exists already",
    429: "too many failed authentication attempts from this address; see Retry-After",
    503: "PostgreSQL is unavailable",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries with Keptn's error body for the given status codes."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


def page_offset(next_page_key: str | None, *, field: str = "nextPageKey") -> int:
    """The offset a ``nextPageKey`` stands for (Keptn keys are decimal offsets; empty is 0).

    Raises:
        InvalidInputError: the key is not a non-negative integer.
    """
    if next_page_key is None or next_page_key == "":
        return 0
    # isdigit() alone also accepts non-ASCII digits ("²" fails int()), and PostgreSQL's OFFSET is
    # a bigint: a larger key is no key a page ever returned.
    digits = next_page_key.isascii() and next_page_key.isdigit() and len(next_page_key) <= 19
    offset = int(next_page_key) if digits else -1
    if not 0 <= offset <= PG_BIGINT_MAX:
        raise InvalidInputError(
            f"{field} must be a non-negative integer (the key of a page returned earlier) "
            f"of at most {PG_BIGINT_MAX}, got {next_page_key!r}",
            field=field,
        )
    return offset


def paginate(items: Sequence[T], page_size: int, next_page_key: str | None) -> tuple[list[T], str, int]:
    """Cut one page out of a list the way Keptn's shipyard-controller and resource-service do.

    Returns:
        The page, the key of the next page (``"0"`` when this is the last page, as Keptn answers)
        and the total number of items.

    Raises:
        InvalidInputError: the key is not a non-negative integer.
    """
    offset = page_offset(next_page_key)
    following = offset + page_size
    return list(items[offset:following]), str(following) if following < len(items) else "0", len(items)
