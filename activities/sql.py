"""SQL helpers of the activities: the atomic writes (`core.sql`, shared with the API) and
`clip`, which fits a text to its column."""

from __future__ import annotations

from typing import overload

from core.sql import insert_ignore, upsert

__all__ = ["clip", "insert_ignore", "upsert"]


@overload
def clip(text: str, length: int) -> str: ...
@overload
def clip(text: str | None, length: int) -> str | None: ...
def clip(text: str | None, length: int) -> str | None:
    """Cut a text to its column: a too-long value would fail the write forever on
    PostgreSQL (SQLite would not notice), and a projection or outbox row must not."""
    return None if text is None else text[:length]
