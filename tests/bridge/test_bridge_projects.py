"""The projects overview and a project's environment view."""

from __future__ import annotations

import asyncpg
from temporalio.testing import WorkflowEnvironment

from tests.bridge.helpers import browser, create_token, login, testids
from tests.bridge.stack_helpers import SHIPYARD, bridge_stack, wait_for_page

IMAGE = "docker.io/keptnexamples/carts:0.13.1"


async def test_pages_need_a_session_and_unknown_projects_are_404_pages(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
):
    async with bridge_stack(db_url, pool, temporal_env.client) as (stack, page):
        async with browser(stack.api) as anonymous:
            for path, target in (
                ("/", "/login?next=/"),
                (f"/project/{stack.project}", f"/login?next=/project/{stack.project}"),
                ("/integrations", "/login?next=/integrations"),
            ):
                response = await anonymous.get(path)
                assert response.status_code == 303, (path, response.text)
                assert response.headers["location"] == target

        missing = await page.get("/project/no-such-project")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert (
            "project &#39;no-such-project&#39; not found" in missing.text or "no-such-project" in missing.text
        )
        assert "<h1>404</h1>" in missing.text


async def test_overview_lists_projects_and_a_restricted_token_sees_only_its_own(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
):
    async with bridge_stack(db_url, pool, temporal_env.client) as (stack, page):
        other = f"{stack.project}-other"
        await stack.create_project(other, SHIPYARD, "carts", "orders")
        response = await page.get("/")
        assert response.status_code == 200
        cards = {card["data-project"]: card for card in testids(response.text, "project-card")}
        assert set(cards) == {stack.project, other}
        assert f'href="/project/{other}"' in response.text
        assert "2 services" in cards[other]["text"] and "1 service" in cards[stack.project]["text"]
        assert "dev" in cards[other]["text"] and "prod" in cards[other]["text"]

        token = await create_token(stack.api, "own", ["projects:read", "events:read"], project=stack.project)
        async with browser(stack.api) as restricted:
            await login(restricted, token)
            own = await restricted.get("/")
            assert [c["data-project"] for c in testids(own.text, "project-card")] == [stack.project]
            forbidden = await restricted.get(f"/project/{other}")
            assert forbidden.status_code == 403 and "restricted" in forbidden.text


async def test_environment_view_shows_the_deployed_image_and_last_evaluation(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
):
    async with bridge_stack(db_url, pool, temporal_env.client) as (stack, page):
        url = f"/project/{stack.project}"
        before = await page.get(url)
        cells = {(c["data-stage"], c["data-service"]): c for c in testids(before.text, "deployment-cell")}
        assert set(cells) == {("dev", "carts"), ("prod", "carts")}
        assert IMAGE not in before.text and testids(before.text, "last-evaluation") == []
        [link] = testids(before.text, "sequences-link")
        assert link["href"] == f"/project/{stack.project}/sequences"

        context = await stack.trigger(
            stack.project, "dev", "delivery", "carts", configurationChange={"values": {"image": IMAGE}}
        )
        await stack.answer(await stack.next_triggered("deployment", project=stack.project))
        await stack.answer(
            await stack.next_triggered("evaluation", project=stack.project),
            evaluation={"score": 87.5, "result": "pass"},
        )
        await stack.finished(context, "dev", "delivery")

        html = await wait_for_page(page, url, lambda text: IMAGE in text and "last-evaluation" in text)
        cells = {(c["data-stage"], c["data-service"]): c for c in testids(html, "deployment-cell")}
        assert IMAGE in cells[("dev", "carts")]["text"]
        assert IMAGE not in cells[("prod", "carts")]["text"]
        [evaluation] = testids(html, "last-evaluation")
        assert evaluation["href"] == f"/project/{stack.project}/service/carts/evaluations?stage=dev"
        assert evaluation["data-result"] == "pass" and "88" in evaluation["text"]

        overview = await page.get("/")
        [card] = testids(overview.text, "project-card")
        assert "Latest sequence: delivery of carts" in card["text"]
        assert f'href="/project/{stack.project}/sequence/{context}"' in overview.text
