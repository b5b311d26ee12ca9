"""Single-statement writes that are atomic on SQLite and PostgreSQL alike.

SQLite ignores `SELECT … FOR UPDATE` and pysqlite only begins a transaction at the first write,
so a read-then-write guard is a race there. `INSERT … ON CONFLICT DO NOTHING` and
`INSERT … ON CONFLICT DO UPDATE … WHERE` (both dialects have them) and a conditional
`UPDATE … WHERE` are each atomic on their own. The activities and the API both write with
these, so they live here rather than in either layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

Insert = postgresql.Insert | sqlite.Insert


def _insert(session: AsyncSession, model: Any) -> Insert:
    table: Table = model.__table__
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        return postgresql.insert(table)
    if bind is not None and bind.dialect.name != "sqlite":
        raise NotImplementedError(f"no INSERT … ON CONFLICT for {bind.dialect.name!r}")
    return sqlite.insert(table)


def insert_ignore(session: AsyncSession, model: Any, *keys: str) -> Insert:
    """`INSERT … ON CONFLICT (keys) DO NOTHING` into `model`'s table, for the session's
    database; `keys` name a primary key or unique constraint. Add `.values(...)`."""
    return _insert(session, model).on_conflict_do_nothing(index_elements=list(keys))


def upsert(
    session: AsyncSession,
    model: Any,
    keys: Sequence[str],
    values: Mapping[str, Any],
    *,
    update: Sequence[str],
    where: ColumnElement[bool] | None = None,
) -> Insert:
    """`INSERT values ON CONFLICT (keys) DO UPDATE SET <each of update> = EXCLUDED.<it>
    [WHERE where]`: one atomic statement that inserts the row or, when `where` holds for the
    row already there, overwrites the `update` columns with the values given here."""
    statement = _insert(session, model).values(**values)
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: statement.excluded[name] for name in update},
        where=where,
    )
