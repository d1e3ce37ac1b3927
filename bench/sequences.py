"""Sequence throughput and task hand-off latency of Capstan, against a plain-Temporal baseline.

Run from the repository root::

    .venv/bin/python -m bench.sequences [--sequences N] [--concurrency C] [--mode push|pull]

It starts ``python -m capstan up`` on free loopback ports and a temp data dir, runs the baseline
(:mod:`bench.baseline`) and then Capstan (:mod:`bench.capstan_phase`) on the same Temporal dev
server, stops everything, and prints one JSON object to stdout; logs go to stderr. The exit code is
1 if any sequence did not complete. See ``bench/README.md`` for every field.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from bench.baseline import run_baseline
from bench.capstan_phase import TASKS, run_capstan
from bench.logs import configure_logging
from bench.stack import ROOT, Sampler, cpu_delta, cpu_seconds, running_stack
from bench.stats import ratios
from capstan.devserver import temporal_cli

log = logging.getLogger("bench")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.sequences", description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=50, help="sequences per phase (default 50)")
    parser.add_argument("--concurrency", type=int, default=10, help="sequences in flight (default 10)")
    parser.add_argument("--mode", choices=("push", "pull"), default="push", help="integration delivery")
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="pull mode: seconds between polls (SDK default 1)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured sequences per phase (default 2)")
    parser.add_argument("--profile", type=int, default=20, help="sequences whose history is broken down")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one sequence may take")
    args = parser.parse_args(argv)
    if args.sequences < 1 or args.concurrency < 1 or args.warmup < 0 or args.poll_interval <= 0:
        parser.error("--sequences and --concurrency must be >= 1, --warmup >= 0, --poll-interval > 0")
    return args


def _temporal_version() -> str:
    try:
        found = subprocess.run([temporal_cli(), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    return found.stdout.strip()


def _code() -> dict[str, Any]:
    """The commit measured, and whether tracked files differed from it."""

    def git(*args: str) -> str:
        found = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
        return found.stdout.strip()

    try:
        return {
            "commit": git("rev-parse", "--short", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "-uno")),
        }
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "temporalio": version("temporalio"),
        "temporal_cli": _temporal_version(),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run both phases on one fresh stack and return the report."""
    started = datetime.now(UTC)
    code = _code()
    load_before = os.getloadavg()
    phase_args = {
        "count": args.sequences,
        "concurrency": args.concurrency,
        "warmup": args.warmup,
        "sequence_timeout": args.timeout,
        "profile": args.profile,
    }
    with running_stack() as stack, Sampler(stack) as sampler:
        cpu_start = cpu_seconds(stack)
        baseline = await run_baseline(stack.temporal_target, steps=len(TASKS), **phase_args)
        cpu_middle = cpu_seconds(stack)
        capstan = await run_capstan(stack, mode=args.mode, poll_interval=args.poll_interval, **phase_args)
        cpu_end = cpu_seconds(stack)
        ready = stack.ready_line
    baseline["cpu_s"] = cpu_delta(cpu_start, cpu_middle)
    capstan["cpu_s"] = cpu_delta(cpu_middle, cpu_end)
    return {
        "benchmark": "sequences",
        "date": started.isoformat(timespec="seconds"),
        "code": code,
        "params": {
            "sequences": args.sequences,
            "concurrency": args.concurrency,
            "mode": args.mode,
            "poll_interval_s": args.poll_interval if args.mode == "pull" else None,
            "warmup": args.warmup,
            "tasks": list(TASKS),
        },
        "machine": _machine() | {"loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "stack": {"ready": ready, "peak_rss_mb": sampler.peak_mb, "first_rss_mb": sampler.first_mb},
        "capstan": capstan,
        "baseline": baseline,
        "ratios": ratios(capstan, baseline),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the JSON report; 1 if a sequence did not complete."""
    args = parse_args(argv)
    configure_logging()
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2))
    complete = all(
        report[phase]["sequences_completed"] == args.sequences for phase in ("capstan", "baseline")
    )
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
