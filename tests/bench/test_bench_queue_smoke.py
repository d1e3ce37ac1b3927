"""The queue hand-over benchmark end to end with two pairs, so that it cannot rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAIRS = 2
SUMMARY = {"n", "p50", "p90", "p99", "mean", "min", "max"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def run_bench(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.queue_handover", *args],
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


def check_side(side: dict[str, Any]) -> None:
    assert (side["pairs"], side["pairs_completed"], side["pairs_failed"]) == (PAIRS, PAIRS, 0)
    assert side["wall_s"] > 0
    for name in ("handover_ms", "handover_from_stored_ms", "answer_post_ms"):
        summary = side[name]
        assert set(summary) == SUMMARY, name
        assert summary["n"] == PAIRS, name
        assert summary["p50"] <= summary["p99"] <= summary["max"], name
    # the queued sequence's task arrives after the blocker's answer returned
    assert side["handover_ms"]["min"] > 0
    assert set(side["cpu_s"]) >= {"temporal", "bench"}


def test_the_queue_benchmark_hands_over_every_pair_and_reports_every_field():
    report = run_bench("--pairs", str(PAIRS), "--warmup", "0", "--profile", str(PAIRS))

    assert report["benchmark"] == "queue_handover"
    assert report["params"]["pairs"] == PAIRS and report["params"]["task"] == "deployment"
    assert len(report["machine"]["loadavg_before"]) == 3
    check_side(report["capstan"])
    check_side(report["baseline"])
    profile = report["capstan"]["profile"]
    assert profile["pairs_sampled"] == PAIRS
    segments = profile["segments_ms"]
    for name in (
        "blocker_stored_to_released",
        "released_to_granted",
        "granted_to_emit_scheduled",
        "push_started_to_received",
    ):
        assert segments[name]["n"] == PAIRS, name
    assert segments["handover_total"]["p50"] > 0
    for name in ("handover_p50", "handover_p99", "handover_from_stored_p50", "handover_from_stored_p99"):
        assert isinstance(report["ratios"][name], float) and report["ratios"][name] > 0, name
    keptn = report["keptn"]
    assert keptn["dispatch_tick_ms"] == 10_000
    assert keptn["capstan_p99_over_max"] is not None
    assert report["stack"]["peak_rss_mb"]["worker"] > 10
