"""The scenario of ``tests/chaos/test_faults.py``, for longer: ``python -m tests.chaos.soak --minutes N``.

Runs rounds of the four faults (worker SIGKILL, gateway SIGKILL, Temporal stop, PostgreSQL stop)
under steady load until N minutes are nearly over, lets the sequences finish, and prints the JSON
summary; the exit code is 0 when nothing was lost, doubled or answered with a 500. The
``CAPSTAN_CHAOS_*`` knobs of :mod:`tests.chaos.scenario` apply (e.g. a higher trigger rate).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from tests.chaos.scenario import Knobs, run_scenario


def main(argv: list[str] | None = None) -> int:
    """Run the soak; print the summary; 0 when every guarantee held."""
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    parser.add_argument("--report", type=Path, default=None, help="also write the summary here")
    parser.add_argument("--logs", type=Path, default=None, help="keep the processes' logs in this dir")
    args = parser.parse_args(argv)
    knobs = Knobs.from_env(minutes=args.minutes)
    summary = asyncio.run(run_scenario(knobs, report_to=args.report, keep_logs=args.logs))
    print(json.dumps(summary, indent=2, default=str))  # noqa: T201
    sequences = summary["sequences"]
    ok = (
        not summary["problems"]
        and not summary["server_errors"]
        and not summary["gateway_unhandled_errors"]
        and summary["duplicates"] == summary["losses"] == summary["integration_violations"] == 0
        and sequences["accepted"] == sequences["passed"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
