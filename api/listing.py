"""Pagination over a SQL select: one page of rows and the total count."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import Pagination


async def paginate(
    session: AsyncSession, statement: Any, page: Pagination
) -> tuple[list[Any], int]:
    """`statement` is a filtered, ordered `select(Model)`."""
    total = await count_of(session, statement)
    rows = await session.exec(statement.limit(page.limit).offset(page.offset))
    return list(rows.all()), total


async def count_of(session: AsyncSession, statement: Any) -> int:
    """How many rows `statement` selects, in all pages."""
    count = select(func.count()).select_from(statement.order_by(None).subquery())
    return int((await session.exec(count)).one())
