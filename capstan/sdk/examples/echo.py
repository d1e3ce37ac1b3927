r"""An integration that answers every ``<task>.triggered`` event at once: the smallest useful one.

Run it against a control plane (the token is ``capstan up``'s ``<data dir>/api-token``)::

    python -m capstan.sdk.examples.echo --task deployment \
        --api-url http://127.0.0.1:8080/api --token "$(cat .capstan/api-token)" --mode pull

It registers as ``echo-service`` (``--name``), subscribes to ``sh.keptn.event.<task>.triggered``
for each ``--task``, and finishes each task with ``result: pass`` and data
``{"<task>": {"echo": {"by": <name>, "project": …, "stage": …, "service": …}}}``.
``--sleep`` makes each answer take that many seconds; ``--result`` picks the result.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from capstan.sdk import Integration, TaskContext, TaskFailed


def build(args: argparse.Namespace) -> Integration:
    """Build the echo integration from parsed command-line arguments."""
    integration = Integration(
        args.name,
        api_url=args.api_url,
        token=args.token,
        mode=args.mode,
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        poll_interval=args.poll_interval,
        heartbeat_interval=args.heartbeat_interval,
        shutdown_grace=args.shutdown_grace,
    )

    async def echo(ctx: TaskContext) -> dict[str, Any]:
        if args.sleep:
            await asyncio.sleep(args.sleep)
        if args.result != "pass":
            raise TaskFailed(f"echo was told to answer {args.result}", result=args.result)
        scope = {"by": args.name, "project": ctx.project, "stage": ctx.stage, "service": ctx.service}
        return {ctx.task: {"echo": scope}}

    for task in args.task:
        integration.task(task, projects=args.project or None)(echo)
    return integration


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m capstan.sdk.examples.echo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--task", action="append", required=True, help="task to answer (repeatable)")
    parser.add_argument(
        "--api-url", default=os.environ.get("KEPTN_API_ENDPOINT"), help="e.g. http://host/api"
    )
    parser.add_argument("--token", default=os.environ.get("KEPTN_API_TOKEN"), help="the API token")
    parser.add_argument("--mode", choices=("pull", "push"), default="pull")
    parser.add_argument("--name", default="echo-service", help="integration name (default echo-service)")
    parser.add_argument("--project", action="append", help="only events of this project (repeatable)")
    parser.add_argument("--host", default="127.0.0.1", help="push mode: address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="push mode: port to listen on")
    parser.add_argument("--public-url", help="push mode: URL the control plane posts to")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="pull mode: seconds between polls")
    parser.add_argument("--heartbeat-interval", type=float, default=10.0, help="seconds between heartbeats")
    parser.add_argument("--shutdown-grace", type=float, default=30.0, help="seconds to finish on SIGTERM")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds each answer takes")
    parser.add_argument("--result", choices=("pass", "warning", "fail"), default="pass")
    args = parser.parse_args(argv)
    if not args.api_url or not args.token:
        parser.error("--api-url and --token are required (or KEPTN_API_ENDPOINT and KEPTN_API_TOKEN)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the echo integration until SIGINT/SIGTERM; return the exit code."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
    build(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
