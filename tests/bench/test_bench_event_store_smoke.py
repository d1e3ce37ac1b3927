"""The event-store benchmark end to end with 2,000 events, so that it cannot rot unnoticed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.event_store import OPERATIONS, RATIOS

ROOT = Path(__file__).resolve().parents[2]
EVENTS, ITERATIONS = 2000, 5
SUMMARY = {"n", "p50", "p90", "p99", "mean", "min", "max"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def run_bench(*args: str) -> dict[str, Any]:
    # the tests' server if one is configured, else the benchmark starts an embedded one
    server = os.environ.get("CAPSTAN_TEST_DATABASE_URL")
    extra = ["--server-url", server] if server else []
    env = {k: v for k, v in os.environ.items() if k != "CAPSTAN_BENCH_DATABASE_URL"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.event_store", *extra, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    )
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def test_the_event_store_benchmark_loads_checks_and_times_every_query():
    report = run_bench(
        "--events", str(EVENTS), "--iterations", str(ITERATIONS), "--warmup", "1",
        "--projects", "3", "--services", "2", "--verify-events", "200",
    )  # fmt: skip

    assert report["benchmark"] == "event_store"
    assert report["params"]["events"] == EVENTS
    assert len(report["machine"]["loadavg_before"]) == 3
    # the bulk path stored what insert_event stores, row for row
    verify = report["verify"]
    assert verify["matches_insert_event"] is True
    assert verify["events"] >= 200 and verify["context_roots"] > 0 and verify["service_last_events"] > 0
    data = report["data"]
    assert data["events"] == EVENTS
    assert 0.03 < data["evaluation_share"] < 0.15
    assert data["contexts"] > 10 and data["history_scopes"] > 0
    load = report["load"]
    assert load["events"] == EVENTS and load["total_s"] > 0 and load["table_mb"] > 0
    # every answer had the expected number of events, and store, SQL and HTTP agree
    assert report["checks"] == {"same_history_answers": True, "problems": []}
    for name in OPERATIONS:
        summary = report["timings_ms"][name]
        assert set(summary) == SUMMARY, name
        assert summary["n"] == ITERATIONS, name
        assert 0 < summary["min"] <= summary["p50"] <= summary["p99"] <= summary["max"], name
    for name in RATIOS:
        for stat in ("p50", "p99"):
            value = report["ratios"][f"{name}_{stat}"]
            assert isinstance(value, float) and value > 0, (name, stat)
    # the plans are read, and the context query uses its index
    context_plans = report["plans"]["context"]
    assert [p["sql"].split()[1] for p in context_plans] == ["count(*)", "e.event"]
    for plan in context_plans:
        for kind in ("custom", "generic"):
            assert "events_context_time" in plan[kind]["indexes"], (plan["sql"], kind)
            assert plan[kind]["seq_scans"] == []
    assert report["plans"]["history"][0]["custom"]["execution_ms"] >= 0
    assert report["plan_cache"], "the baseline's prepared statements are listed"
    assert report["gateway_rss_mb"] > 10
