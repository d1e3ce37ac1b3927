"""A dev server of its own that suggests continue-as-new early, for long Keptn contexts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from capstan.temporal import SEARCH_ATTRIBUTES
from tests.fixtures.ports import free_port
from tests.fixtures.temporal import _binary

HISTORY_LIMIT = 500
"""``limit.historyCount.suggestContinueAsNew`` of this module's dev server (default 4096).

One iteration writes about 90 events to the context's history, so a run holds five or six. Much
smaller runs would be slowed by the server itself: a run that continues as new within a second of
its start has its next run's first workflow task delayed to a second
(``history.workflowIdReuseMinimalInterval``, default 1 s)."""


@pytest_asyncio.fixture(scope="module")
async def small_history_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server of its own that suggests continue-as-new after ``HISTORY_LIMIT`` events."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=pydantic_data_converter,
        port=free_port(),
        search_attributes=[SearchAttributeKey.for_keyword(name) for name in SEARCH_ATTRIBUTES],
        dev_server_log_level="error",
        dev_server_extra_args=[
            *("--http-port", str(free_port()), "--metrics-port", str(free_port())),
            *("--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={HISTORY_LIMIT}"),
        ],
    )
    yield env
    await env.shutdown()
    await asyncio.sleep(0.5)  # sdk-python #300
