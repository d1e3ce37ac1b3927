from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import structlog

from capstan.logs import configure_logging
from capstan.settings import Settings


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)
    structlog.contextvars.clear_contextvars()


def _lines(capsys) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_json_lines_for_structlog_and_stdlib(capsys):
    configure_logging(Settings(log_format="json", log_level="info"), process="worker")
    structlog.contextvars.bind_contextvars(keptn_context="ctx-1")
    structlog.get_logger("capstan.test").info("from structlog", project="sockshop")
    # not uvicorn.error: tests that serve the app with uvicorn reconfigure that logger
    logging.getLogger("capstan.stdlib").info("from %s", "stdlib", extra={"temporal_activity": {"attempt": 2}})
    logging.getLogger("capstan.test").debug("filtered out")
    first, second = _lines(capsys)
    assert first["event"] == "from structlog" and first["project"] == "sockshop"
    assert second["event"] == "from stdlib" and second["temporal_activity"] == {"attempt": 2}
    for line in (first, second):
        assert line["process"] == "worker"
        assert line["keptn_context"] == "ctx-1"
        assert line["level"] == "info"
        assert "timestamp" in line


def test_exceptions_are_rendered_in_json(capsys):
    configure_logging(Settings(log_format="json"), process="gateway")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    (line,) = _lines(capsys)
    assert "ValueError: boom" in line["exception"]


def test_configuring_twice_keeps_one_handler(capsys):
    configure_logging(Settings(log_format="json"), process="a")
    configure_logging(Settings(log_format="console", log_level="warning"), process="b")
    logging.getLogger("x").warning("once")
    logging.getLogger("x").info("not shown")
    err = capsys.readouterr().err
    assert err.count("once") == 1 and "not shown" not in err and "process=b" in err
