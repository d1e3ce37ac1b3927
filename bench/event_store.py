"""The event store at a million events: datastore and evaluation-history queries against raw SQL.

Run from the repository root::

    .venv/bin/python -m bench.event_store [--events N] [--iterations M] [--server-url URL]

It creates a fresh database ``capstan_bench_<random>`` (on ``--server-url``, else on an embedded
PostgreSQL in a temp dir), migrates it, checks on a sample that the bulk load stores exactly the
rows ``store.events.insert_event`` stores, loads N generated Keptn events in bulk
(:mod:`bench.event_store_load`), starts the gateway on it (``python -m api``), and times, M times
each and interleaved:

* ``context_http``: ``GET /api/mongodb-datastore/event?keptnContext=<ctx>`` through the gateway;
* ``context_store``: the store function behind it (``store.events.get_events``), in this process;
* ``context_sql``: the same SQL, straight through asyncpg (the baseline);
* ``history_store``: the lighthouse's evaluation history (``store.evaluations.previous_evaluations``);
* ``history_sql``: the same SQL through asyncpg (its baseline);
* ``history_http``: Keptn's lighthouse query, ``GET /api/mongodb-datastore/event/type/
  sh.keptn.event.evaluation.finished?filter=...&excludeInvalidated=true&limit=P``;
* ``history_http_sql``: the SQL behind that route through asyncpg (its baseline).

It prints one JSON object to stdout (logs go to stderr) and drops the database. The exit code is 1
if a check failed. See ``bench/README.md`` for every field.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from bench import event_store_queries as q
from bench.evaluation_scoring import summary_ms
from bench.event_store_data import EVALUATION_FINISHED, EventFactory, Scope
from bench.event_store_gateway import Gateway, running_gateway
from bench.event_store_load import bench_database, bulk_load, postgres_server, verify_bulk_matches_insert
from bench.sequences import _code, _machine
from bench.stats import ratio
from store.db import SERVER_SETTINGS as POOL_SETTINGS
from store.db import create_pool

log = logging.getLogger("bench.event_store")
OPERATIONS = (
    "context_http",
    "context_store",
    "context_sql",
    "history_store",
    "history_sql",
    "history_http",
    "history_http_sql",
)
RATIOS = {
    "context_http": "context_sql",
    "context_store": "context_sql",
    "history_store": "history_sql",
    "history_http": "history_http_sql",
}
"""Capstan operation → its baseline."""
SERVER_SETTINGS = (
    "server_version",
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "random_page_cost",
    "plan_cache_mode",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.event_store", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events stored (default 1,000,000)")
    parser.add_argument("--iterations", type=int, default=300, help="timed calls per operation (default 300)")
    parser.add_argument(
        "--warmup", type=int, default=20, help="untimed calls per operation first (default 20)"
    )
    parser.add_argument(
        "--server-url",
        default=os.environ.get("CAPSTAN_BENCH_DATABASE_URL"),
        help="PostgreSQL server URL (a role that may create databases); default: "
        "$CAPSTAN_BENCH_DATABASE_URL, else an embedded PostgreSQL in a temp dir",
    )
    parser.add_argument("--projects", type=int, default=20, help="projects (default 20)")
    parser.add_argument("--services", type=int, default=10, help="services per project (default 10)")
    parser.add_argument(
        "--indicators", type=int, default=8, help="indicator results per evaluation (default 8)"
    )
    parser.add_argument(
        "--history-limit", type=int, default=20, help="previous evaluations asked for (default 20)"
    )
    parser.add_argument("--verify-events", type=int, default=600, help="sample checked against insert_event")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    if args.events < 100 or args.iterations < 1 or args.warmup < 0 or not 1 <= args.history_limit <= 100:
        parser.error("--events >= 100, --iterations >= 1, --warmup >= 0, 1 <= --history-limit <= 100")
    return args


class Runner:
    """The operations, each called with an iteration's random key; it checks every answer."""

    def __init__(
        self,
        gateway: Gateway,
        http: httpx.AsyncClient,
        pool: asyncpg.Pool,
        raw: asyncpg.Connection,
        contexts: dict[str, int],
        histories: list[q.HistoryKey],
        limit: int,
    ) -> None:
        self.gateway, self.http, self.pool, self.raw = gateway, http, pool, raw
        self.contexts, self.context_keys, self.histories, self.limit = (
            contexts,
            list(contexts),
            histories,
            limit,
        )
        self.statements: dict[str, tuple[tuple[str, ...], list[q.Statement]]] = {}
        self.problems: list[str] = []

    async def capture(self) -> None:
        """The SQL of the store functions, for one sample key each."""
        context, key = self.context_keys[0], self.histories[0]
        history_key = (key.project, key.stage, key.service)
        async with self.pool.acquire() as conn:
            self.statements["context"] = (
                (context,),
                await q.capture(conn, lambda c: q.context_page(c, context)),
            )
            self.statements["history"] = (
                history_key,
                await q.capture(conn, lambda c: q.history(c, key, self.limit)),
            )
            self.statements["by_type"] = (
                history_key,
                await q.capture(conn, lambda c: q.by_type(c, key, self.limit)),
            )

    def _problem(self, text: str) -> None:
        if len(self.problems) < 10:
            self.problems.append(text)

    def _check_page(self, name: str, context: str, shown: int, total: int | None = None) -> None:
        expected = self.contexts[context]
        if shown != min(20, expected) or (total is not None and total != expected):
            self._problem(f"{name} {context}: {shown} shown, total {total}, expected {expected}")

    def _check_history(self, name: str, key: q.HistoryKey, found: int) -> None:
        if not 0 <= found <= self.limit:
            self._problem(f"{name} {key}: {found} evaluations")

    def call(self, name: str, rng: random.Random) -> Callable[[], Awaitable[object]]:
        """One call of ``name`` with a fresh random key."""
        context = rng.choice(self.context_keys)
        key = rng.choice(self.histories)
        parts = (key.project, key.stage, key.service)
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "context_http": lambda: self._context_http(context),
            "context_store": lambda: self._context_store(context),
            "context_sql": lambda: self._raw("context", (context,), context=context),
            "history_store": lambda: self._history_store(key),
            "history_sql": lambda: self._raw("history", parts, key=key),
            "history_http": lambda: self._history_http(key),
            "history_http_sql": lambda: self._raw("by_type", parts, key=key),
        }
        return calls[name]

    async def _context_http(self, context: str) -> None:
        answer = await self.http.get("/mongodb-datastore/event", params={"keptnContext": context})
        if answer.status_code != 200:
            self._problem(f"context_http {context}: HTTP {answer.status_code}")
            return
        body = answer.json()
        self._check_page("context_http", context, len(body["events"]), body["totalCount"])

    async def _context_store(self, context: str) -> None:
        self._check_page("context_store", context, await q.context_page(self.pool, context))

    async def _history_store(self, key: q.HistoryKey) -> None:
        self._check_history("history_store", key, len(await q.history(self.pool, key, self.limit)))

    async def _history_http(self, key: q.HistoryKey) -> None:
        answer = await self.http.get(
            f"/mongodb-datastore/event/type/{EVALUATION_FINISHED}",
            params={"filter": q.history_filter(key), "excludeInvalidated": "true", "limit": str(self.limit)},
        )
        if answer.status_code != 200:
            self._problem(f"history_http {key}: HTTP {answer.status_code}")
            return
        self._check_history("history_http", key, len(answer.json()["events"]))

    async def _raw(
        self, kind: str, new: tuple[str, ...], *, context: str | None = None, key: q.HistoryKey | None = None
    ) -> None:
        old, statements = self.statements[kind]
        rows = await q.run_raw(self.raw, q.rebind(statements, old, new))
        if context is not None:
            self._check_page(f"{kind}_sql", context, rows)
        elif key is not None:
            self._check_history(f"{kind}_sql", key, rows)

    async def same_answers(self, rng: random.Random, samples: int = 5) -> bool:
        """The store, the gateway and the raw SQL return the same history events (by id)."""
        for _ in range(samples):
            key = rng.choice(self.histories)
            stored = [e["id"] for e in await q.history(self.pool, key, self.limit)]
            old, statements = self.statements["history"]
            _, args = q.rebind(statements, old, (key.project, key.stage, key.service))[-1]
            fetched = await self.raw.fetch(statements[-1][0], *(q.raw_argument(a) for a in args))
            raw = [json.loads(r[0])["id"] for r in fetched]
            answer = await self.http.get(
                f"/mongodb-datastore/event/type/{EVALUATION_FINISHED}",
                params={
                    "filter": q.history_filter(key),
                    "excludeInvalidated": "true",
                    "limit": str(self.limit),
                },
            )
            served = [e["id"] for e in answer.json()["events"]]
            if not stored == raw == served:
                self._problem(f"history of {key} differs: store {stored}, sql {raw}, http {served}")
                return False
        return True


async def measure(runner: Runner, *, iterations: int, warmup: int, seed: int) -> dict[str, Any]:
    """Warm up, then time every operation ``iterations`` times, interleaved."""
    rng = random.Random(seed)
    for _, name in q.interleaved(list(OPERATIONS), warmup, seed):
        await runner.call(name, rng)()
    times: dict[str, list[float]] = {name: [] for name in OPERATIONS}
    for _, name in q.interleaved(list(OPERATIONS), iterations, seed + 1):
        times[name].append(await q.timed(runner.call(name, rng)))
    return {name: summary_ms(values) for name, values in times.items()}


def _ratios(timings: dict[str, Any]) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    for ours, base in RATIOS.items():
        for stat in ("p50", "p99"):
            found[f"{ours}_{stat}"] = ratio(timings[ours][stat], timings[base][stat])
    return found


def _histories(evaluations: dict[tuple[str, str, str], int]) -> list[q.HistoryKey]:
    return [q.HistoryKey(*key) for key in sorted(evaluations)]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load the store, start the gateway, measure, and return the report."""
    started = datetime.now(UTC)
    code, load_before = _code(), os.getloadavg()
    scope = Scope(projects=args.projects, services=args.services, indicators=args.indicators)
    with postgres_server(args.server_url) as server:
        async with bench_database(server) as url:
            verified = await verify_bulk_matches_insert(url, scope, args.verify_events, args.seed + 1000)
            factory = EventFactory(scope, args.seed)
            log.info("loading %d events", args.events)
            loaded = await bulk_load(url, factory, args.events)
            log.info("loaded in %.0f s", loaded.total_s)
            generated = factory.generated
            # the baseline runs in the same session settings as Capstan's pooled connections
            raw = await asyncpg.connect(url, server_settings=POOL_SETTINGS)
            pool = await create_pool(url, min_size=1, max_size=2)
            try:
                server_settings = {name: await raw.fetchval(f"SHOW {name}") for name in SERVER_SETTINGS}
                migrations = [
                    r[0] for r in await raw.fetch("SELECT version FROM schema_migrations ORDER BY 1")
                ]
                with running_gateway(url) as gateway:
                    async with httpx.AsyncClient(
                        base_url=gateway.api_url, headers={"x-token": gateway.token}, timeout=30.0
                    ) as http:
                        runner = Runner(
                            gateway, http, pool, raw, generated.contexts,
                            _histories(generated.evaluations), args.history_limit,
                        )  # fmt: skip
                        await runner.capture()
                        same = await runner.same_answers(random.Random(args.seed + 2))
                        timings = await measure(
                            runner, iterations=args.iterations, warmup=args.warmup, seed=args.seed
                        )
                        gateway_rss = gateway.rss_mb()
                plan_use = await q.plan_cache(raw)
                plans = {
                    kind: await q.plans(raw, q.rebind(statements, old, old))
                    for kind, (old, statements) in runner.statements.items()
                }
            finally:
                await pool.close()
                await raw.close()
    per_scope = sorted(generated.evaluations.values())
    return {
        "benchmark": "event_store",
        "date": started.isoformat(timespec="seconds"),
        "code": code,
        "params": {
            "events": args.events,
            "iterations": args.iterations,
            "warmup": args.warmup,
            "projects": args.projects,
            "services": args.services,
            "indicators": args.indicators,
            "history_limit": args.history_limit,
            "history_results": list(q.HISTORY_RESULTS),
            "seed": args.seed,
            "server": "given" if args.server_url else "embedded",
        },
        "machine": _machine() | {"loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "postgres": server_settings | {"migrations": migrations},
        "data": {
            "events": generated.events,
            "contexts": len(generated.contexts),
            "events_per_context_max": max(generated.contexts.values()),
            "evaluation_finished": generated.evaluation_events,
            "evaluation_share": round(generated.evaluation_events / generated.events, 4),
            "invalidated": generated.invalidated,
            "history_scopes": len(per_scope),
            "evaluations_per_scope_median": per_scope[len(per_scope) // 2] if per_scope else 0,
        },
        "verify": verified,
        "load": loaded.as_dict(),
        "checks": {"same_history_answers": same, "problems": runner.problems},
        "timings_ms": timings,
        "ratios": _ratios(timings),
        "plans": plans,
        "plan_cache": plan_use,
        "gateway_rss_mb": gateway_rss,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the JSON report; 1 if a check failed."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2))
    checks = report["checks"]
    return 0 if checks["same_history_answers"] and not checks["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
