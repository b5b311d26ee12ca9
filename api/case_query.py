"""The `GET /cases` query: its filters, its order and its keyset cursor, each written to use
an index of `cases` (schemas/tables.py; `bench.listing` checks the plans at 100,000 rows)."""

from __future__ import annotations

import base64
import binascii
import json
import operator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, column, false, literal, literal_column, not_, or_, table, text, tuple_
from sqlmodel import col, select

from api.case_models import CaseSort
from schemas.enums import CaseStatus, CaseType
from schemas.tables import (
    CASE_SEARCH_TABLE,
    CASES,
    ESCALATED_SQL,
    OPEN_CASE_SQL,
    Case,
    case_words_sql,
)


@dataclass(frozen=True)
class CaseFilters:
    type: CaseType | None = None
    status: CaseStatus | None = None
    client_id: str | None = None
    depot_id: str | None = None
    escalated: bool | None = None
    overdue: bool | None = None
    assignee: str | None = None
    deadline_before: datetime | None = None
    deadline_after: datetime | None = None
    q: str | None = None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _keys(sort: CaseSort) -> list[Any]:
    """The ORDER BY terms of `sort`, matching one of the `cases` indexes term for term: the
    column, then the case id; a nullable column gets a flag in front that puts the cases
    without a value last in either direction."""
    column = col(getattr(Case, sort.column))
    case_id = col(Case.id)
    if not CASES.c[sort.column].nullable:
        return [column, case_id]
    return [column.is_not(None) if sort.descending else column.is_(None), column, case_id]


def _ordered(statement: Any, sort: CaseSort) -> Any:
    return statement.order_by(*(k.desc() if sort.descending else k.asc() for k in _keys(sort)))


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last case's sort value and id (the keyset cursor)."""

    sort: CaseSort
    value: datetime | None
    case_id: str

    @classmethod
    def of(cls, row: Case, sort: CaseSort) -> Position:
        return cls(sort, getattr(row, sort.column), row.id)

    def encode(self) -> str:
        value = self.value.isoformat() if self.value else None
        raw = json.dumps([self.sort.value, value, self.case_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str, sort: CaseSort) -> Position:
        """The position `cursor` names; ValueError (with words for the caller) otherwise."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            sort_value, value, case_id = json.loads(raw)
            position = cls(
                CaseSort(sort_value),
                None if value is None else datetime.fromisoformat(value),
                case_id,
            )
        except (ValueError, TypeError, binascii.Error):
            raise ValueError(
                "not a cursor this list gave out: start again without it and follow `next_cursor`"
            ) from None
        if not isinstance(case_id, str) or (position.value and not position.value.tzinfo):
            raise ValueError("not a cursor this list gave out: start again without it")
        if position.sort is not sort:
            raise ValueError(
                f"this cursor continues the list sorted by `{position.sort.value}`: ask with "
                f"sort={position.sort.value}, or start again without the cursor"
            )
        return position


def after(statement: Any, position: Position) -> Any:
    """`statement` (ordered by `position.sort`) from the case after `position` on: a range on
    the sort's index, so a deep page costs what the first one does."""
    sort = position.sort
    column = col(getattr(Case, sort.column))
    beyond = operator.lt if sort.descending else operator.gt
    if position.value is None:  # in the tail of cases without the value
        return statement.where(column.is_(None), beyond(col(Case.id), position.case_id))
    keys = _keys(sort)
    values = [
        literal(position.value, CASES.c[sort.column].type),
        literal(position.case_id, CASES.c.id.type),
    ]
    if len(keys) == 3:
        values.insert(0, literal(bool(sort.descending)))
    return statement.where(beyond(tuple_(*keys), tuple_(*values)))


def _matching(words: str, dialect: str) -> Any:
    """Cases with `words` anywhere in their id, business key or subject, any case, through
    the trigram index of each database (see `schemas.tables.case_words_sql`)."""
    pattern = f"%{_escape_like(words)}%"
    if dialect == "postgresql":  # backslash is PostgreSQL's own LIKE escape
        return literal_column(case_words_sql()).ilike(pattern)
    if dialect == "sqlite" and not any(c in words for c in "%_\\"):
        search = table(CASE_SEARCH_TABLE, column("case_id"), column("words"))
        found = select(search.c.case_id).where(search.c.words.like(f"%{words}%"))
        return col(Case.id).in_(found)
    # FTS5 cannot use its index for LIKE with an ESCAPE: text with wildcards reads the table.
    return or_(
        false(),
        *(
            field.ilike(pattern, escape="\\")
            for field in (col(Case.id), col(Case.business_key), col(Case.subject))
        ),
    )


def case_list_statement(filters: CaseFilters, sort: CaseSort, now: datetime, dialect: str) -> Any:
    """The filtered, ordered select of `GET /cases`; `dialect` picks the text index."""
    f = filters
    statement = _ordered(select(Case), sort)
    if f.type:
        statement = statement.where(Case.type == f.type)
    if f.status:
        statement = statement.where(Case.status == f.status)
    if f.client_id:
        statement = statement.where(Case.client_id == f.client_id)
    if f.escalated is not None:  # in the partial index's words when true
        statement = statement.where(
            text(ESCALATED_SQL) if f.escalated else not_(col(Case.escalated))
        )
    if f.depot_id:
        statement = statement.where(Case.depot_id == f.depot_id)
    if f.assignee:
        statement = statement.where(Case.assignee == f.assignee)
    if f.deadline_before:
        statement = statement.where(col(Case.deadline_at) < f.deadline_before)
    if f.deadline_after:
        statement = statement.where(col(Case.deadline_at) >= f.deadline_after)
    if f.overdue is not None:
        is_overdue = and_(
            col(Case.deadline_at).is_not(None), col(Case.deadline_at) < now, text(OPEN_CASE_SQL)
        )
        statement = statement.where(is_overdue if f.overdue else not_(is_overdue))
    if f.q and f.q.strip():
        statement = statement.where(_matching(f.q.strip(), dialect))
    return statement
