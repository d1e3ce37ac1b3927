"""The fault scenario: steady load, four faults in turn, then what must hold, as a JSON summary.

Used by ``tests/chaos/test_faults.py`` (one short round) and ``python -m tests.chaos.soak`` (as
many rounds as fit in the minutes asked for). Knobs, as environment variables:

* ``CAPSTAN_CHAOS_INTERVAL`` — seconds between two triggers (default 0.5);
* ``CAPSTAN_CHAOS_SERVICES`` — services triggered round-robin (default 6);
* ``CAPSTAN_CHAOS_GAP`` — seconds of plain load before each fault (default 6);
* ``CAPSTAN_CHAOS_OUTAGE`` — seconds Temporal or PostgreSQL stays down (default 6);
* ``CAPSTAN_CHAOS_ROUNDS`` — rounds of the four faults (default 1);
* ``CAPSTAN_CHAOS_STALL`` — after the faults, seconds without any sequence finishing while some
  are unfinished that count as a hang (default 60);
* ``CAPSTAN_CHAOS_REPORT`` — also write the summary to this file.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.chaos.faults import TOKEN, FaultStack, fault_stack
from tests.chaos.load import (
    Driver,
    Integrations,
    Prober,
    StatusLog,
    Tracker,
    create_project,
)
from tests.chaos.verify import verify

FAULTS = ("worker-sigkill", "gateway-sigkill", "temporal-stop", "postgres-stop")
OUTAGES = ("temporal-stop", "postgres-stop")
"""Faults that take a dependency of the gateway away: it must answer 503 meanwhile, never 500."""
OUTAGE_TRIGGER_INTERVAL = 1.5
"""Seconds between the extra triggers sent while a dependency is down (each becomes a sequence)."""
ANSWER_WITHIN = 4.5
"""Seconds within which the gateway answers a request while a dependency is down (its Temporal client
gives up after about 3 s of retries, see capstan.temporal.FAIL_FAST_RETRY)."""


@dataclass(frozen=True)
class Knobs:
    """How long and how hard the scenario runs."""

    interval: float = 0.5
    services: int = 4
    gap: float = 6.0
    outage: float = 6.0
    rounds: int = 1
    minutes: float | None = None
    """Soak: keep running rounds until this many minutes have passed (overrides ``rounds``)."""
    stall: float = 60.0
    """After the last fault: seconds without any sequence finishing that count as a hang."""

    @classmethod
    def from_env(cls, **overrides: Any) -> Knobs:
        """The defaults, overridden by ``CAPSTAN_CHAOS_*`` variables, then by ``overrides``."""
        env = os.environ
        values: dict[str, Any] = {
            "interval": float(env.get("CAPSTAN_CHAOS_INTERVAL", cls.interval)),
            "services": int(env.get("CAPSTAN_CHAOS_SERVICES", cls.services)),
            "gap": float(env.get("CAPSTAN_CHAOS_GAP", cls.gap)),
            "outage": float(env.get("CAPSTAN_CHAOS_OUTAGE", cls.outage)),
            "rounds": int(env.get("CAPSTAN_CHAOS_ROUNDS", cls.rounds)),
            "stall": float(env.get("CAPSTAN_CHAOS_STALL", cls.stall)),
        }
        values.update(overrides)
        return cls(**values)


class Injector:
    """Injects the faults into a running stack and notes what each one cost."""

    def __init__(self, stack: FaultStack, driver: Driver, knobs: Knobs) -> None:
        self.stack, self.driver, self.knobs = stack, driver, knobs
        self.faults: list[dict[str, Any]] = []

    async def _gateway_ready(self) -> float:
        """Wait until the gateway's health says ready again; return when (monotonic)."""
        async with httpx.AsyncClient(timeout=2) as http:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if (await http.get(f"{self.stack.api_url}/health")).status_code == 200:
                        return time.monotonic()
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"the gateway did not become ready again{self.stack.logs()}")

    async def inject(self, name: str) -> None:
        """Inject one fault and restore the component; note its timings."""
        stack = self.stack
        began = time.monotonic()
        entry: dict[str, Any] = {"fault": name}
        if name == "worker-sigkill":
            stack.worker.kill()
            entry["restart_s"] = round(await stack.start_worker(), 2)
        elif name == "gateway-sigkill":
            stack.gateway.kill()
            entry["restart_s"] = round(await stack.start_gateway(), 2)
        else:
            stop, start = (
                (stack.stop_temporal, stack.start_temporal)
                if name == "temporal-stop"
                else (stack.stop_postgres, stack.start_postgres)
            )
            await stop()
            down_from = time.monotonic()
            entry["stop_s"] = round(down_from - began, 2)
            # The prober keeps reading; new triggers go in beside the driver's (which its backlog
            # limit may hold back), so POST /api/v1/event is surely called while it is down.
            while time.monotonic() < down_from + self.knobs.outage:
                self.driver.launch()
                await asyncio.sleep(OUTAGE_TRIGGER_INTERVAL)
            down_until = time.monotonic()
            entry["restart_s"] = round(await start(), 2)
            entry["down_s"] = round(down_until - down_from, 2)
            entry["down_window"] = (down_from, down_until)
        ready = await self._gateway_ready()
        entry["window"] = (began, ready)
        entry["gateway_ready_after_s"] = round(ready - began, 2)
        for proc in (stack.worker, stack.gateway, stack.temporal):
            proc.check_alive()  # a dependency's outage must not take a process down with it
        self.faults.append(entry)


async def _run_all(stop: asyncio.Event, *jobs: Callable[[asyncio.Event], Awaitable[None]]) -> list[Any]:
    return await asyncio.gather(*(job(stop) for job in jobs))


async def run_scenario(
    knobs: Knobs, *, report_to: Path | None = None, keep_logs: Path | None = None
) -> dict[str, Any]:
    """Start a fault stack, run the load, inject the faults, verify; return the JSON summary.

    Args:
        knobs: rates and durations.
        report_to: also write the summary to this file.
        keep_logs: copy the processes' logs to this directory at the end.
    """
    began = time.monotonic()
    log = StatusLog()
    project = f"chaos-{uuid.uuid4().hex[:8]}"
    services = [f"svc-{i}" for i in range(knobs.services)]
    async with fault_stack(keep_logs) as stack:
        startup = time.monotonic() - began
        async with httpx.AsyncClient(base_url=stack.api_url, headers={"x-token": TOKEN}, timeout=10) as api:
            await create_project(api, project, services)
            integrations = Integrations(stack.api_url, TOKEN, project, log)
            async with integrations.running():
                driver = Driver(
                    api, project, services, interval=knobs.interval, max_backlog=2 * knobs.services, log=log
                )
                prober, tracker = Prober(api, project, log), Tracker(driver, stack.database_url)
                injector = Injector(stack, driver, knobs)
                stop = asyncio.Event()
                load = asyncio.create_task(_run_all(stop, driver.run, prober.run, tracker.run))
                try:
                    await _faults(injector, knobs, began)
                finally:
                    stop.set()
                    await load
                drain_began = time.monotonic()
                drained = await tracker.drain(knobs.stall)
                drain = time.monotonic() - drain_began
                result = await verify(stack, api, project, driver, integrations)
        if not drained:
            result["problems"].append(
                f"no sequence finished for {knobs.stall:.0f} s while some were unfinished{stack.logs()}"
            )
        result["gateway_unhandled_errors"] = stack.unhandled_errors()
    summary = _summary(knobs, driver, injector, log, prober, result)
    summary["durations"].update(
        total_s=round(time.monotonic() - began, 1), startup_s=round(startup, 1), drain_s=round(drain, 1)
    )
    _write(summary, report_to)
    return summary


async def _faults(injector: Injector, knobs: Knobs, began: float) -> None:
    rounds = 0
    while True:
        for name in FAULTS:
            await asyncio.sleep(knobs.gap)
            await injector.inject(name)
        rounds += 1
        if knobs.minutes is None and rounds >= knobs.rounds:
            break
        if knobs.minutes is not None and time.monotonic() - began > knobs.minutes * 60 - 60:
            break  # leave about a minute for the last gap and the drain
    await asyncio.sleep(knobs.gap)  # load after the last fault, too


def _percentile(values: list[float], q: int) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _summary(
    knobs: Knobs,
    driver: Driver,
    injector: Injector,
    log: StatusLog,
    prober: Prober,
    result: dict[str, Any],
) -> dict[str, Any]:
    outages: dict[str, Any] = {}
    faults = []
    for number, entry in enumerate(injector.faults, 1):
        start, end = entry.pop("window")
        down = entry.pop("down_window", None)
        finished_after = [t.finished for t in driver.triggers if t.finished is not None and t.finished > end]
        if finished_after:
            entry["next_sequence_finished_after_s"] = round(min(finished_after) - start, 2)
        entry["status_codes"] = log.between(start, end)
        if down is not None:
            key = f"{entry['fault']}#{number}"
            outages[key] = {
                "while_down": log.between(*down, answered=True),
                "sent_while_down": log.between(*down),
                "slowest_answer_s": round(log.slowest(*down), 2),
                # a request sent well before the restart must have been answered before it, too
                "hung": len(log.hung(down[0], down[1] - ANSWER_WITHIN, by=down[1])),
                "until_ready": log.between(start, end),
                "health": [body for at, _, body in prober.health if down[0] <= at <= down[1]][:1],
            }
        faults.append(entry)
    durations = [t.finished - t.sent for t in driver.triggers if t.finished is not None]
    return {
        "knobs": {k: v for k, v in vars(knobs).items() if v is not None},
        "sequences": result.pop("sequences"),
        "faults": faults,
        "events": result.pop("events"),
        "api_view_converged_after_s": result.pop("api_view_converged_after_s"),
        "duplicates": result.pop("duplicates"),
        "losses": result.pop("losses"),
        "integration_violations": result.pop("integration_violations"),
        "server_errors": [vars(call) for call in log.server_errors()][:10],
        "gateway_unhandled_errors": result.pop("gateway_unhandled_errors"),
        "status_codes_during_outages": outages,
        "status_codes_all": log.between(0, float("inf")),
        "durations": {
            "sequence_p50_s": round(_percentile(durations, 50), 2),
            "sequence_p99_s": round(_percentile(durations, 99), 2),
            "sequence_max_s": round(max(durations, default=0.0), 2),
        },
        "problems": result.pop("problems"),
    }


def _write(summary: dict[str, Any], report_to: Path | None) -> None:
    text = json.dumps(summary, indent=2, default=str)
    for path in (report_to, os.environ.get("CAPSTAN_CHAOS_REPORT")):
        if path:
            Path(path).write_text(text + "\n")
