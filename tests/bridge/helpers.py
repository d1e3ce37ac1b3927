"""Helpers shared by the Bridge tests: logging in through the form, reading the DOM contract."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import httpx

from api.bridge.session import COOKIE

TOKENS = "/api/v1/tokens"


async def login(api: httpx.AsyncClient, token: str) -> None:
    """Log in through ``POST /login``; the client keeps the session cookie for later requests."""
    response = await api.post("/login", data={"token": token, "next": "/"})
    assert response.status_code == 303, response.text
    assert COOKIE in response.cookies or api.cookies.get(COOKIE), "no session cookie set"
    if not api.cookies.get(COOKIE):
        api.cookies.set(COOKIE, response.cookies[COOKIE])


async def create_token(
    api: httpx.AsyncClient, name: str, scopes: list[str], project: str | None = None
) -> str:
    """A new API token (``api`` must send the admin ``x-token``); returns the secret token."""
    body: dict[str, Any] = {"name": name, "scopes": scopes}
    if project is not None:
        body["project"] = project
    response = await api.post(TOKENS, json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


class _Collector(HTMLParser):
    def __init__(self, testid: str) -> None:
        super().__init__(convert_charrefs=True)
        self.testid = testid
        self.found: list[dict[str, str]] = []
        # Open elements with a matching data-testid, to collect their text (index into found).
        self.stack: list[tuple[str, int | None]] = []
        self.texts: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        index: int | None = None
        if values.get("data-testid") == self.testid:
            index = len(self.found)
            self.found.append(values)
            self.texts.append([])
        if tag not in _VOID:
            self.stack.append((tag, index))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if values.get("data-testid") == self.testid:
            self.found.append(values)
            self.texts.append([])

    def handle_endtag(self, tag: str) -> None:
        # Pop up to the matching open tag (tolerates unclosed <li>, <p> ...).
        for position in range(len(self.stack) - 1, -1, -1):
            if self.stack[position][0] == tag:
                del self.stack[position:]
                return

    def handle_data(self, data: str) -> None:
        for _, index in self.stack:
            if index is not None:
                self.texts[index].append(data)


_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)


def testids(html: str, testid: str) -> list[dict[str, str]]:
    """The attributes of every element with ``data-testid=testid``, in document order.

    Each dict also holds the element's text content (whitespace collapsed) under the key ``text``
    (no HTML attribute can be named so: attribute names never collide with it in the contract).
    """
    parser = _Collector(testid)
    parser.feed(html)
    parser.close()
    return [
        {**attrs, "text": " ".join("".join(text).split())}
        for attrs, text in zip(parser.found, parser.texts, strict=True)
    ]


testids.__test__ = False  # type: ignore[attr-defined]  # a helper, though pytest would collect its name


def browser(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """A cookie-keeping client without ``x-token`` on the same app as ``api`` (redirects not followed)."""
    return httpx.AsyncClient(transport=api._transport, base_url=str(api.base_url))
