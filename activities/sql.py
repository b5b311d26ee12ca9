"""Single-statement writes that are atomic on SQLite and PostgreSQL alike.

SQLite ignores `SELECT … FOR UPDATE` and pysqlite only begins a transaction at the first write,
so a read-then-write guard is a race there. `INSERT … ON CONFLICT DO NOTHING` (both dialects
have it) and a conditional `UPDATE … WHERE` are each atomic on their own.
"""

from __future__ import annotations

from typing import Any, overload

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession


def insert_ignore(
    session: AsyncSession, model: Any, *keys: str
) -> postgresql.Insert | sqlite.Insert:
    """`INSERT … ON CONFLICT (keys) DO NOTHING` into `model`'s table, for the session's
    database; `keys` name a primary key or unique constraint. Add `.values(...)`."""
    table: Table = model.__table__
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    if bind is not None and bind.dialect.name != "sqlite":
        raise NotImplementedError(f"no INSERT … ON CONFLICT for {bind.dialect.name!r}")
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))


@overload
def clip(text: str, length: int) -> str: ...
@overload
def clip(text: str | None, length: int) -> str | None: ...
def clip(text: str | None, length: int) -> str | None:
    """Cut a text to its column: a too-long value would fail the write forever on
    PostgreSQL (SQLite would not notice), and a projection or outbox row must not."""
    return None if text is None else text[:length]
