"""Quality-gate throughput: evaluations per second with many objectives and previous evaluations.

Run from the repository root::

    .venv/bin/python -m bench.evaluations [--evaluations N] [--concurrency C] [--scoring-iterations M]
                                          [--objectives K] [--previous P] [--skip-end-to-end]

Two phases, each against a baseline measured in the same run:

1. ``scoring`` (:mod:`bench.evaluation_scoring`): lighthouse's scoring in this process, interleaved
   with its I/O floor (decoding the inputs, encoding the result).
2. ``end_to_end`` (:mod:`bench.evaluation_stack`): evaluations through ``python -m capstan up`` on free
   ports and a temp data dir, with an SLI provider answering ``get-sli.triggered`` over the API,
   against the bare-Temporal round trip of :mod:`bench.baseline` on the same dev server.

It prints one JSON object to stdout; logs go to stderr. The exit code is 1 if an evaluation did
not complete or was not scored as expected. See ``bench/README.md`` for every field.
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

from bench.baseline import run_baseline
from bench.evaluation_report import RESULTS
from bench.evaluation_scoring import run_scoring
from bench.evaluation_stack import run_end_to_end
from bench.logs import configure_logging
from bench.sequences import _code, _machine
from bench.stack import Sampler, cpu_delta, cpu_seconds, running_stack
from bench.stats import ratio

log = logging.getLogger("bench")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.evaluations", description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=20, help="end-to-end evaluations (default 20)")
    parser.add_argument("--concurrency", type=int, default=5, help="evaluations in flight (default 5)")
    parser.add_argument(
        "--scoring-iterations",
        type=int,
        default=200,
        help="in-process evaluations per operation (default 200)",
    )
    parser.add_argument("--objectives", type=int, default=100, help="SLO objectives (default 100)")
    parser.add_argument(
        "--previous", type=int, default=20, help="previous evaluations compared with (default 20)"
    )
    parser.add_argument("--skip-end-to-end", action="store_true", help="only the in-process scoring phase")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured evaluations per side (default 1)")
    parser.add_argument(
        "--baseline-steps", type=int, default=2, help="round trips of each baseline workflow (default 2)"
    )
    parser.add_argument("--profile", type=int, default=20, help="evaluations whose history is broken down")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one evaluation may take")
    args = parser.parse_args(argv)
    if min(args.evaluations, args.concurrency, args.scoring_iterations, args.objectives, args.previous) < 1:
        parser.error(
            "--evaluations, --concurrency, --scoring-iterations, --objectives, --previous must be >= 1"
        )
    if args.warmup < 0 or args.baseline_steps < 1 or args.profile < 0 or args.timeout <= 0:
        parser.error("--warmup and --profile must be >= 0, --baseline-steps >= 1, --timeout > 0")
    return args


def _end_to_end_ratios(capstan: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    """Capstan / baseline: throughput (< 1 = slower) and p50/p99 latencies (> 1 = slower)."""
    found: dict[str, float | None] = {
        "evaluations_per_s": ratio(capstan.get("evaluations_per_s"), baseline.get("sequences_per_s"))
    }
    theirs = baseline.get("sequence_ms") or {}
    for name in ("evaluation_ms", "sequence_ms"):
        ours = capstan.get(name) or {}
        for q in ("p50", "p99"):
            found[f"{name.removesuffix('_ms')}_{q}"] = ratio(ours.get(q), theirs.get(q))
    return found


async def _end_to_end(args: argparse.Namespace) -> dict[str, Any]:
    with running_stack() as stack, Sampler(stack) as sampler:
        cpu_start = cpu_seconds(stack)
        baseline = await run_baseline(
            stack.temporal_target,
            count=args.evaluations,
            concurrency=args.concurrency,
            steps=args.baseline_steps,
            warmup=args.warmup,
            sequence_timeout=args.timeout,
            profile=0,
        )
        baseline.pop("profile", None)
        cpu_middle = cpu_seconds(stack)
        capstan = await run_end_to_end(
            stack,
            count=args.evaluations,
            concurrency=args.concurrency,
            objectives=args.objectives,
            previous=args.previous,
            warmup=args.warmup,
            evaluation_timeout=args.timeout,
            sampled=args.profile,
        )
        cpu_end = cpu_seconds(stack)
        ready = stack.ready_line
    baseline["cpu_s"] = cpu_delta(cpu_start, cpu_middle)
    capstan["cpu_s"] = cpu_delta(cpu_middle, cpu_end)
    return {
        "stack": {"ready": ready, "peak_rss_mb": sampler.peak_mb, "first_rss_mb": sampler.first_mb},
        "capstan": capstan,
        "baseline": baseline,
        "ratios": _end_to_end_ratios(capstan, baseline),
    }


def failures(report: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """What went wrong in a report; empty if every evaluation completed and was scored as expected."""
    found = []
    scoring = report["scoring"]
    if scoring["result"] not in RESULTS:
        found.append(f"scoring: result {scoring['result']!r}")
    if sum(scoring["indicator_statuses"].values()) != args.objectives:
        found.append(f"scoring: {scoring['indicator_statuses']} for {args.objectives} objectives")
    if scoring["compared_events"] != args.previous:
        found.append(f"scoring: compared with {scoring['compared_events']} of {args.previous}")
    end = report["end_to_end"]
    if end is not None:
        capstan, baseline, check = end["capstan"], end["baseline"], end["capstan"]["check"]
        if capstan["evaluations_completed"] != args.evaluations:
            found.append(f"end_to_end: {capstan['evaluations_completed']} of {args.evaluations} completed")
        if check["evaluations_valid"] != args.evaluations:
            found.append(f"end_to_end: {check['evaluations_valid']} valid: {check['problems']}")
        if baseline["sequences_completed"] != args.evaluations:
            found.append(f"baseline: {baseline['sequences_completed']} of {args.evaluations} completed")
    return found


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run both phases and return the report."""
    started = datetime.now(UTC)
    code = _code()
    load_before = os.getloadavg()
    scoring = await run_scoring(
        iterations=args.scoring_iterations, objectives=args.objectives, previous=args.previous
    )
    end_to_end = None if args.skip_end_to_end else await _end_to_end(args)
    report: dict[str, Any] = {
        "benchmark": "evaluations",
        "date": started.isoformat(timespec="seconds"),
        "code": code,
        "params": {
            "evaluations": args.evaluations,
            "concurrency": args.concurrency,
            "scoring_iterations": args.scoring_iterations,
            "objectives": args.objectives,
            "previous": args.previous,
            "warmup": args.warmup,
            "baseline_steps": args.baseline_steps,
            "end_to_end": not args.skip_end_to_end,
        },
        "machine": _machine() | {"loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "scoring": scoring,
        "end_to_end": end_to_end,
    }
    report["failures"] = failures(report, args)
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the JSON report; 1 if anything failed."""
    args = parse_args(argv)
    configure_logging()
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2))
    for failure in report["failures"]:
        log.error("%s", failure)
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
