"""Logging of a benchmark run: progress on stderr, so that stdout holds only the JSON report."""

from __future__ import annotations

import logging
import sys

NOISY_LOGGERS = ("httpx", "capstan.sdk", "temporalio", "uvicorn")
"""Libraries whose per-request INFO lines would drown the benchmark's own progress."""


def configure_logging() -> None:
    """INFO and above on stderr, with the libraries in :data:`NOISY_LOGGERS` at WARNING."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
