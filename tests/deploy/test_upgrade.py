"""A rolling upgrade from a previous version under load: workers, then gateways, one at a time.

Opt-in, because it exports a git revision and starts a stack of its own (about a minute)::

    CAPSTAN_DEPLOY_UPGRADE_FROM=9adff35 .venv/bin/pytest tests/deploy/test_upgrade.py -s

The stack starts with the workers and gateways of that revision (``git archive`` into a temp
dir). While the driver triggers steadily through both gateways, each worker is stopped and
replaced by one of this checkout, then each gateway. Nothing may be lost or done twice. While old
and new workers run side by side, a workflow task of a history written by new code may land on an
old worker and fail with a nondeterminism error; Temporal retries it on a new worker. The test
reports how many did (docs/deployment.md, "Changing a workflow").
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import report
from tests.deploy.load import run_load
from tests.deploy.stack import ROOT, deploy_stack, postgres_reachable
from workflows.sequence_run import EMIT_WITH_TARGETS_PATCH

FROM_ENV = "CAPSTAN_DEPLOY_UPGRADE_FROM"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(400),
    pytest.mark.skipif(not os.environ.get(FROM_ENV), reason=f"opt-in: set {FROM_ENV} to a git revision"),
]


@pytest.fixture
def previous_version() -> Iterator[Path]:
    tree = Path(tempfile.mkdtemp(prefix="capstan-previous-"))
    archive = subprocess.run(
        ["git", "archive", os.environ[FROM_ENV]], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True, timeout=60)
    yield tree
    shutil.rmtree(tree, ignore_errors=True)


async def test_rolling_upgrade_under_load_loses_nothing(previous_version: Path) -> None:
    if not await postgres_reachable():
        pytest.skip("no PostgreSQL service at CAPSTAN_DEPLOY_POSTGRES_URL (default 127.0.0.1:5432)")
    async with deploy_stack(previous_version) as stack:

        async def upgrade() -> None:
            await asyncio.sleep(4)  # a few sequences on the previous version only
            stack.code = None  # every start from now on runs this checkout
            for index in range(2):
                await stack.workers[index].stop()
                await stack.start_worker(index)
            for index in range(2):
                await stack.gateways[index].stop()
                await stack.start_gateway(index)

        load = await run_load(
            stack, f"upgrade-{uuid.uuid4().hex[:6]}", interval=0.4, services=4, during=upgrade
        )
        result = load.result
        report(
            f"rolling upgrade from {os.environ[FROM_ENV]}: {result['sequences']}; "
            f"status codes {load.log.between(0, float('inf'))}; "
            f"patch markers per context {dict(load.patched)}; "
            f"failed workflow tasks (retried) {len(load.failed_workflow_tasks)}: "
            f"{load.failed_workflow_tasks[:2]}"
        )
        assert load.drained, f"sequences did not all finish{stack.logs()}"
        assert not result["problems"], result["problems"][:10]
        sequences = result["sequences"]
        assert sequences["accepted"] == sequences["triggered"] == sequences["finished"] == sequences["passed"]
        assert (result["duplicates"], result["losses"], result["integration_violations"]) == (0, 0, 0)
        assert not load.log.server_errors(), load.log.server_errors()[:5]
        # both versions ran sequences: the new code marks the contexts it emitted a task in
        new = load.patched[EMIT_WITH_TARGETS_PATCH]
        assert 0 < new < sequences["accepted"], (new, sequences)
