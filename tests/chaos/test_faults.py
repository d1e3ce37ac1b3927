"""Steady load through real SDK integrations while the worker, the gateway, Temporal and PostgreSQL fail.

The test starts its own PostgreSQL (embedded, own data dir), Temporal dev server (own SQLite file,
own ports), worker and gateway (separate processes, configured by ``CAPSTAN_*`` as ``capstan up``
does), so it can stop and restart each without touching the session's servers. While a driver
triggers delivery sequences steadily (retrying with the same event id on connection errors and
5xx) and two SDK integrations (one pull, one push) answer them, it injects in turn:

1. SIGKILL the worker, start a new one;
2. SIGKILL the gateway, start a new one;
3. stop the Temporal dev server (SIGTERM), start it again on the same SQLite file and ports;
4. stop PostgreSQL (``pg_ctl stop -m fast``), start it again.

Afterwards every sequence finished ``pass``, every accepted event is stored exactly once, no
integration saw a task under two ids, and while Temporal or PostgreSQL was down the gateway
answered 503, never 500, and its health said so. The JSON summary goes to ``chaos-faults.json``
in the test's tmp dir (and to ``CAPSTAN_CHAOS_REPORT`` when set); ``python -m tests.chaos.soak``
runs the same scenario for longer (docs/reliability.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chaos.harness import report
from tests.chaos.scenario import FAULTS, OUTAGES, Knobs, run_scenario

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


async def test_sequences_survive_every_fault_with_nothing_lost_or_doubled(tmp_path: Path) -> None:
    summary = await run_scenario(
        Knobs.from_env(), report_to=tmp_path / "chaos-faults.json", keep_logs=tmp_path / "logs"
    )
    report(json.dumps({k: summary[k] for k in ("sequences", "events", "duplicates", "losses", "durations")}))
    assert not summary["problems"], json.dumps(summary, indent=2)
    sequences = summary["sequences"]
    assert sequences["accepted"] == sequences["triggered"] == sequences["finished"] == sequences["passed"]
    assert sequences["accepted"] >= 12, sequences  # a steady load, not a handful
    assert (summary["duplicates"], summary["losses"], summary["integration_violations"]) == (0, 0, 0)
    injected = [f["fault"] for f in summary["faults"]]
    assert injected and injected == list(FAULTS) * (len(injected) // len(FAULTS)), injected
    assert not summary["server_errors"], (summary["server_errors"], summary["gateway_unhandled_errors"])
    assert not summary["gateway_unhandled_errors"], summary["gateway_unhandled_errors"]
    outages = summary["status_codes_during_outages"]
    assert {key.split("#")[0] for key in outages} == set(OUTAGES)
    for key, seen in outages.items():
        # requests sent and answered while it was down: nothing that needs it succeeds, none hangs
        posted = seen["while_down"].get("POST /api/v1/event", {})
        assert set(posted) == {"503"}, (key, posted)
        health = seen["while_down"].get("GET /api/health", {})
        assert set(health) == {"503"}, (key, health)
        assert seen["hung"] == 0, (key, seen)
        dependency = "temporal" if key.startswith("temporal") else "database"
        assert seen["health"] and seen["health"][0][dependency] == "unavailable", (key, seen["health"])
    for key in [k for k in outages if k.startswith("postgres")]:
        reads = {c: codes for c, codes in outages[key]["while_down"].items() if c.startswith("GET")}
        assert all(set(codes) == {"503"} for codes in reads.values()), (key, reads)
