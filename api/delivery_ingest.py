"""Recording a batch of delivery records: one row per (shipment, attempt), idempotent.

Each record of the batch is, against what is already recorded for its stop:
- **new**: nothing yet; inserted.
- **duplicate**: recorded with the same facts (a re-sent batch); nothing changes. A zone or
  residential flag the record leaves out never erases a recorded one.
- **updated**: recorded, and completed by this record: a zone or residential flag the row
  lacked, or the routing system's confirmation of an attempt that only a failed-delivery case
  had recorded (the routing system's time and facts stand from then on).
- **rejected**: bad (see `api.delivery_batch`), for an unknown client or depot, different
  from an earlier record of the same stop in the batch, or in conflict with what is recorded
  (another client, depot or outcome; another time or zone than the routing system said
  before). A conflict is never overwritten: someone has to look at it.

All or nothing by default: one rejected record and nothing is written (422). With `partial`,
the good records are written and the bad ones reported (200).

The whole batch is read and classified with a few bulk statements, then written with
`INSERT … ON CONFLICT DO NOTHING RETURNING` (chunked multi-row inserts) and conditional
`UPDATE … WHERE <the row is still as read>`. A stop that someone else (another batch, a
failed-delivery case) recorded between the read and the write is caught there, never
overwritten: the transaction is rolled back and the batch classified again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.delivery_batch import ParsedRow
from api.errors import Problem
from core.sql import insert_ignore
from schemas.deliveries import MAX_LISTED_ERRORS, DeliveryBatchResult, DeliveryRecordIn, RowError
from schemas.enums import RecordSource
from schemas.pricing import local_date
from schemas.tables import Client, DeliveryRecord, Depot, Invoice

_CHUNK = 500  # rows per multi-row statement: well inside both databases' parameter limits
_ATTEMPTS = 3
_TABLE: Table = DeliveryRecord.__table__  # type: ignore[attr-defined]  # set by SQLModel
_FACTS = (
    "client_id",
    "depot_id",
    "attempted_at",
    "outcome",
    "zone",
    "residential",
    "promised_on",
)

Key = tuple[str, int]


class _Raced(Exception):
    """A stop changed between the read and the write: classify the batch again."""


@dataclass(frozen=True)
class _Stored:
    id: uuid.UUID
    client_id: str
    depot_id: str
    attempted_at: datetime
    outcome: str
    zone: str | None
    residential: bool | None
    promised_on: date | None
    source: RecordSource
    case_id: str | None


async def _invoiced_periods(
    conn: AsyncConnection, client_ids: set[str]
) -> dict[str, tuple[str, list[tuple[Any, Any, str]]]]:
    """Per client: its time zone and the periods it has invoices for (start, end, number)."""
    found: dict[str, tuple[str, list[tuple[Any, Any, str]]]] = {}
    if not client_ids:
        return found
    zones = await conn.execute(
        select(col(Client.id), col(Client.timezone)).where(col(Client.id).in_(client_ids))
    )
    for client_id, timezone in zones:
        found[client_id] = (timezone, [])
    invoices = await conn.execute(
        select(col(Invoice.client_id), col(Invoice.period_start), col(Invoice.period_end))
        .add_columns(col(Invoice.id))
        .where(col(Invoice.client_id).in_(client_ids))
    )
    for client_id, start, end, number in invoices:
        found[client_id][1].append((start, end, number))
    return found


def _late(record: DeliveryRecordIn, invoiced: dict[str, tuple[str, list[Any]]]) -> str | None:
    """Why a new stop will not be billed: its day is in a period its client was invoiced for."""
    timezone, periods = invoiced.get(record.client_id, ("UTC", []))
    day = local_date(record.attempted_at, timezone)
    for start, end, number in periods:
        if start <= day <= end:
            return (
                f"recorded, but {day.isoformat()} is in {start.isoformat()} to "
                f"{end.isoformat()}, already invoiced as {number}: this stop will not be "
                "billed (casedesk issues no credit notes or adjustments yet)"
            )
    return None


@dataclass
class _Plan:
    new: list[DeliveryRecordIn] = field(default_factory=list)
    updates: list[tuple[_Stored, dict[str, Any]]] = field(default_factory=list)
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    rejected_rows: set[int] = field(default_factory=set)
    not_billed: list[RowError] = field(default_factory=list)

    def reject(self, parsed: ParsedRow, errors: Iterable[RowError]) -> None:
        self.errors.extend(errors)
        self.rejected_rows.add(parsed.row)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _describe(stored: _Stored, name: str) -> str:
    value = getattr(stored, name)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _conflicts(record: DeliveryRecordIn, stored: _Stored) -> list[tuple[str, str]]:
    """The fields in which `record` contradicts the stored row (a field the record or the
    row leaves empty contradicts nothing; the time a case noted yields to the routing
    system's)."""
    found: list[tuple[str, str]] = []
    for name in _FACTS:
        ours, theirs = getattr(record, name), getattr(stored, name)
        if ours is None or theirs is None or ours == theirs:
            continue
        if name == "attempted_at" and stored.source is RecordSource.CASE:
            continue
        who = (
            "the routing system"
            if stored.source is RecordSource.ROUTING
            else f"case {stored.case_id}"
        )
        found.append(
            (
                name,
                f"attempt {record.attempt_number} of shipment {record.shipment_id} is already "
                f"recorded (by {who}) with {name} {_describe(stored, name)}",
            )
        )
    return found


def _completion(record: DeliveryRecordIn, stored: _Stored) -> dict[str, Any]:
    """What `record` adds to the stored row (nothing: a duplicate)."""
    changes: dict[str, Any] = {}
    if stored.zone is None and record.zone is not None:
        changes["zone"] = record.zone
    if stored.residential is None and record.residential is not None:
        changes["residential"] = record.residential
    if stored.promised_on is None and record.promised_on is not None:
        changes["promised_on"] = record.promised_on
    if stored.source is RecordSource.CASE:
        changes["source"] = RecordSource.ROUTING
        if stored.attempted_at != record.attempted_at:
            changes["attempted_at"] = record.attempted_at
    return changes


def _same_facts(a: DeliveryRecordIn, b: DeliveryRecordIn) -> str | None:
    """The first field in which two records of one stop differ; None when they agree."""
    for name in _FACTS:
        if getattr(a, name) != getattr(b, name):
            return name
    return None


async def _existing_ids(conn: AsyncConnection, column: Any, ids: set[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(sorted(ids)):
        result = await conn.execute(select(column).where(column.in_(chunk)))
        found.update(result.scalars())
    return found


async def _stored(conn: AsyncConnection, keys: Sequence[Key]) -> dict[Key, _Stored]:
    """The stored rows of these stops, read by shipment: a plain `IN` on the unique index's
    leading column (a long list of row values is slow to plan on PostgreSQL), its values
    rendered into the statement (validated ids: letters, digits, '.', '_', '-'). Bound values
    would make psycopg prepare the statement after five chunks, and PostgreSQL's generic plan
    for a prepared `IN ($1 … $500)` compares each row with every value in turn: 40 times
    slower than the hashed constant list on a table without statistics yet."""
    t = _TABLE.c
    wanted = set(keys)
    found: dict[Key, _Stored] = {}
    for chunk in _chunks(sorted({shipment for shipment, _ in wanted})):
        result = await conn.execute(
            select(
                t.shipment_id,
                t.attempt_number,
                t.id,
                t.client_id,
                t.depot_id,
                t.attempted_at,
                t.outcome,
                t.zone,
                t.residential,
                t.promised_on,
                t.source,
                t.case_id,
            ).where(t.shipment_id.in_(bindparam("shipments", list(chunk), literal_execute=True)))
        )
        for row in result:
            key = (row.shipment_id, row.attempt_number)
            if key in wanted:
                found[key] = _Stored(
                    id=row.id,
                    client_id=row.client_id,
                    depot_id=row.depot_id,
                    attempted_at=row.attempted_at,
                    outcome=row.outcome,
                    zone=row.zone,
                    residential=row.residential,
                    promised_on=row.promised_on,
                    source=row.source,
                    case_id=row.case_id,
                )
    return found


async def _plan(conn: AsyncConnection, rows: Sequence[ParsedRow]) -> _Plan:
    plan = _Plan()
    first: dict[Key, ParsedRow] = {}
    repeats: list[tuple[ParsedRow, ParsedRow]] = []  # (a later row, the first of its stop)
    for parsed in rows:
        if parsed.record is None:
            plan.reject(parsed, parsed.errors)
            continue
        earlier = first.get(parsed.record.key)
        if earlier is None:
            first[parsed.record.key] = parsed
            continue
        assert earlier.record is not None
        differs = _same_facts(parsed.record, earlier.record)
        if differs is None:
            repeats.append((parsed, earlier))
        else:
            message = f"row {earlier.row} has the same shipment and attempt with another {differs}"
            plan.reject(parsed, [parsed.error(differs, message)])

    candidates = list(first.values())
    records = [p.record for p in candidates if p.record is not None]
    clients = await _existing_ids(conn, col(Client.id), {r.client_id for r in records})
    invoiced = await _invoiced_periods(conn, clients)
    depots = await _existing_ids(conn, col(Depot.id), {r.depot_id for r in records})
    stored = await _stored(conn, [r.key for r in records])

    for parsed in candidates:
        record = parsed.record
        assert record is not None
        errors: list[RowError] = []
        if record.client_id not in clients:
            errors.append(parsed.error("client_id", f"unknown client '{record.client_id}'"))
        if record.depot_id not in depots:
            errors.append(parsed.error("depot_id", f"unknown depot '{record.depot_id}'"))
        existing = stored.get(record.key)
        if existing is not None:
            errors += [parsed.error(n, m) for n, m in _conflicts(record, existing)]
        if errors:
            plan.reject(parsed, errors)
        elif existing is None:
            plan.new.append(record)
            if why := _late(record, invoiced):
                plan.not_billed.append(parsed.error("attempted_at", why))
        elif changes := _completion(record, existing):
            plan.updates.append((existing, changes))
        else:
            plan.duplicates += 1

    for parsed, earlier in repeats:
        if earlier.row in plan.rejected_rows:
            plan.reject(parsed, [parsed.error("row", f"the same record as row {earlier.row}")])
        else:
            plan.duplicates += 1
    plan.errors.sort(key=lambda error: error.row)
    return plan


def _new_row(record: DeliveryRecordIn, now: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "shipment_id": record.shipment_id,
        "attempt_number": record.attempt_number,
        "client_id": record.client_id,
        "depot_id": record.depot_id,
        "attempted_at": record.attempted_at,
        "outcome": record.outcome,
        "zone": record.zone,
        "residential": record.residential,
        "promised_on": record.promised_on,
        "source": RecordSource.ROUTING,
        "created_at": now,
        "updated_at": now,
    }


async def _insert(session: AsyncSession, conn: AsyncConnection, plan: _Plan, now: datetime) -> None:
    """One INSERT … ON CONFLICT DO NOTHING RETURNING, executed for every new row (SQLAlchemy
    sends it as batched multi-row statements, compiled once)."""
    if not plan.new:
        return
    statement = insert_ignore(session, DeliveryRecord, "shipment_id", "attempt_number").returning(
        _TABLE.c.id
    )
    inserted = await conn.execute(statement, [_new_row(record, now) for record in plan.new])
    if len(inserted.all()) != len(plan.new):
        raise _Raced  # someone recorded one of these stops since we looked


async def _update(conn: AsyncConnection, plan: _Plan, now: datetime) -> None:
    """Complete each row only if it is still as read (zone, flag and source unchanged);
    then check that every one was: a row changed meanwhile is a race, not an overwrite."""
    if not plan.updates:
        return
    t = _TABLE.c
    statement = (
        update(_TABLE)
        .where(
            t.id == bindparam("b_id"),
            t.source == bindparam("b_old_source"),
            t.zone.is_not_distinct_from(bindparam("b_old_zone")),
            t.residential.is_not_distinct_from(bindparam("b_old_residential")),
            t.promised_on.is_not_distinct_from(bindparam("b_old_promised_on")),
        )
        .values(
            zone=bindparam("b_zone"),
            residential=bindparam("b_residential"),
            promised_on=bindparam("b_promised_on"),
            source=bindparam("b_source"),
            attempted_at=bindparam("b_attempted_at"),
            updated_at=now,
        )
    )
    expected: dict[uuid.UUID, dict[str, Any]] = {}
    params: list[dict[str, Any]] = []
    for stored, changes in plan.updates:
        after = {
            "zone": changes.get("zone", stored.zone),
            "residential": changes.get("residential", stored.residential),
            "promised_on": changes.get("promised_on", stored.promised_on),
            "source": changes.get("source", stored.source),
            "attempted_at": changes.get("attempted_at", stored.attempted_at),
        }
        expected[stored.id] = after
        params.append(
            {
                "b_id": stored.id,
                "b_old_source": stored.source,
                "b_old_zone": stored.zone,
                "b_old_residential": stored.residential,
                "b_old_promised_on": stored.promised_on,
                **{f"b_{name}": value for name, value in after.items()},
            }
        )
    for chunk in _chunks(params):
        await conn.execute(statement, list(chunk))
    ids = list(expected)
    for chunk in _chunks(ids):
        result = await conn.execute(
            select(t.id, t.zone, t.residential, t.promised_on, t.source, t.attempted_at).where(
                t.id.in_(chunk)
            )
        )
        for row in result:
            now_stored = {
                "zone": row.zone,
                "residential": row.residential,
                "promised_on": row.promised_on,
                "source": row.source,
                "attempted_at": row.attempted_at,
            }
            if now_stored != expected[row.id]:
                raise _Raced


def _listed(errors: list[RowError]) -> list[RowError]:
    return errors[:MAX_LISTED_ERRORS]


def _refused(received: int, plan: _Plan) -> Problem:
    rejected = len(plan.rejected_rows)
    shown = "; ".join(f"row {e.row}, {e.field}: {e.message}" for e in plan.errors[:3])
    more = f"; and {len(plan.errors) - 3} more" if len(plan.errors) > 3 else ""
    return Problem(
        422,
        f"{rejected} of {received} records refused, nothing was recorded (send ?partial=true "
        f"to record the good ones): {shown}{more}",
        errors=[error.model_dump(exclude_none=True) for error in _listed(plan.errors)],
        extra={"received": received, "rejected": rejected, "errors_total": len(plan.errors)},
    )


async def record_deliveries(
    session: AsyncSession, rows: Sequence[ParsedRow], *, partial: bool, now: datetime
) -> DeliveryBatchResult:
    """Record a parsed batch (see the module's docstring); a Problem (422) when a record is
    refused and `partial` is not set, and nothing is written then."""
    for _ in range(_ATTEMPTS):
        conn = await session.connection()
        plan = await _plan(conn, rows)
        if plan.errors and not partial:
            await session.rollback()
            raise _refused(len(rows), plan)
        try:
            await _insert(session, conn, plan, now)
            await _update(conn, plan, now)
        except _Raced:
            await session.rollback()
            continue
        await session.commit()
        return DeliveryBatchResult(
            received=len(rows),
            new=len(plan.new),
            duplicates=plan.duplicates,
            updated=len(plan.updates),
            rejected=len(plan.rejected_rows),
            errors=_listed(plan.errors),
            errors_total=len(plan.errors),
            not_billed=_listed(plan.not_billed),
            not_billed_total=len(plan.not_billed),
        )
    raise Problem(
        409,
        "the stops of this batch kept changing while it was being recorded (another batch "
        "or a case recording them at the same time); nothing was recorded: send it again",
    )
