"""What a client's report is computed from, read from the database into the plain inputs of
`schemas.report_figures` (the report run's activity and `GET /reports/...` both read them
here, and both compute with `build_report`).

For the local days a report needs (`span_needed`: its 12 chart weeks, or its four-week trend):
the client's delivery records attempted in them; its failed-delivery, claim and unpaid-invoice
cases open at some point in them; and those cases' escalations and turns to returning to
sender (the timeline) up to their end. Three statements, on the indexes
`(client_id, attempted_at)`, `cases.client_id` and `timeline.case_id`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select as sql_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schemas.enums import CaseStatus
from schemas.pricing import period_bounds
from schemas.report_figures import (
    ESCALATED,
    RESOLVED_TYPES,
    RETURNED,
    CaseEvent,
    CaseRow,
    ReportInputs,
    StopRow,
)
from schemas.tables import Case, Client, DeliveryRecord, TimelineEntry


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _day(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def case_row(case: Case) -> CaseRow:
    """A case index row with what its details say that the figures need (a claim's delivery
    event and filing, an invoice's amount, due date and payments)."""
    details = case.details or {}
    payments = tuple(
        (day, amount)
        for payment in details.get("payments") or []
        if isinstance(payment, dict)
        and (day := _day(payment.get("paid_on"))) is not None
        and (amount := _money(payment.get("amount"))) is not None
    )
    return CaseRow(
        case_id=case.id,
        case_type=case.type,
        status=case.status,
        opened_at=case.opened_at,
        closed_at=case.closed_at,
        resolution=case.resolution,
        business_key=case.business_key,
        deadline_at=case.deadline_at,
        delivery_event_at=_instant(details.get("delivery_event_at")),
        filed_at=_instant(details.get("filed_at")),
        currency=details.get("currency") if isinstance(details.get("currency"), str) else None,
        amount=_money(details.get("amount")),
        due_on=_day(details.get("due_on")),
        payments=payments,
    )


async def load_report_inputs(
    session: AsyncSession, client: Client, first_day: dt.date, last_day: dt.date
) -> ReportInputs:
    """The client's stops, cases and counted timeline events for these local days."""
    lo, hi = period_bounds(first_day, last_day, client.timezone)
    conn = await session.connection()  # plain rows: a quarter of stops, no ORM objects
    records = await conn.execute(
        sql_select(
            col(DeliveryRecord.shipment_id),
            col(DeliveryRecord.attempt_number),
            col(DeliveryRecord.attempted_at),
            col(DeliveryRecord.outcome),
            col(DeliveryRecord.reason),
            col(DeliveryRecord.promised_on),
            col(DeliveryRecord.depot_id),
        ).where(
            col(DeliveryRecord.client_id) == client.id,
            col(DeliveryRecord.attempted_at) >= lo,
            col(DeliveryRecord.attempted_at) < hi,
        )
    )
    stops = [
        StopRow(
            shipment_id=shipment_id,
            attempt_number=attempt_number,
            attempted_at=attempted_at,
            outcome=outcome,
            reason=reason,
            promised_on=promised_on,
            depot_id=depot_id,
        )
        for shipment_id, attempt_number, attempted_at, outcome, reason, promised_on, depot_id in (
            records.all()
        )
    ]
    in_span = (
        col(Case.client_id) == client.id,
        col(Case.type).in_(RESOLVED_TYPES),
        col(Case.opened_at) < hi,
        or_(col(Case.closed_at).is_(None), col(Case.closed_at) >= lo),
    )
    cases = [case_row(row) for row in (await session.exec(select(Case).where(*in_span))).all()]
    timeline = await session.exec(
        select(TimelineEntry.case_id, TimelineEntry.at, TimelineEntry.kind, TimelineEntry.data)
        .join(Case, col(Case.id) == col(TimelineEntry.case_id))
        .where(
            *in_span,
            col(TimelineEntry.kind).in_([ESCALATED, "status"]),
            col(TimelineEntry.at) < hi,
        )
    )
    events = [
        CaseEvent(case_id, at, ESCALATED if kind == ESCALATED else RETURNED)
        for case_id, at, kind, data in timeline.all()
        if kind == ESCALATED or (data or {}).get("status") == CaseStatus.RETURNING_TO_SENDER.value
    ]
    return ReportInputs(
        client_id=client.id, timezone=client.timezone, stops=stops, cases=cases, events=events
    )
