"""What must hold after the faults, read from the store, the API and what the integrations saw.

* every accepted trigger's sequence finished ``pass``/``succeeded`` (store and API agree);
* every event the gateway accepted (the driver's triggers, the integrations' answers) is stored,
  exactly once; each sequence has exactly Keptn's events, no task answered twice;
* each integration saw each task under one event id only: the stored ``.triggered`` id.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import asyncpg
import httpx

from tests.chaos.faults import FaultStack
from tests.chaos.load import SEQUENCE, SEQUENCE_FINISHED, TASKS, Driver, Integrations

EXPECTED_TYPES = Counter(
    [SEQUENCE, SEQUENCE_FINISHED]
    + [f"sh.keptn.event.{task}.{kind}" for task in TASKS for kind in ("triggered", "started", "finished")]
)
"""The events of one delivery sequence, each exactly once."""
API_PAGE = 50
API_CONVERGE_WITHIN = 60.0
"""Seconds the API's sequence view may trail the store after the load (see :func:`_api_states`)."""


async def verify(
    stack: FaultStack, api: httpx.AsyncClient, project: str, driver: Driver, integrations: Integrations
) -> dict[str, Any]:
    """Check everything; return counts and a list of problems (empty when all holds)."""
    problems: list[str] = []
    accepted = [t for t in driver.triggers if t.context]
    contexts = [t.context for t in accepted]
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT id, type, shkeptncontext, triggeredid, event FROM events"
            " WHERE project = $1 AND type = ANY($2::text[]) ORDER BY seq",
            project,
            list(EXPECTED_TYPES),
        )
        stored_ids = Counter(row["id"] for row in await conn.fetch("SELECT id FROM events"))
    finally:
        await conn.close()
    by_context: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        by_context.setdefault(row["shkeptncontext"], []).append(row)

    duplicates = sum(count - 1 for count in stored_ids.values())
    passed = 0
    for context in contexts:
        events = by_context.get(context, [])
        types = Counter(row["type"] for row in events)
        extra = types - EXPECTED_TYPES
        missing = EXPECTED_TYPES - types
        if extra:
            duplicates += sum(extra.values())
            problems.append(f"{context}: events stored more than once: {dict(extra)}")
        if missing:
            problems.append(f"{context}: events missing: {dict(missing)}")
        finished = [json.loads(row["event"]) for row in events if row["type"] == SEQUENCE_FINISHED]
        if finished and (finished[0]["data"].get("result"), finished[0]["data"].get("status")) == (
            "pass",
            "succeeded",
        ):
            passed += 1
        elif finished:
            problems.append(f"{context}: finished with {finished[0]['data']}")
        problems += _answer_links(context, events)
    strays = set(by_context) - set(contexts)
    if strays:
        problems.append(f"events stored for contexts no accepted trigger has: {sorted(strays)[:5]}")

    gateway_accepted = {e["id"]: e for e in [*(t.event for t in accepted), *integrations.accepted]}
    lost = [event_id for event_id in gateway_accepted if stored_ids[event_id] == 0]
    lost_sequences = [t.context for t in accepted if not by_context.get(t.context)]
    if lost:
        problems.append(f"accepted events not in the store: {lost[:5]}")
    if driver.rejected:
        problems.append(f"triggers refused: {[(code, text[:120]) for _, code, text in driver.rejected[:3]]}")
    violations = _integration_violations(by_context, contexts, integrations, problems)
    api_problems, api_lag = await _api_states(api, project, contexts)
    problems += api_problems
    return {
        "sequences": {
            "triggered": len(driver.triggers),
            "accepted": len(accepted),
            "finished": sum(1 for t in accepted if t.finished is not None),
            "passed": passed,
            "refused": len(driver.rejected),
            "trigger_attempts": sum(t.attempts for t in driver.triggers),
        },
        "events": {
            "stored": len(rows),
            "accepted_by_gateway": len(gateway_accepted),
            "expected": len(contexts) * sum(EXPECTED_TYPES.values()),
        },
        "api_view_converged_after_s": round(api_lag, 2),
        "duplicates": duplicates,
        "losses": len(lost) + len(lost_sequences),
        "integration_violations": violations,
        "problems": problems,
    }


def _answer_links(context: str, events: list[asyncpg.Record]) -> list[str]:
    """Each task's ``.started``/``.finished`` points at the task's one stored ``.triggered``."""
    triggered = {row["type"].split(".")[3]: row["id"] for row in events if row["type"].endswith(".triggered")}
    found = []
    for row in events:
        part = row["type"].split(".")
        if (
            part[3] in TASKS
            and part[4] in ("started", "finished")
            and row["triggeredid"] != triggered.get(part[3])
        ):
            wanted = triggered.get(part[3])
            found.append(f"{context}: {row['type']} answers {row['triggeredid']}, not {wanted}")
    return found


def _integration_violations(
    by_context: dict[str, list[asyncpg.Record]],
    contexts: list[str],
    integrations: Integrations,
    problems: list[str],
) -> int:
    """Count tasks an integration saw under another id than the stored one, or handled twice."""
    violations = 0
    for context in contexts:
        stored = {
            row["type"].split(".")[3]: row["id"]
            for row in by_context.get(context, [])
            if row["type"].endswith(".triggered") and row["type"] != SEQUENCE
        }
        for task in TASKS:
            seen = integrations.seen.get((context, task), [])
            if len(set(seen)) > 1 or len(seen) > 1 or (seen and seen[0] != stored.get(task)):
                violations += 1
                wanted = stored.get(task)
                problems.append(f"{context}/{task}: the integration ran it for {seen}, stored {wanted}")
    return violations


async def _api_states(api: httpx.AsyncClient, project: str, contexts: list[str]) -> tuple[list[str], float]:
    """The API's sequence view says ``finished`` for every context; return problems and the lag.

    The view is written by each sequence's state writer (``record_sequence``, coalesced and behind
    the event store by design), so it may trail the stored ``.finished`` for a moment — longer
    when that write is in its retry backoff after a PostgreSQL outage. It must converge.
    """
    began = time.monotonic()
    while True:
        problems, wrong = [], 0
        for i in range(0, len(contexts), API_PAGE):
            chunk = contexts[i : i + API_PAGE]
            response = await api.get(
                f"/controlPlane/v1/sequence/{project}",
                params={"keptnContext": ",".join(chunk), "pageSize": str(API_PAGE)},
            )
            if response.status_code != 200:
                problems.append(f"GET sequence states: {response.status_code} {response.text[:200]}")
                continue
            states = {s["shkeptncontext"]: s["state"] for s in response.json()["states"]}
            unfinished = {c: states.get(c) for c in chunk if states.get(c) != "finished"}
            wrong += len(unfinished)
            if unfinished:
                problems.append(f"API sequence states not finished: {dict(list(unfinished.items())[:5])}")
        if not problems or time.monotonic() - began > API_CONVERGE_WITHIN:
            return problems, time.monotonic() - began
        await asyncio.sleep(0.5)
