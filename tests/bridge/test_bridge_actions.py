"""Deciding approvals and pausing, resuming and aborting sequences from the timeline page."""

from __future__ import annotations

import asyncpg
import httpx
from temporalio.testing import WorkflowEnvironment

from api.bridge.session import csrf_token
from tests.bridge.helpers import browser, create_token, login, testids
from tests.bridge.stack_helpers import bridge_stack, sequence_state, wait_for_page
from tests.workflows.stack import TOKEN, Stack

HTMX = {"hx-request": "true", "x-csrf-token": csrf_token(TOKEN)}


async def gated(stack: Stack, page: httpx.AsyncClient) -> tuple[str, str, str]:
    """Trigger ``dev.gated``; its open approval shown on the timeline: (context, approval id, url)."""
    context = await stack.trigger(stack.project, "dev", "gated", "carts")
    approval = await stack.next_triggered("approval", project=stack.project)
    url = f"/project/{stack.project}/sequence/{context}"
    html = await wait_for_page(page, url, lambda text: 'data-testid="approval"' in text)
    [shown] = testids(html, "approval")
    assert shown["data-triggered-id"] == approval["id"]
    assert len(testids(html, "approve")) == 1 and len(testids(html, "decline")) == 1
    return context, approval["id"], url


async def test_approve_and_decline_finish_the_approval(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
):
    async with bridge_stack(db_url, pool, temporal_env.client, builtin=True) as (stack, page):
        context, approval, url = await gated(stack, page)
        post = f"{url}/approval/{approval}"
        no_csrf = await page.post(post, data={"decision": "approve"})
        assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text

        approved = await page.post(post, data={"decision": "approve", "message": "ship it"}, headers=HTMX)
        assert approved.status_code == 200, approved.text
        assert "Approved" in approved.text
        await stack.answer(await stack.next_triggered("release", project=stack.project))
        finished = await stack.finished(context, "dev", "gated")
        assert finished["data"]["result"] == "pass"
        [decision] = await stack.events(context, "sh.keptn.event.approval.finished")
        assert decision["triggeredid"] == approval and decision["source"] == "capstan-bridge"
        assert decision["data"]["approval"] == {"user": "admin", "approved": True, "message": "ship it"}
        assert decision["data"]["result"] == "pass" and decision["data"]["status"] == "succeeded"
        html = await wait_for_page(page, url, lambda text: sequence_state(text) == "finished")
        assert testids(html, "approval") == [] and testids(html, "sequence-result")[0]["text"] == "pass"
        gone = await page.post(post, data={"decision": "approve"}, headers=HTMX)
        assert gone.status_code == 404 and "no open approval" in gone.text

        # a plain form post (no htmx) declines and goes back to the timeline
        context, approval, url = await gated(stack, page)
        declined = await page.post(
            f"{url}/approval/{approval}", data={"decision": "decline", "csrf": csrf_token(TOKEN)}
        )
        assert declined.status_code == 303 and declined.headers["location"] == url
        finished = await stack.finished(context, "dev", "gated")
        assert finished["data"]["result"] == "fail"
        html = await wait_for_page(page, url, lambda text: sequence_state(text) == "finished")
        assert testids(html, "sequence-result")[0]["text"] == "fail"


async def test_tokens_without_the_scope_see_no_buttons_and_get_403(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
):
    async with bridge_stack(db_url, pool, temporal_env.client, builtin=True) as (stack, page):
        context, approval, url = await gated(stack, page)
        for name, scopes in (
            ("reader", ["projects:read", "events:read"]),
            ("integration", ["projects:read", "events:read", "events:write"]),
        ):
            token = await create_token(stack.api, name, scopes)
            async with browser(stack.api) as other:
                await login(other, token)
                html = (await other.get(url)).text
                assert len(testids(html, "approval")) == 1
                assert testids(html, "approve") == [] and testids(html, "decline") == []
                headers = {"hx-request": "true", "x-csrf-token": csrf_token(token)}
                refused = await other.post(
                    f"{url}/approval/{approval}", data={"decision": "approve"}, headers=headers
                )
                assert refused.status_code == 403 and "approvals:write" in refused.text
                if name == "reader":
                    assert testids(html, "pause") == [] and testids(html, "abort") == []
                    control = await other.post(f"{url}/control", data={"state": "abort"}, headers=headers)
                    assert control.status_code == 403 and "events:write" in control.text
        assert await stack.events(context, "sh.keptn.event.approval.finished") == []


async def test_pause_resume_and_abort(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment):
    async with bridge_stack(db_url, pool, temporal_env.client) as (stack, page):
        context = await stack.trigger(stack.project, "dev", "delivery", "carts")
        deployment = await stack.next_triggered("deployment", project=stack.project)
        url = f"/project/{stack.project}/sequence/{context}"
        html = await wait_for_page(page, url, lambda text: sequence_state(text) == "started")
        assert testids(html, "pause") and testids(html, "abort") and not testids(html, "resume")
        assert testids(html, "abort")[0]["hx-confirm"]

        no_csrf = await page.post(f"{url}/control", data={"state": "pause"}, headers={"hx-request": "true"})
        assert no_csrf.status_code == 403

        paused = await page.post(f"{url}/control", data={"state": "pause"}, headers=HTMX)
        assert paused.status_code == 200 and "Paused" in paused.text
        await stack.answer(deployment)  # a pause holds the next task; the running one finishes
        html = await wait_for_page(page, url, lambda text: sequence_state(text) == "paused")
        assert testids(html, "resume") and not testids(html, "pause")

        resumed = await page.post(f"{url}/control", data={"state": "resume"}, headers=HTMX)
        assert resumed.status_code == 200 and "Resumed" in resumed.text
        await stack.next_triggered("evaluation", project=stack.project)
        await wait_for_page(page, url, lambda text: sequence_state(text) == "started")

        aborted = await page.post(f"{url}/control", data={"state": "abort"}, headers=HTMX)
        assert aborted.status_code == 200 and "Aborted" in aborted.text
        html = await wait_for_page(page, url, lambda text: sequence_state(text) == "aborted")
        assert not testids(html, "pause") and not testids(html, "abort") and not testids(html, "resume")

        bad = await page.post(f"{url}/control", data={"state": "explode"}, headers=HTMX)
        assert bad.status_code == 400 and "state" in bad.text
