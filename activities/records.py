"""Activities that write records: the case projection and timeline, shipments, and the failed
attempts' delivery records.

Every write is idempotent, so Temporal may retry any of them: the projection only moves
forward (by version), timeline entries and attempts are keyed, shipment updates set values.
The projection and the timeline are written with single conditional statements (INSERT … ON
CONFLICT, UPDATE … WHERE version <), never read-compare-write: SQLite ignores FOR UPDATE, so two
concurrent writes of the same case could otherwise store the older snapshot.
Database errors are not caught: a refused connection or a lock timeout is retried by Temporal.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import UNKNOWN_REFERENCE
from activities.redelivery import plan_redelivery
from activities.sql import clip, insert_ignore, upsert
from core.db import SessionFactory
from schemas.activities import AttemptRecord, RedeliveryBooking, ShipmentStatusUpdate
from schemas.cases import CaseRecord, CaseSnapshot, RedeliveryBooked
from schemas.enums import RecordSource, RedeliveryOption, ShipmentStatus, StopOutcome
from schemas.tables import (
    Case,
    Client,
    DeliveryRecord,
    Depot,
    PickupPoint,
    Shipment,
    TimelineEntry,
)


def unknown_reference(message: str) -> ApplicationError:
    return ApplicationError(message, type=UNKNOWN_REFERENCE, non_retryable=True)


@overload
def _utc(value: datetime) -> datetime: ...
@overload
def _utc(value: None) -> None: ...
def _utc(value: datetime | None) -> datetime | None:
    """Aware UTC for the database (a naive value from a caller is taken as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _case_columns(snapshot: CaseSnapshot) -> dict[str, Any]:
    return {
        "type": snapshot.case_type,
        "status": snapshot.status,
        "resolution": snapshot.resolution,
        "business_key": snapshot.business_key,
        "client_id": snapshot.client_id,
        "depot_id": snapshot.depot_id,
        "subject": clip(snapshot.subject, 300),
        "opened_at": _utc(snapshot.opened_at),
        "closed_at": _utc(snapshot.closed_at),
        "deadline_at": _utc(snapshot.deadline_at),
        "escalated": snapshot.escalated,
        "escalation_reason": clip(snapshot.escalation_reason, 1000),
        "assignee": clip(snapshot.assignee, 200),
        "next_step": clip(snapshot.next_step, 300),
        "next_step_at": _utc(snapshot.next_step_at),
        "details": snapshot.model_dump(mode="json")["details"],
        "version": snapshot.version,
        "updated_at": datetime.now(UTC),
    }


async def _shipment(session: AsyncSession, shipment_id: str) -> Shipment:
    shipment = await session.get(Shipment, shipment_id, with_for_update=True)
    if shipment is None:
        raise unknown_reference(f"shipment {shipment_id!r} not found")
    return shipment


class RecordActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn
    async def record_case(self, record: CaseRecord) -> None:
        snapshot = record.snapshot
        columns = _case_columns(snapshot)
        async with self._sessions() as session:
            # Insert the row, or move an existing one forward: each statement is atomic, so a
            # concurrent write of an older version can never overwrite a newer one.
            inserted = await session.exec(
                insert_ignore(session, Case, "id")
                .values(id=snapshot.case_id, **columns)
                .execution_options(preserve_rowcount=True)  # else -1 with psycopg
            )
            if not inserted.rowcount:
                await session.exec(
                    update(Case)
                    .where(
                        col(Case.id) == snapshot.case_id,
                        col(Case.version) < snapshot.version,
                    )
                    .values(**columns)
                )

            events = {event.seq: event for event in record.events}  # one row per seq
            if events:
                await session.exec(
                    insert_ignore(session, TimelineEntry, "case_id", "seq").values(
                        [
                            {
                                "id": uuid.uuid4(),
                                "case_id": snapshot.case_id,
                                "seq": event.seq,
                                "at": _utc(event.at),
                                "kind": clip(event.kind, 64),
                                "summary": clip(event.summary, 1000),
                                "actor": clip(event.actor, 200),
                                "data": event.model_dump(mode="json")["data"],
                            }
                            for event in events.values()
                        ]
                    )
                )
            await session.commit()

    @activity.defn
    async def record_failed_attempt(self, record: AttemptRecord) -> None:
        attempt = record.attempt
        async with self._sessions() as session:
            if await session.get(Client, record.client_id) is None:
                raise unknown_reference(f"client {record.client_id!r} not found")
            if await session.get(Depot, record.depot_id) is None:
                raise unknown_reference(f"depot {record.depot_id!r} not found")

            shipment = await session.get(Shipment, record.shipment_id, with_for_update=True)
            if shipment is None:
                shipment = Shipment(
                    id=record.shipment_id,
                    client_id=record.client_id,
                    depot_id=record.depot_id,
                    customer_name=record.customer.name,
                    customer_email=record.customer.email,
                )
            # A retried or late record of an older attempt must not undo a newer one.
            if attempt.attempt_number >= shipment.failed_attempts:
                shipment.status = ShipmentStatus.ATTEMPT_FAILED
                shipment.failed_attempts = attempt.attempt_number
                shipment.customer_name = record.customer.name
                shipment.customer_email = record.customer.email
                shipment.customer_phone = record.customer.phone
                shipment.address = record.address.model_dump(mode="json")
                shipment.updated_at = datetime.now(UTC)
            session.add(shipment)

            await session.flush()
            await self._record_case_attempt(session, record)
            await session.commit()

    @staticmethod
    async def _record_case_attempt(session: AsyncSession, record: AttemptRecord) -> None:
        """The attempt as a failed delivery record, in one atomic statement: inserted when
        nobody has reported it yet; when the routing system already has, the routing row
        stays (its facts stand) and only the case's own columns are added to it, once."""
        attempt = record.attempt
        now = datetime.now(UTC)
        case_columns = ("case_id", "reason", "driver_id", "case_fee_cents", "case_fee_currency")
        await session.exec(
            upsert(
                session,
                DeliveryRecord,
                ("shipment_id", "attempt_number"),
                {
                    "id": uuid.uuid4(),
                    "shipment_id": record.shipment_id,
                    "attempt_number": attempt.attempt_number,
                    "client_id": record.client_id,
                    "depot_id": record.depot_id,
                    "attempted_at": _utc(attempt.attempted_at),
                    "outcome": StopOutcome.FAILED,
                    "source": RecordSource.CASE,
                    "case_id": record.case_id,
                    "reason": attempt.reason.value,
                    "driver_id": attempt.driver_id,
                    "case_fee_cents": record.fee_cents,
                    "case_fee_currency": record.currency.upper(),
                    "created_at": now,
                    "updated_at": now,
                },
                update=(*case_columns, "updated_at"),
                where=col(DeliveryRecord.case_id).is_(None)
                & (col(DeliveryRecord.outcome) == StopOutcome.FAILED)
                & (col(DeliveryRecord.client_id) == record.client_id),
            )
        )
        stored = (
            await session.exec(
                select(DeliveryRecord).where(
                    DeliveryRecord.shipment_id == record.shipment_id,
                    DeliveryRecord.attempt_number == attempt.attempt_number,
                )
            )
        ).one()
        if stored.outcome is not StopOutcome.FAILED or stored.client_id != record.client_id:
            # The routing system's record stands (it is what billing prices); someone must
            # look at why the case sees the attempt otherwise.
            activity.logger.warning(
                "the routing system recorded attempt %d of shipment %s as %s for client %s; "
                "case %s recorded it as failed for client %s: the delivery record is left "
                "as it is",
                attempt.attempt_number,
                record.shipment_id,
                stored.outcome.value,
                stored.client_id,
                record.case_id,
                record.client_id,
            )
        elif stored.case_id != record.case_id:
            activity.logger.warning(
                "attempt %d of shipment %s is already recorded by case %s; case %s left it",
                attempt.attempt_number,
                record.shipment_id,
                stored.case_id,
                record.case_id,
            )

    @activity.defn
    async def schedule_redelivery(self, booking: RedeliveryBooking) -> RedeliveryBooked:
        choice = booking.choice
        async with self._sessions() as session:
            shipment = await _shipment(session, booking.shipment_id)
            depot = await session.get(Depot, booking.depot_id)
            if depot is None:
                raise unknown_reference(f"depot {booking.depot_id!r} not found")
            pickup_point = None
            if choice.option is RedeliveryOption.PICKUP_POINT:
                pickup_point = await session.get(PickupPoint, choice.pickup_point_id)
                if pickup_point is None or pickup_point.depot_id != depot.id:
                    raise unknown_reference(
                        f"pickup point {choice.pickup_point_id!r} not found at depot {depot.id!r}"
                    )

            plan = plan_redelivery(
                choice,
                decided_at=booking.decided_at,
                timezone=depot.timezone,
                pickup_point=pickup_point,
            )
            shipment.status = ShipmentStatus.REDELIVERY_SCHEDULED
            shipment.redelivery_date = plan.booked.delivery_date
            shipment.redelivery_plan = plan.as_json()
            if choice.option is RedeliveryOption.ADDRESS_CORRECTION and choice.address:
                shipment.address = choice.address.model_dump(mode="json")
            shipment.updated_at = datetime.now(UTC)
            session.add(shipment)
            await session.commit()
            return plan.booked

    @activity.defn
    async def update_shipment_status(self, update: ShipmentStatusUpdate) -> None:
        async with self._sessions() as session:
            shipment = await _shipment(session, update.shipment_id)
            shipment.status = update.status
            shipment.updated_at = _utc(update.at) or datetime.now(UTC)
            session.add(shipment)
            await session.commit()
