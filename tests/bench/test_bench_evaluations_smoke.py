"""The evaluation benchmark end to end with tiny numbers, so that it cannot rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
N, OBJECTIVES, PREVIOUS, ITERATIONS = 2, 10, 3, 5
SUMMARY = {"n", "p50", "p90", "p99", "mean", "min", "max"}
SCORING_OPERATIONS = ("baseline", "evaluate", "evaluate_p95", "activity")
CAPSTAN_SUMMARIES = (
    "evaluation_ms",
    "evaluation_seen_ms",
    "sequence_ms",
    "get_sli_ms",
    "sli_answer_post_ms",
    "sli_to_evaluation_ms",
)
TIMELINE = (
    "workflow_started",
    "load_shipyard_completed",
    "lock_granted",
    "task_triggered_stored",
    "evaluation_started_stored",
    "prepare_completed",
    "get_sli_stored",
    "get_sli_push_started",
    "get_sli_received",
    "sli_answer_returned",
    "score_scheduled",
    "score_completed",
    "evaluation_stored",
    "sequence_stored",
)
SEGMENTS = (
    "prepare_run",
    "emit_get_sli_run",
    "answer_to_score_scheduled",
    "score_queue",
    "score_run",
    "score_to_emit_scheduled",
    "emit_finished_run",
    "evaluation_to_sequence_stored",
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def run_bench(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.evaluations", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=160,
        check=False,
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    )
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def check_summary(summary: dict[str, Any], name: str, *, n: int) -> None:
    assert set(summary) == SUMMARY, name
    assert summary["n"] == n, name
    assert summary["min"] <= summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["max"], name


def check_scoring(scoring: dict[str, Any]) -> None:
    assert scoring["result"] in ("pass", "warning", "fail")
    assert 0 <= scoring["score"] <= 100
    assert sum(scoring["indicator_statuses"].values()) == OBJECTIVES
    assert scoring["indicator_statuses"]["info"] >= 1  # the mix has informational objectives
    assert scoring["compared_events"] == PREVIOUS
    assert scoring["finished_data_bytes"] > 1000
    for name in SCORING_OPERATIONS:
        assert scoring[name]["evaluations_per_s"] > 0, name
        check_summary(scoring[name]["per_evaluation_ms"], name, n=ITERATIONS)
        assert scoring[name]["per_evaluation_ms"]["min"] > 0, name
    assert set(scoring["ratios"]) == {
        f"{name}_{what}" for name in SCORING_OPERATIONS[1:] for what in ("per_s", "p50", "p99")
    }
    assert all(isinstance(value, float) and value > 0 for value in scoring["ratios"].values())


def check_capstan(capstan: dict[str, Any]) -> None:
    assert (capstan["evaluations_triggered"], capstan["evaluations_completed"]) == (N, N)
    assert capstan["evaluations_failed"] == 0
    assert capstan["wall_s"] > 0 and capstan["evaluations_per_s"] > 0
    for name in CAPSTAN_SUMMARIES:
        check_summary(capstan[name], name, n=N)
        assert capstan[name]["min"] > 0, name
    # the provider is asked before the gate is stored, and the gate before the sequence ends
    assert capstan["get_sli_ms"]["p50"] < capstan["evaluation_ms"]["p50"] < capstan["sequence_ms"]["p50"]
    check = capstan["check"]
    assert check == {
        "evaluations_checked": N,
        "evaluations_valid": N,
        "results": check["results"],
        "problems": [],
    }
    assert sum(check["results"].values()) == N and set(check["results"]) <= {"pass", "warning", "fail"}
    assert capstan["setup"]["services"] == N
    assert capstan["setup"]["previous_per_service"] == PREVIOUS
    assert capstan["setup"]["seeded_by"] == "events"
    assert capstan["setup"]["setup_s"] > 0
    profile = capstan["profile"]
    assert profile["evaluations_sampled"] == N
    assert list(profile["timeline_ms"]) == list(TIMELINE)
    for name in TIMELINE[1:]:
        assert profile["timeline_ms"][name]["n"] == N and profile["timeline_ms"][name]["p50"] > 0, name
    assert list(profile["segments_ms"]) == list(SEGMENTS)
    for name in SEGMENTS:
        assert profile["segments_ms"][name]["n"] == N, name
    assert profile["per_evaluation"]["workflows"] == N and profile["per_evaluation"]["history_kb"] > 10
    counts = profile["per_evaluation"]["activities_by_name"]
    assert counts["prepare_evaluation"] == counts["score_evaluation"] == 1
    assert set(capstan["cpu_s"]) >= {"temporal", "worker", "gateway", "bench"}


def test_the_benchmark_reports_every_field_with_sane_values():
    report = run_bench(
        "--evaluations", str(N), "--concurrency", str(N), "--scoring-iterations", str(ITERATIONS),
        "--objectives", str(OBJECTIVES), "--previous", str(PREVIOUS), "--profile", str(N),
    )  # fmt: skip

    assert report["benchmark"] == "evaluations"
    assert report["failures"] == []
    assert report["params"] == {
        "evaluations": N,
        "concurrency": N,
        "scoring_iterations": ITERATIONS,
        "objectives": OBJECTIVES,
        "previous": PREVIOUS,
        "warmup": 1,
        "baseline_steps": 2,
        "end_to_end": True,
    }
    assert set(report["code"]) == {"commit", "dirty"}
    machine = report["machine"]
    assert machine["cpu_count"] >= 1 and machine["platform"]
    assert machine["python"] and machine["temporalio"] and "temporal version" in machine["temporal_cli"]
    assert len(machine["loadavg_before"]) == len(machine["loadavg_after"]) == 3
    check_scoring(report["scoring"])

    end = report["end_to_end"]
    assert "Capstan is up" in end["stack"]["ready"]
    assert end["stack"]["peak_rss_mb"]["gateway"] > 10 and end["stack"]["peak_rss_mb"]["worker"] > 10
    check_capstan(end["capstan"])
    baseline = end["baseline"]
    assert (baseline["sequences_triggered"], baseline["sequences_completed"]) == (N, N)
    check_summary(baseline["sequence_ms"], "baseline sequence_ms", n=N)
    assert baseline["sequences_per_s"] > 0 and "profile" not in baseline
    assert set(end["ratios"]) == {
        "evaluations_per_s",
        "evaluation_p50",
        "evaluation_p99",
        "sequence_p50",
        "sequence_p99",
    }
    assert all(isinstance(value, float) and value > 0 for value in end["ratios"].values())


def test_the_scoring_phase_runs_alone():
    report = run_bench(
        "--skip-end-to-end", "--scoring-iterations", "3", "--objectives", "4", "--previous", "2"
    )  # fmt: skip

    assert report["end_to_end"] is None and report["failures"] == []
    assert report["scoring"]["compared_events"] == 2
    assert report["scoring"]["evaluate"]["per_evaluation_ms"]["n"] == 3
