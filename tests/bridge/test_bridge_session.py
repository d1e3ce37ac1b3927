"""Logging in to the Bridge and out again: cookies, redirects, CSRF, rate limiting, error pages."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest_asyncio
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from api.bridge.session import COOKIE, csrf_token, login_url, safe_next
from api.main import create_app
from capstan.settings import Settings
from store.tokens import parse_token
from tests.bridge.helpers import create_token, login

ADMIN = "bridge-session-admin"
LIMIT = 3
PAGE = "/project/demo/service/carts/evaluations"
"""A page that needs a session (checked before it finds that the project does not exist)."""


@dataclass
class Gateway:
    app: FastAPI
    admin: httpx.AsyncClient
    """Sends the admin x-token, for the API."""

    def browser(self) -> httpx.AsyncClient:
        """A client without x-token that keeps cookies, like a browser (redirects not followed)."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://bridge")


@pytest_asyncio.fixture
async def gateway(db_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[Gateway]:
    settings = Settings(
        database_url=db_url,
        api_token=ADMIN,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"bridge-session-{uuid.uuid4()}",
        auth_failures_per_minute=LIMIT,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bridge", headers={"x-token": ADMIN}
        ) as admin:
            yield Gateway(app=app, admin=admin)


def set_cookie_header(response: httpx.Response) -> str:
    (header,) = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    return header


async def test_the_login_form_renders_with_the_token_field_and_the_next_page(gateway: Gateway):
    async with gateway.browser() as browser:
        response = await browser.get("/login", params={"next": "/project/a?x=1"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'id="token"' in page and 'name="token"' in page
    assert 'type="submit"' in page
    assert 'name="next" value="/project/a?x=1"' in page
    assert "Log out" not in page  # nobody is logged in


async def test_a_page_without_session_redirects_to_login_and_back(gateway: Gateway):
    async with gateway.browser() as browser:
        response = await browser.get(PAGE, params={"a": "b"})
        assert response.status_code == 303
        target = response.headers["location"]
        assert urlsplit(target).path == "/login"
        assert parse_qs(urlsplit(target).query)["next"] == [f"{PAGE}?a=b"]
        # htmx cannot follow a 303 into a full page: it gets HX-Redirect
        fragment = await browser.get(PAGE, headers={"hx-request": "true"})
    assert fragment.status_code == 200
    assert urlsplit(fragment.headers["hx-redirect"]).path == "/login"


async def test_the_admin_token_logs_in_with_a_strict_http_only_cookie(gateway: Gateway):
    async with gateway.browser() as browser:
        response = await browser.post("/login", data={"token": ADMIN, "next": "/integrations"})
        assert response.status_code == 303
        assert response.headers["location"] == "/integrations"
        cookie = set_cookie_header(response).lower()
        assert cookie.startswith(f"{COOKIE}=")
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "path=/" in cookie
        assert "secure" not in cookie  # plain http: a Secure cookie would never come back
        page = await browser.get(PAGE)  # past the login: the project is what is missing
        assert page.status_code == 404
        assert "project &#39;demo&#39; not found" in page.text


OFFSITE = (
    "//evil.com",
    "https://evil.com",
    "/\\evil.com",
    "evil.com",
    "/\t/evil.com",
    "",
    "javascript:alert(1)",
)


async def test_login_goes_on_to_local_pages_only(gateway: Gateway):
    async with gateway.browser() as browser:
        for target in OFFSITE:
            response = await browser.post("/login", data={"token": ADMIN, "next": target})
            assert response.status_code == 303
            assert response.headers["location"] == "/", target


def test_safe_next_and_login_url():
    assert safe_next("/project/a?stage=dev") == "/project/a?stage=dev"
    assert safe_next(None) == "/"
    assert safe_next("/\n/evil.com") == "/"
    url = login_url("/project/a?stage=dev&x=1", "the token was revoked")
    query = parse_qs(urlsplit(url).query)
    assert query == {"next": ["/project/a?stage=dev&x=1"], "reason": ["the token was revoked"]}
    assert login_url("https://evil.com") == "/login?next=/"


async def test_a_wrong_token_is_a_401_page_naming_the_field_and_counts_towards_429(gateway: Gateway):
    async with gateway.browser() as browser:
        empty = await browser.post("/login", data={"token": "  "})
        assert empty.status_code == 400
        assert "field &#39;token&#39;" in empty.text or "field 'token'" in empty.text
        for _ in range(LIMIT):
            wrong = await browser.post("/login", data={"token": "cap_nope.nope", "next": "/x"})
            assert wrong.status_code == 401
            assert wrong.headers["content-type"].startswith("text/html")
            assert "this API token is not valid" in wrong.text
            assert 'value="/x"' in wrong.text  # the form still goes back to where it was going
            assert COOKIE not in wrong.headers.get("set-cookie", "")
        blocked = await browser.post("/login", data={"token": ADMIN})
        assert blocked.status_code == 429  # not even the right token is checked now
        assert "too many failed attempts" in blocked.text
        assert int(blocked.headers["retry-after"]) > 0
        # the budget is the API's too: the same address is refused there
        api = await browser.get("/api/v1/tokens", headers={"x-token": ADMIN})
        assert api.status_code == 429


async def test_guessing_through_the_cookie_is_rate_limited_too(gateway: Gateway):
    async with gateway.browser() as browser:
        for _ in range(LIMIT):
            browser.cookies.set(COOKIE, "cap_guess.guess")
            response = await browser.get(PAGE)
            assert response.status_code == 303
            assert "reason=" in response.headers["location"]
            assert f'{COOKIE}=""' in response.headers["set-cookie"]  # the bad cookie is dropped
        browser.cookies.set(COOKIE, ADMIN)
        blocked = await browser.get(PAGE)
    assert blocked.status_code == 429
    assert blocked.headers["content-type"].startswith("text/html")


async def test_a_scoped_token_logs_in_and_its_revocation_ends_the_session(gateway: Gateway):
    token = await create_token(gateway.admin, "viewer", ["events:read", "projects:read"])
    parts = parse_token(token)
    assert parts is not None
    token_id = parts.id
    async with gateway.browser() as browser:
        await login(browser, token)
        page = await browser.get(PAGE)
        assert page.status_code == 404
        revoked = await gateway.admin.delete(f"/api/v1/tokens/{token_id}")
        assert revoked.status_code == 200, revoked.text
        response = await browser.get(PAGE)
        assert response.status_code == 303
        target = urlsplit(response.headers["location"])
        assert target.path == "/login"
        query = parse_qs(target.query)
        assert query["next"] == [PAGE]
        (reason,) = query["reason"]
        assert "revoked" in reason and "x-token" not in reason
        shown = await browser.get(response.headers["location"])
    assert shown.status_code == 200
    assert "revoked" in shown.text


async def test_logout_needs_the_csrf_token(gateway: Gateway):
    async with gateway.browser() as browser:
        await login(browser, ADMIN)
        refused = await browser.post("/logout")
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
        assert "CSRF" in refused.text
        wrong = await browser.post("/logout", data={"csrf": "0" * 40})
        assert wrong.status_code == 403
        done = await browser.post("/logout", data={"csrf": csrf_token(ADMIN)})
        assert done.status_code == 303
        assert done.headers["location"] == "/login"
        assert f'{COOKIE}=""' in done.headers["set-cookie"]
        # the htmx way: the header that base.html puts on <body hx-headers>
        await login(browser, ADMIN)
        by_header = await browser.post("/logout", headers={"x-csrf-token": csrf_token(ADMIN)})
        assert by_header.status_code == 303


async def test_an_htmx_post_without_session_gets_hx_redirect_back_to_its_page(gateway: Gateway):
    async with gateway.browser() as browser:
        response = await browser.post(
            "/logout",
            headers={
                "hx-request": "true",
                "hx-current-url": "http://bridge/project/a/sequences?state=paused",
            },
        )
    assert response.status_code == 200
    target = urlsplit(response.headers["hx-redirect"])
    assert target.path == "/login"
    # back to the page the button was on, not to the POST-only URL
    assert parse_qs(target.query)["next"] == ["/project/a/sequences?state=paused"]


async def test_bridge_errors_are_html_pages_and_api_errors_stay_json(gateway: Gateway):
    async with gateway.browser() as browser:
        await login(browser, ADMIN)
        missing = await browser.get("/no/such/page")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert "<h1>404</h1>" in missing.text
        fragment = await browser.get("/no/such/page", headers={"hx-request": "true"})
        assert fragment.status_code == 404
        assert fragment.text.startswith('<p class="error"')  # htmx swaps it into #flash
        api = await browser.get("/api/no/such/route", headers={"x-token": ADMIN})
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/json")
    assert api.json()["code"] == 404


async def test_a_nul_byte_in_a_bridge_url_is_a_400_page(gateway: Gateway):
    async with gateway.browser() as browser:
        await login(browser, ADMIN)
        response = await browser.get("/project/a%00b/service/carts/evaluations")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "NUL byte" in response.text


async def test_static_files_are_served(gateway: Gateway):
    async with gateway.browser() as browser:
        css = await browser.get("/bridge/static/bridge.css")
        htmx = await browser.get("/bridge/static/htmx-2.0.11.min.js")
    assert css.status_code == 200 and ".heatmap" in css.text
    assert htmx.status_code == 200
