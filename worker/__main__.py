"""Run the worker: ``python -m worker`` (what ``capstan up`` starts)."""

from __future__ import annotations

import asyncio
import os
import sys

import structlog

from capstan.logs import configure_logging
from capstan.settings import Settings
from keptn.errors import KeptnError
from worker.main import main_async


def main() -> None:
    settings = Settings()
    configure_logging(settings, process="worker")
    code = 0
    try:
        asyncio.run(main_async(settings))
    except KeptnError as exc:
        structlog.get_logger("worker").error("worker failed", error=str(exc))
        code = 1
    except Exception as exc:  # log it through our chain, then exit non-zero for the supervisor
        structlog.get_logger("worker").error("worker failed", error=str(exc), exc_info=True)
        code = 1
    # Exit without interpreter finalization: the Temporal SDK's native threads can crash it
    # (sdk-python #300, seen in 35% of short runs); everything is already shut down here.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
