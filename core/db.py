"""The database engine: async SQLAlchemy over aiosqlite (embedded default) or psycopg
(PostgreSQL). One engine per process, built in the API lifespan or in worker.py and injected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]

LOCK_TIMEOUT_SECONDS = 10
"""How long a statement waits for a lock (SQLite's busy timeout, PostgreSQL's lock_timeout)
before it fails and its activity is retried. The workflows' activity timeouts sit above it
(`workflows/case.py`), so a lock wait ends in the database's error, never in Temporal
abandoning an activity that is still waiting."""
SQLITE_BUSY_TIMEOUT_MS = LOCK_TIMEOUT_SECONDS * 1000


def async_url(url: str) -> str:
    """Accept plain URLs too (`sqlite:///…`, `postgresql://…`) and pick the async driver."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url.removeprefix("sqlite:")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def sync_url(url: str) -> str:
    """The same database through a synchronous driver (Alembic runs synchronously)."""
    url = async_url(url)
    return url.replace("sqlite+aiosqlite:", "sqlite:", 1)


@dataclass(frozen=True, kw_only=True)
class PoolOptions:
    """One process's PostgreSQL connection pool (`Settings.database_pool`). At most
    `size + max_overflow` connections are open per process: multiply by the API and worker
    replicas and keep the sum under the server's max_connections."""

    size: int = 5
    max_overflow: int = 5
    timeout_seconds: float = 10.0
    recycle_seconds: int = 1800  # 0: never recycle
    pre_ping: bool = True

    def engine_arguments(self) -> dict[str, Any]:
        return {
            "pool_size": self.size,
            "max_overflow": self.max_overflow,
            "pool_timeout": self.timeout_seconds,
            "pool_recycle": self.recycle_seconds or -1,
            "pool_pre_ping": self.pre_ping,
        }


def make_engine(url: str, *, pool: PoolOptions | None = None, **kwargs: Any) -> AsyncEngine:
    """The engine for `url`. On PostgreSQL `pool` sizes the connection pool (the API and the
    worker pass their settings'; unset, SQLAlchemy's defaults with pre-ping, as one-off
    tools and tests need). SQLite keeps its own pool: one file, no server to share."""
    url = async_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": LOCK_TIMEOUT_SECONDS}, **kwargs)
        _sqlite_pragmas(engine)
        return engine
    pooling = pool.engine_arguments() if pool else {"pool_pre_ping": True}
    return create_async_engine(
        url,
        connect_args={"options": f"-c lock_timeout={LOCK_TIMEOUT_SECONDS * 1000}"},
        **{**pooling, **kwargs},
    )


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    # The API and the worker are separate processes writing one file: WAL lets readers run
    # beside the writer and busy_timeout makes a writer wait instead of failing at once.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def release_connection(session: AsyncSession) -> None:
    """End the session's read-only transaction so its connection goes back to the pool
    before a call that may wait (a Temporal start, update or query takes seconds when the
    workers are behind); the next statement takes a connection again. A session holding
    changes not yet flushed keeps its transaction: writes are never committed by this.
    Objects already loaded stay usable (`expire_on_commit=False`)."""
    if session.in_transaction() and not (session.new or session.dirty or session.deleted):
        await session.commit()


def dialect_of(session: AsyncSession) -> str:
    """The name of the database the session talks to (`sqlite`, `postgresql`)."""
    bind = session.bind
    if bind is None:
        raise RuntimeError("the session is not bound to an engine")
    return bind.dialect.name
