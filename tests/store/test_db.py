import asyncio

import asyncpg

from store.db import create_pool, migrate, migration_files
from tests.fixtures.database import with_database


def test_migration_files_are_ordered_and_named():
    versions = [version for version, _ in migration_files()]
    assert versions == sorted(versions)
    assert versions[0] == "0001_initial"
    assert all(version[:4].isdigit() and version[4] == "_" for version in versions)


async def test_migrate_is_idempotent(pool):
    # the template was migrated already: nothing left to apply, however often it is called
    assert await migrate(pool) == []
    assert await migrate(pool) == []
    recorded = await pool.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in recorded] == [v for v, _ in migration_files()]


async def test_concurrent_migrations_apply_each_file_once(db_url):
    admin = await asyncpg.connect(with_database(db_url, "postgres"))
    empty = db_url.rsplit("/", 1)[-1].split("?", 1)[0] + "_empty"
    await admin.execute(f'CREATE DATABASE "{empty}"')
    url = with_database(db_url, empty)
    pools = [await create_pool(url, min_size=1, max_size=1) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(p) for p in pools))
        applied = [version for result in results for version in result]
        assert sorted(applied) == [v for v, _ in migration_files()]
        assert [r for r in results if r] and sum(1 for r in results if r) == 1
        tables = await pools[0].fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        assert {"events", "projects", "stages", "services", "commits", "resource_versions"} <= {
            t["tablename"] for t in tables
        }
    finally:
        for p in pools:
            await p.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)')
        await admin.close()


async def test_pool_round_trips_json(pool):
    value = {"a": [1, 2, {"b": None}], "ü": "ä"}
    assert await pool.fetchval("SELECT $1::jsonb", value) == value
    assert await pool.fetchval("SELECT $1::json", value) == value
