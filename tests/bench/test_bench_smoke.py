"""The sequence benchmark end to end with a tiny N, so that it cannot rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
N = 3
PHASE_SUMMARIES = (
    "handoff_ms",
    "first_task_ms",
    "close_ms",
    "sequence_ms",
    "sequence_seen_ms",
    "answer_post_ms",
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def run_bench(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.sequences", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    )
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def check_phase(phase: dict[str, Any], *, steps: int) -> None:
    assert phase["sequences_triggered"] == N
    assert phase["sequences_completed"] == N
    assert phase["sequences_failed"] == 0
    assert phase["wall_s"] > 0
    assert phase["sequences_per_s"] > 0
    for name in PHASE_SUMMARIES:
        summary = phase[name]
        assert set(summary) == {"n", "p50", "p90", "p99", "mean", "min", "max"}, name
        assert summary["n"] > 0, name
        assert summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["max"], name
    assert phase["handoff_ms"]["n"] == N * (steps - 1)
    for name in ("handoff_ms", "first_task_ms", "sequence_ms", "sequence_seen_ms", "answer_post_ms"):
        assert phase[name]["min"] > 0, name
    assert phase["sequence_ms"]["n"] == N
    # a sequence takes at least its hand-offs
    assert phase["sequence_ms"]["p50"] > phase["handoff_ms"]["p50"]
    profile = phase["profile"]
    assert profile["sequences_sampled"] == N
    assert profile["handoffs_sampled"] == N * (steps - 1)
    total = profile["segments_ms"]["handoff_total"]
    assert total["n"] == N * (steps - 1) and total["p50"] > 0
    assert profile["per_sequence"]["activities"] >= steps
    assert set(phase["cpu_s"]) >= {"temporal", "bench"}


def test_the_benchmark_reports_every_field_with_sane_values():
    report = run_bench("--sequences", str(N), "--concurrency", str(N), "--warmup", "1", "--profile", str(N))

    assert report["benchmark"] == "sequences"
    params = report["params"]
    assert (params["sequences"], params["concurrency"], params["mode"]) == (N, N, "push")
    steps = len(params["tasks"])
    assert params["tasks"] == ["deployment", "test", "release"]
    machine = report["machine"]
    assert machine["cpu_count"] >= 1
    assert machine["python"] and machine["temporalio"] and "temporal version" in machine["temporal_cli"]
    assert len(machine["loadavg_before"]) == 3

    check_phase(report["capstan"], steps=steps)
    check_phase(report["baseline"], steps=steps)
    segments = report["capstan"]["profile"]["segments_ms"]
    for step in ("signaled_to_wft_start", "emit_run", "wft2_run", "push_event_start_to_received"):
        assert segments[step]["n"] > 0, step
    assert report["capstan"]["profile"]["first_task_timeline_ms"]["received"]["p50"] > 0

    peak = report["stack"]["peak_rss_mb"]
    assert peak["gateway"] > 10 and peak["worker"] > 10
    ratios = report["ratios"]
    for name in ("sequences_per_s", "handoff_p50", "handoff_p99", "sequence_p50", "sequence_p99"):
        assert isinstance(ratios[name], float) and ratios[name] > 0, name
