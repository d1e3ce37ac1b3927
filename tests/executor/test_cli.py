"""``capstan executor``'s command line: options that cannot work end with one error line."""

from __future__ import annotations

import pytest

from tests.capstan.cli_runner import one_error_line, run_capstan

pytestmark = pytest.mark.timeout(60)

URL = "http://127.0.0.1:9/api"  # nothing listens: these runs must stop before connecting


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--task", "test", "--allow", "shell"], "unknown feature 'shell' (features: process, files,"),
        (["--task", "test", "--deny", "files,nope"], "unknown feature 'nope'"),
        (["--task", "test", "--mode", "carrier-pigeon"], "invalid --mode 'carrier-pigeon'"),
        (["--task", "test", "--service", "carts"], "--service needs --stage too"),
        (["--task", "not.a.task"], "task name 'not.a.task' cannot be used in an event type"),
        (["--task", "test", "--log-level", "loud"], "invalid --log-level 'loud'"),
    ],
)
async def test_bad_options_are_one_line_errors(args: list[str], says: str):
    run = await run_capstan("executor", *args, api_url=URL, token="t")
    assert says in one_error_line(run)


async def test_the_task_option_is_required_and_named_in_help():
    run = await run_capstan("executor", api_url=URL, token="t")
    assert run.code == 2
    assert "--task" in run.stderr
    helped = await run_capstan("executor", "--help")
    assert helped.code == 0
    assert all(
        option in helped.stdout for option in ("--task", "--allow", "--allow-command", "--output-limit")
    )
