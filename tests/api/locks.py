"""Holding the application database's write lock from outside, as a stuck migration or a
long transaction would: reads go on, every write waits.

The lock is taken in a thread: the app and the worker run on the test's event loop, and a
write of theirs in flight must be able to finish while we wait for the lock."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

WRITTEN_TABLES = ("cases", "timeline", "messages", "health_checks")


def _lock(database_url: str) -> Any:
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[1]
        conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        conn.execute("BEGIN EXCLUSIVE")  # WAL: readers still read, writers wait
        return conn
    pg = psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"))
    # EXCLUSIVE mode lets SELECTs through and holds every write.
    pg.execute(f"LOCK TABLE {', '.join(WRITTEN_TABLES)} IN EXCLUSIVE MODE")
    return pg


def _release(conn: Any) -> None:
    conn.rollback()
    conn.close()


@asynccontextmanager
async def writes_blocked(database_url: str) -> AsyncIterator[None]:
    conn = await asyncio.to_thread(_lock, database_url)
    try:
        yield
    finally:
        await asyncio.to_thread(_release, conn)
