"""Queue hand-over latency: a blocking sequence finishes → the queued one's first task is delivered.

Run from the repository root::

    .venv/bin/python -m bench.queue_handover [--pairs K] [--concurrency C] [--warmup W]

It starts ``python -m capstan up`` as :mod:`bench.sequences` does, runs the bare-Temporal baseline
(:mod:`bench.queue_baseline`) and then Capstan (:mod:`bench.queue_capstan`) on the same dev
server, K pairs each, C pairs at a time (each pair on a service of its own), and prints one JSON
object to stdout; logs go to stderr. The exit code is 1 if a pair did not complete. Keptn
re-checked its queue every 10 s (``SEQUENCE_DISPATCH_INTERVAL_SEC``), so its hand-over took
anything up to 10 s; ``keptn`` in the report puts the numbers next to that tick. See
``bench/README.md`` for every field.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from bench.logs import configure_logging
from bench.queue_baseline import run_baseline_pairs
from bench.queue_capstan import TASK, run_capstan_pairs
from bench.queue_pairs import handover_ratios
from bench.sequences import _code, _machine
from bench.stack import Sampler, cpu_delta, cpu_seconds, running_stack
from bench.stats import ratio

log = logging.getLogger("bench")
KEPTN_TICK_MS = 10_000.0
"""Keptn's shipyard-controller dispatched queued sequences on this tick (behaviour spec §3.6)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.queue_handover", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--pairs", type=int, default=20, help="measured hand-overs per side (default 20)")
    parser.add_argument("--concurrency", type=int, default=1, help="pairs at a time (default 1)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured pairs per side first (default 1)")
    parser.add_argument("--profile", type=int, default=10, help="Capstan pairs broken down (default 10)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one pair may take")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--pairs and --concurrency must be >= 1, --warmup >= 0")
    return args


def _keptn(capstan: dict[str, Any]) -> dict[str, Any]:
    ours = capstan["handover_ms"]
    return {
        "dispatch_tick_ms": KEPTN_TICK_MS,
        "expected_handover_ms": {"mean": KEPTN_TICK_MS / 2, "max": KEPTN_TICK_MS},
        "capstan_p50_over_mean": ratio(ours["p50"], KEPTN_TICK_MS / 2),
        "capstan_p99_over_max": ratio(ours["p99"], KEPTN_TICK_MS),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run both sides on one fresh stack and return the report."""
    started = datetime.now(UTC)
    code, load_before = _code(), os.getloadavg()
    common = {
        "pairs": args.pairs,
        "concurrency": args.concurrency,
        "warmup": args.warmup,
        "pair_timeout": args.timeout,
    }
    with running_stack() as stack, Sampler(stack) as sampler:
        cpu_start = cpu_seconds(stack)
        baseline = await run_baseline_pairs(stack.temporal_target, **common)
        cpu_middle = cpu_seconds(stack)
        capstan = await run_capstan_pairs(stack, profile=args.profile, **common)
        cpu_end = cpu_seconds(stack)
        ready = stack.ready_line
    baseline["cpu_s"] = cpu_delta(cpu_start, cpu_middle)
    capstan["cpu_s"] = cpu_delta(cpu_middle, cpu_end)
    return {
        "benchmark": "queue_handover",
        "date": started.isoformat(timespec="seconds"),
        "code": code,
        "params": common | {"profile": args.profile, "task": TASK},
        "machine": _machine() | {"loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "stack": {"ready": ready, "peak_rss_mb": sampler.peak_mb},
        "capstan": capstan,
        "baseline": baseline,
        "ratios": handover_ratios(capstan, baseline),
        "keptn": _keptn(capstan),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the JSON report; 1 if a pair did not complete."""
    args = parse_args(argv)
    configure_logging()
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2))
    complete = all(report[side]["pairs_completed"] == args.pairs for side in ("capstan", "baseline"))
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
