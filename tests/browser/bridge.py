"""Helpers for driving the Bridge in a browser: logging in, screenshots, locators by data-testid."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Locator, Page, ViewportSize, expect

from tests.workflows.stack import TOKEN

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
"""Every screenshot has the same size, so the README's images line up."""


@dataclass(frozen=True)
class Screenshots:
    """A directory for screenshots of the Bridge's pages."""

    directory: Path

    async def take(self, page: Page, name: str) -> Path:
        """Screenshot the viewport (not the full page: fixed size) as ``<name>.png``."""
        path = self.directory / f"{name}.png"
        # Let running CSS transitions and web fonts settle: a half-faded flash looks broken.
        await page.evaluate("document.fonts.ready")
        await page.screenshot(path=str(path), animations="disabled", caret="hide")
        return path


def by_testid(scope: Page | Locator, testid: str, /, **data: str) -> Locator:
    """Elements with ``data-testid=testid`` and the given ``data-*`` attributes (``_`` spelled ``-``)."""
    selector = f'[data-testid="{testid}"]' + "".join(
        f'[data-{key.replace("_", "-")}="{value}"]' for key, value in data.items()
    )
    return scope.locator(selector)


async def log_in(page: Page, path: str = "/", token: str = TOKEN) -> None:
    """Open ``path``, get sent to the login page, log in with ``token`` and come back to ``path``."""
    await page.goto(path)
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.fill("#token", token)
    await page.click("button[type=submit]")
    await expect(page.locator("#token")).to_have_count(0)
