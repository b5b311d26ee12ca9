"""Each API and worker process keeps a bounded PostgreSQL pool sized by CASEDESK_DATABASE_*
settings, so several replicas fit one server; SQLite keeps its own pool."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from core.db import PoolOptions, make_engine
from core.settings import Settings

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def test_pool_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "CASEDESK_DATABASE_POOL_SIZE": "8",
        "CASEDESK_DATABASE_MAX_OVERFLOW": "2",
        "CASEDESK_DATABASE_POOL_TIMEOUT_SECONDS": "4.5",
        "CASEDESK_DATABASE_POOL_RECYCLE_SECONDS": "600",
        "CASEDESK_DATABASE_POOL_PRE_PING": "false",
    }.items():
        monkeypatch.setenv(name, value)

    pool = Settings(data_dir=tmp_path, environment="test").database_pool

    assert pool == PoolOptions(
        size=8, max_overflow=2, timeout_seconds=4.5, recycle_seconds=600, pre_ping=False
    )


def test_default_pool_holds_ten_connections_per_process(tmp_path: Path) -> None:
    pool = Settings(data_dir=tmp_path, environment="test").database_pool

    assert pool.size + pool.max_overflow == 10
    assert pool.pre_ping and pool.timeout_seconds < 60  # below the activities' limit


async def test_a_postgresql_engine_gets_the_pool_options() -> None:
    options = PoolOptions(
        size=3, max_overflow=1, timeout_seconds=2.0, recycle_seconds=900, pre_ping=True
    )

    engine = make_engine(PG_URL, pool=options)
    try:
        pool = engine.sync_engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.size() == 3
        assert pool._max_overflow == 1
        assert pool._timeout == 2.0
        assert pool._recycle == 900
        assert pool._pre_ping is True
        async with engine.connect() as connection:  # the options are ones psycopg accepts
            assert (await connection.execute(text("select 1"))).scalar() == 1
    finally:
        await engine.dispose()


def test_zero_recycle_keeps_connections() -> None:
    engine = make_engine(PG_URL, pool=PoolOptions(recycle_seconds=0))

    assert engine.sync_engine.pool._recycle == -1


def test_without_options_postgresql_keeps_sqlalchemys_pool_with_pre_ping() -> None:
    engine = make_engine(PG_URL)

    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    assert (pool.size(), pool._max_overflow, pool._pre_ping) == (5, 10, True)


def test_sqlite_ignores_the_pool_options(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"

    with_options = make_engine(url, pool=PoolOptions(size=1, max_overflow=0))
    without = make_engine(url)

    pools = [engine.sync_engine.pool for engine in (with_options, without)]
    assert [(type(pool), pool.size(), pool._max_overflow) for pool in pools] == [  # type: ignore[attr-defined]
        (type(pools[1]), 5, 10),
        (type(pools[1]), 5, 10),
    ]
