"""The baseline: the smallest plain-Temporal workflow with the shape of a Capstan sequence.

Each of its steps runs one activity that POSTs the step to an HTTP receiver (the "integration")
and then waits for a signal the receiver sends back (its "finished"): the minimal Temporal
equivalent of a task round trip. Deterministic, and kept free of I/O imports for the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

BASELINE_WORKFLOW = "BenchBaselineSequence"
DELIVER_ACTIVITY = "bench_deliver"
FINISHED_SIGNAL = "finished"


@dataclass
class BaselineInput:
    """Input of the baseline workflow."""

    url: str
    """Where the activity POSTs each step."""
    steps: int


@dataclass
class DeliverInput:
    """Input of the delivering activity (also the JSON body it POSTs)."""

    url: str
    workflow_id: str
    step: int


@workflow.defn(name=BASELINE_WORKFLOW)
class BaselineSequence:
    """``steps`` times: deliver the step, then wait for its ``finished`` signal."""

    def __init__(self) -> None:
        self.finished: set[int] = set()

    @workflow.signal(name=FINISHED_SIGNAL)
    def on_finished(self, step: int) -> None:
        """The receiver finished ``step``."""
        self.finished.add(step)

    @workflow.run
    async def run(self, input: BaselineInput) -> int:
        """Run the steps in order; return how many ran."""
        workflow_id = workflow.info().workflow_id
        for step in range(input.steps):
            await workflow.execute_activity(
                DELIVER_ACTIVITY,
                DeliverInput(url=input.url, workflow_id=workflow_id, step=step),
                start_to_close_timeout=timedelta(seconds=30),
            )
            await self._finished(step)
        return input.steps

    async def _finished(self, step: int) -> None:
        await workflow.wait_condition(lambda: step in self.finished)
