"""Headless Chromium (Debian's, driven by Playwright) against a control plane served on loopback.

Playwright's own browser downloads are never used: the browser is the system's ``chromium``
(``scripts/install --dev`` installs Debian's), or the one ``CAPSTAN_CHROMIUM`` names. Everything
runs on the session's event loop, next to the served gateway, so nothing here may block it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from tests.browser.bridge import VIEWPORT, Screenshots
from tests.workflows.stack import Stack, running_stack

CHROMIUM_ENV = "CAPSTAN_CHROMIUM"
SCREENSHOTS_ENV = "CAPSTAN_SCREENSHOTS_DIR"

# Live updates arrive within about a second; a loaded CI machine gets some slack.
expect.set_options(timeout=10_000)


def chromium_path() -> str:
    """The Chromium binary to drive; the test fails (never skips) when there is none."""
    configured = os.environ.get(CHROMIUM_ENV)
    found = shutil.which(configured) if configured else shutil.which("chromium")
    if not found:
        wanted = (
            f"{CHROMIUM_ENV}={configured!r} is not an executable" if configured else "no chromium on PATH"
        )
        pytest.fail(f"{wanted}: run scripts/install --dev (it installs Debian's chromium)", pytrace=False)
    return found


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the session."""
    executable = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture
async def stack(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    """A control plane with the built-in services whose gateway listens on a loopback port."""
    async with running_stack(db_url, pool, temporal_env.client, serve=True, builtin=True) as running:
        yield running


@pytest_asyncio.fixture
async def context(browser: Browser, stack: Stack) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies) with a fixed viewport, pointed at the stack."""
    opened = await browser.new_context(base_url=stack.base_url, viewport=VIEWPORT, locale="en-US")
    try:
        yield opened
    finally:
        await opened.close()


@pytest_asyncio.fixture
async def page(context: BrowserContext) -> Page:
    """A tab of the fresh profile."""
    return await context.new_page()


@pytest.fixture
def screenshots(tmp_path: Path) -> Screenshots:
    """Where page screenshots go: ``$CAPSTAN_SCREENSHOTS_DIR`` (e.g. docs/images), else a tmp dir."""
    configured = os.environ.get(SCREENSHOTS_ENV)
    directory = Path(configured) if configured else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return Screenshots(directory)
