"""The Bridge in headless Chromium against a running control plane.

A delivery is watched live on its timeline page (server-sent events, no reloads), approved with
the page's button, and its evaluation shows up in the heatmap. The tests also write screenshots
of the main pages (see ``screenshots`` in conftest.py and ``scripts/screenshots``).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from playwright.async_api import Dialog, Page, expect

from store.sequences import VIEW_STATES
from tests.browser.bridge import Screenshots, by_testid, log_in
from tests.workflows.stack import Stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: bridge}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - name: deployment
            - name: evaluation
              properties: {timeframe: 5m}
            - name: approval
              properties: {pass: manual, warning: manual}
            - name: release
        - name: hotfix
          tasks: [{name: approval, properties: {pass: manual}}, {name: release}]
        - name: rollout
          tasks: [{name: deployment}, {name: release}]
    - name: prod
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}, {name: release}]
"""

SLO = """spec_version: "1.0"
comparison: {compare_with: single_result, include_result_with_score: pass, aggregate_function: avg}
objectives:
  - sli: response_time_p95
    displayName: Response time P95
    pass: [{criteria: ["<600"]}]
    warning: [{criteria: ["<=800"]}]
  - sli: error_rate
    displayName: Error rate
    pass: [{criteria: ["<5"]}]
    key_sli: true
  - sli: throughput
total_score: {pass: "90%", warning: "75%"}
"""

SLI_PROVIDER = "my-sli"
REGISTRATION = "/api/controlPlane/v1/uniform/registration"
EARLIER_EVALUATIONS = (
    ({"response_time_p95": 420, "error_rate": 1.2, "throughput": 52}, "pass"),
    ({"response_time_p95": 700, "error_rate": 2.5, "throughput": 48}, "warning"),
    ({"response_time_p95": 380, "error_rate": 7.0, "throughput": 61}, "fail"),
)
DELIVERED = {"response_time_p95": 450, "error_rate": 0.5, "throughput": 57}
IMAGE = "docker.io/keptnexamples/carts:0.13.2"
ORDERS = "docker.io/keptnexamples/orders:0.4.1"
STEP = 0.4
"""Pause between an integration's answers, so the page has something to show in between."""


async def test_logging_in_leads_to_the_projects_overview(stack: Stack, page: Page, screenshots: Screenshots):
    await stack.create_project(stack.project, SHIPYARD, "carts", "orders")
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login\?next=/"))
    await screenshots.take(page, "login")
    await page.fill("#token", "not-a-token")
    await page.click("button[type=submit]")
    await expect(page.get_by_role("alert")).to_contain_text("not valid")

    await log_in(page)
    await expect(page).to_have_url(f"{stack.base_url}/")
    card = by_testid(page, "project-card", project=stack.project)
    await expect(card).to_be_visible()
    await expect(card.locator(f'a[href="/project/{stack.project}"]').first).to_be_visible()
    await expect(card).to_contain_text("dev")
    await expect(card).to_contain_text("prod")
    await expect(page.get_by_role("navigation").get_by_role("link", name="Integrations")).to_be_visible()


async def test_a_delivery_is_watched_live_approved_and_its_evaluation_shown(
    stack: Stack, page: Page, screenshots: Screenshots
):
    # a readable name for the screenshots (each test has a database of its own)
    project = stack.project = "sockshop"
    await stack.create_project(project, SHIPYARD, "carts", "orders")
    await stack.add_resource("dev", "carts", "slo.yaml", SLO)
    await configure_monitoring(stack, "carts")
    await register_integrations(stack)
    orders = await stack.trigger(
        project, "dev", "rollout", "orders", configurationChange={"values": {"image": ORDERS}}
    )
    for task in ("deployment", "release"):
        answered = await stack.next_triggered(task, project=project, service="orders")
        await stack.answer(
            answered, source="helm-service", **(deployed(ORDERS) if task == "deployment" else {})
        )
    await stack.finished(orders, "dev", "rollout")
    for values, result in EARLIER_EVALUATIONS:
        context = await trigger_evaluation(stack)
        await answer_sli(stack, values)
        finished = await stack.finished(context, "dev", "evaluation")
        assert finished["data"]["result"] == result, (values, finished["data"])

    context = await stack.trigger(
        project, "dev", "delivery", "carts", configurationChange={"values": {"image": IMAGE}}
    )
    await log_in(page, f"/project/{project}/sequence/{context}")
    # a marker that a reload would lose: every change below must arrive by server-sent events
    await page.evaluate("window.capstanNotReloaded = true")
    deployment = by_testid(page, "task", task="deployment")
    await expect(by_testid(page, "stage", stage="dev")).to_be_visible()
    await expect(deployment).to_have_attribute("data-state", "triggered")
    await expect(by_testid(page, "temporal-link")).to_have_attribute("href", re.compile(r"/workflows/"))

    triggered = await stack.next_triggered("deployment", project=project, stage="dev")
    await stack.answer(triggered, source="helm-service", finished=False)
    await expect(deployment).to_have_attribute("data-state", "started")
    await expect(
        by_testid(deployment, "event", event_type="sh.keptn.event.deployment.started")
    ).to_have_count(1)
    # a payload opened now stays open through the live updates below (hx-preserve)
    opened = by_testid(deployment, "event", event_type="sh.keptn.event.deployment.triggered").first
    await opened.locator("summary").click()
    await expect(by_testid(opened, "payload")).to_contain_text(IMAGE)
    await asyncio.sleep(STEP)
    await stack.answer(triggered, source="helm-service", started=False, **deployed(IMAGE))
    await expect(deployment).to_have_attribute("data-state", "finished")
    await expect(deployment).to_have_attribute("data-result", "pass")

    evaluation = by_testid(page, "task", task="evaluation")
    await expect(evaluation).to_be_visible()
    await asyncio.sleep(STEP)
    await answer_sli(stack, DELIVERED)
    await expect(evaluation).to_have_attribute("data-state", "finished")
    await expect(evaluation).to_have_attribute("data-result", "pass")
    await expect(opened.locator("details")).to_have_attribute("open", "")

    approval = by_testid(page, "approval")
    await expect(approval).to_be_visible()
    open_approval = await stack.next_triggered("approval", project=project)
    await expect(approval).to_have_attribute("data-triggered-id", open_approval["id"])
    await expect(by_testid(page, "sequence-state")).to_have_text("started")
    await screenshots.take(page, "sequence-approval")
    await by_testid(approval, "approve").click()
    await expect(page.locator("#flash")).to_contain_text(re.compile("approved", re.I))
    await expect(by_testid(page, "approval")).to_have_count(0)
    await expect(by_testid(page, "task", task="approval")).to_have_attribute("data-result", "pass")

    for stage in ("dev", "prod"):
        if stage == "prod":
            prod = await stack.next_triggered("deployment", project=project, stage="prod")
            await stack.answer(prod, source="helm-service", **deployed(IMAGE))
        release = await stack.next_triggered("release", project=project, stage=stage)
        await asyncio.sleep(STEP)
        await stack.answer(release, source="helm-service")
    await expect(by_testid(page, "stage", stage="prod")).to_be_visible()
    await expect(by_testid(page, "sequence-state")).to_have_text("finished")
    await expect(by_testid(page, "sequence-result")).to_have_text("pass")
    assert await page.evaluate("window.capstanNotReloaded") is True, "the timeline page was reloaded"
    approved = await stack.events(context, "sh.keptn.event.approval.finished")
    assert [e["data"]["result"] for e in approved] == ["pass"]

    await page.reload()  # without the flash message, for the screenshot
    await expect(by_testid(page, "sequence-result")).to_have_text("pass")
    await screenshots.take(page, "sequence")
    # an event's payload is loaded when it is opened
    triggered_event = by_testid(deployment, "event", event_type="sh.keptn.event.deployment.triggered").first
    await triggered_event.locator("summary").click()
    await expect(by_testid(triggered_event, "payload")).to_contain_text(IMAGE)

    await page.goto(f"/project/{project}/service/carts/evaluations?stage=dev")
    heatmap = by_testid(page, "heatmap")
    columns = len(EARLIER_EVALUATIONS) + 1
    for sli in ("response_time_p95", "error_rate", "throughput"):
        await expect(
            by_testid(heatmap, "heatmap-row", sli=sli).locator('[data-testid="heatmap-cell"]')
        ).to_have_count(columns)
    response_time = by_testid(heatmap, "heatmap-row", sli="response_time_p95").locator(
        '[data-testid="heatmap-cell"]'
    )
    await expect(response_time.nth(0)).to_have_class(re.compile(r"\bpass\b"))
    await expect(response_time.nth(0)).to_contain_text("420")
    await expect(response_time.nth(1)).to_have_class(re.compile(r"\bwarning\b"))
    error_rate = by_testid(heatmap, "heatmap-row", sli="error_rate").locator('[data-testid="heatmap-cell"]')
    await expect(error_rate.nth(2)).to_have_class(re.compile(r"\bfail\b"))
    await expect(error_rate.nth(3)).to_have_class(re.compile(r"\bpass\b"))
    await expect(by_testid(page, "score-chart").locator('[data-testid="score-point"]')).to_have_count(columns)
    await screenshots.take(page, "evaluations")
    await heatmap.evaluate("element => element.closest('section').scrollIntoView()")
    await screenshots.take(page, "evaluations-heatmap")

    await page.goto(f"/project/{project}")
    cell = by_testid(page, "deployment-cell", stage="dev", service="carts")
    await expect(cell).to_contain_text("carts:0.13.2")
    await expect(by_testid(cell, "last-evaluation")).to_contain_text("pass")
    await expect(by_testid(page, "deployment-cell", stage="prod", service="carts")).to_contain_text(
        "carts:0.13.2"
    )
    await expect(by_testid(page, "deployment-cell", stage="dev", service="orders")).to_contain_text(
        "orders:0.4.1"
    )
    await screenshots.take(page, "project")

    await by_testid(page, "sequences-link").first.click()
    await expect(page).to_have_url(re.compile(rf"/project/{project}/sequences"))
    row = by_testid(page, "sequence-row", context=context)
    await expect(row).to_be_visible()
    await expect(by_testid(row, "sequence-state")).to_contain_text("finished")
    await expect(by_testid(page, "sequence-row")).to_have_count(len(EARLIER_EVALUATIONS) + 2)
    await expect(page.locator('select[name="state"] option')).to_have_text(["any", *VIEW_STATES])
    await screenshots.take(page, "sequences")

    await page.goto("/")
    await expect(by_testid(page, "project-card", project=project)).to_be_visible()
    await screenshots.take(page, "projects")

    await page.goto("/integrations")
    for name in ("helm-service", SLI_PROVIDER):
        await expect(by_testid(page, "integration-row", name=name)).to_be_visible()
    await screenshots.take(page, "integrations")


async def test_a_declined_approval_fails_the_sequence(stack: Stack, page: Page):
    await stack.create_project(stack.project, SHIPYARD, "carts")
    await log_in(page, f"/project/{stack.project}/sequences")
    await expect(by_testid(page, "sequence-row")).to_have_count(0)
    await page.evaluate("window.capstanNotReloaded = true")
    context = await stack.trigger(stack.project, "dev", "hotfix", "carts")
    row = by_testid(page, "sequence-row", context=context)
    await expect(row).to_be_visible()  # the list refreshes over server-sent events
    assert await page.evaluate("window.capstanNotReloaded") is True, "the sequence list was reloaded"
    await row.get_by_role("link", name="hotfix").click()
    await expect(page).to_have_url(re.compile(rf"/sequence/{context}$"))
    approval = by_testid(page, "approval")
    await expect(approval).to_be_visible()
    await by_testid(approval, "decline").click()
    await expect(page.locator("#flash")).to_contain_text(re.compile("declined", re.I))
    await expect(by_testid(page, "sequence-state")).to_have_text("finished")
    await expect(by_testid(page, "sequence-result")).to_have_text("fail")
    await expect(by_testid(page, "task", task="approval")).to_have_attribute("data-result", "fail")
    assert await stack.open_triggered("release", project=stack.project) == []


async def test_a_sequence_is_paused_resumed_and_aborted_from_its_page(stack: Stack, page: Page):
    await stack.create_project(stack.project, SHIPYARD, "carts")
    context = await stack.trigger(stack.project, "dev", "rollout", "carts")
    await log_in(page, f"/project/{stack.project}/sequence/{context}")
    state = by_testid(page, "sequence-state")
    deployment = await stack.next_triggered("deployment", project=stack.project)
    # The page shows the task (its live update done) before the click: a click while the update
    # swaps the controls can land on the replaced button and be lost (seen once in CI).
    await expect(by_testid(page, "task", task="deployment")).to_have_attribute("data-state", "triggered")

    await by_testid(page, "pause").click()
    await expect(page.locator("#flash")).to_contain_text(re.compile("paused", re.I))
    await stack.answer(deployment)  # the running task's answer is still taken; the next task waits
    await expect(state).to_have_text("paused")
    await expect(by_testid(page, "task", task="deployment")).to_have_attribute("data-state", "finished")
    assert await stack.open_triggered("release", project=stack.project) == []

    await by_testid(page, "resume").click()
    await expect(page.locator("#flash")).to_contain_text(re.compile("resumed", re.I))
    await expect(by_testid(page, "task", task="release")).to_have_attribute("data-state", "triggered")
    await expect(state).not_to_have_text("paused")

    page.once("dialog", accept)  # abort asks for confirmation
    await by_testid(page, "abort").click()
    await expect(page.locator("#flash")).to_contain_text(re.compile("aborted", re.I))
    await expect(state).to_have_text("aborted")
    finished = await stack.finished(context, "dev", "rollout")
    assert finished["data"]["status"] == "aborted"


async def accept(dialog: Dialog) -> None:
    """Confirm a dialog (``hx-confirm``)."""
    await dialog.accept()


def deployed(image: str) -> dict[str, Any]:
    """The ``deployment`` data of a deployment.finished, as helm-service sends it."""
    return {
        "deployment": {
            "deploymentstrategy": "direct",
            "deploymentURIsLocal": ["http://carts.dev:80"],
            "deploymentNames": ["direct"],
        },
        "configurationChange": {"values": {"image": image}},
    }


async def configure_monitoring(stack: Stack, service: str) -> None:
    """Make the test's external SLI provider the project's, as ``keptn configure monitoring`` does."""
    response = await stack.send(
        {
            "type": "sh.keptn.event.monitoring.configure",
            "source": "tests",
            "data": {"project": stack.project, "service": service, "type": SLI_PROVIDER},
        }
    )
    assert response.status_code == 200, response.text


async def register_integrations(stack: Stack) -> None:
    """Register the integrations the tests play, so the integrations page lists them."""
    subscriptions = {
        "helm-service": ["sh.keptn.event.deployment.triggered", "sh.keptn.event.release.triggered"],
        SLI_PROVIDER: ["sh.keptn.event.get-sli.triggered"],
    }
    for name, events in subscriptions.items():
        body = {
            "name": name,
            "metadata": {
                "hostname": "node-1",
                "integrationversion": "1.4.5",
                "distributorversion": "1.4.5",
                "location": "remote-execution-plane",
                "kubernetesmetadata": {
                    "namespace": "keptn",
                    "podname": f"{name}-7d9f",
                    "deploymentname": name,
                },
            },
            "subscriptions": [
                {"event": event, "filter": {"projects": [stack.project], "stages": [], "services": []}}
                for event in events
            ],
        }
        response = await stack.api.post(REGISTRATION, json=body)
        assert response.status_code == 201, response.text


async def trigger_evaluation(stack: Stack) -> str:
    """Start an evaluation of carts in dev through the API; return its Keptn context."""
    response = await stack.api.post(
        f"/api/controlPlane/v1/project/{stack.project}/stage/dev/service/carts/evaluation",
        json={"timeframe": "5m"},
    )
    assert response.status_code == 200, response.text
    context: str = response.json()["keptnContext"]
    return context


async def answer_sli(stack: Stack, values: dict[str, float]) -> None:
    """Answer the next get-sli task as the external SLI provider."""
    triggered = await stack.next_triggered("get-sli", project=stack.project)
    window = triggered["data"]["get-sli"]
    indicators = [{"metric": metric, "value": value, "success": True} for metric, value in values.items()]
    data: dict[str, Any] = {
        "get-sli": {"start": window["start"], "end": window["end"], "indicatorValues": indicators}
    }
    await stack.answer(triggered, source=SLI_PROVIDER, **data)
