"""In-memory stand-ins for the activities, registered under the real activity names, so a
workflow test sees exactly what the workflow asked the world to do."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from schemas.activities import (
    AttemptRecord,
    MessageRequest,
    MessageResult,
    RedeliveryBooking,
    ShipmentStatusUpdate,
)
from schemas.cases import CaseRecord, CaseSnapshot, CaseState, RedeliveryBooked, TimelineEvent
from schemas.enums import MessageStatus, ShipmentStatus


@dataclass
class FakeWorld:
    projections: list[CaseSnapshot] = field(default_factory=list)
    timeline: dict[int, TimelineEvent] = field(default_factory=dict)
    # Per case: the timeline as the projection holds it (a workflow keeps only the events
    # not yet written, so the whole timeline is read from here, as the API reads SQL).
    case_timelines: dict[str, dict[int, TimelineEvent]] = field(default_factory=dict)
    attempts: list[AttemptRecord] = field(default_factory=list)
    bookings: list[RedeliveryBooking] = field(default_factory=list)
    shipment_status: list[ShipmentStatus] = field(default_factory=list)
    sent: dict[str, MessageRequest] = field(default_factory=dict)
    send_log: list[str] = field(default_factory=list)  # every send_message call's key
    # Decides per request whether sending fails permanently: return an error type or None.
    message_failure: Callable[[MessageRequest], str | None] = lambda _request: None
    booking_failure: str | None = None
    # Set one to an unset Event to hold that activity until the test sets it.
    hold_attempt_records: asyncio.Event | None = None
    hold_bookings: asyncio.Event | None = None
    hold_shipment_updates: asyncio.Event | None = None

    @property
    def templates(self) -> list[str]:
        return [m.template for m in self.sent.values()]

    def events(self, state: CaseState) -> list[TimelineEvent]:
        """A case's whole timeline: what the projection holds plus the live events of
        `state` not yet written (what the API shows)."""
        merged = dict(self.case_timelines.get(state.case_id, {}))
        merged.update({event.seq: event for event in state.timeline})
        return [merged[seq] for seq in sorted(merged)]

    def sent_to(self, role: str) -> list[str]:
        return [m.template for m in self.sent.values() if m.to.role == role]

    @activity.defn(name="record_case")
    async def record_case(self, record: CaseRecord) -> None:
        self.projections.append(record.snapshot)
        written = self.case_timelines.setdefault(record.snapshot.case_id, {})
        for event in record.events:
            self.timeline.setdefault(event.seq, event)
            written.setdefault(event.seq, event)

    @activity.defn(name="record_failed_attempt")
    async def record_failed_attempt(self, record: AttemptRecord) -> None:
        if self.hold_attempt_records:
            await self.hold_attempt_records.wait()
        self.attempts.append(record)

    @activity.defn(name="schedule_redelivery")
    async def schedule_redelivery(self, booking: RedeliveryBooking) -> RedeliveryBooked:
        if self.hold_bookings:
            await self.hold_bookings.wait()
        if self.booking_failure:
            raise ApplicationError(
                self.booking_failure, type="UnknownReference", non_retryable=True
            )
        self.bookings.append(booking)
        day = booking.choice.date or (booking.decided_at + timedelta(days=1)).date()
        return RedeliveryBooked(
            summary=f"{booking.choice.option.value} on {day.isoformat()}",
            delivery_date=day,
            expected_by=datetime.combine(day, time(21), tzinfo=UTC),
            route_day_starts_at=datetime.combine(day, time(0), tzinfo=UTC),
        )

    @activity.defn(name="update_shipment_status")
    async def update_shipment_status(self, update: ShipmentStatusUpdate) -> None:
        if self.hold_shipment_updates:
            await self.hold_shipment_updates.wait()
        self.shipment_status.append(update.status)

    @activity.defn(name="send_message")
    async def send_message(self, request: MessageRequest) -> MessageResult:
        failure = self.message_failure(request)
        if failure:
            raise ApplicationError(
                f"{failure} for {request.to.role}", type=failure, non_retryable=True
            )
        self.send_log.append(request.key)
        duplicate = request.key in self.sent
        self.sent.setdefault(request.key, request)
        return MessageResult(
            message_id=str(uuid.uuid4()),
            key=request.key,
            status=MessageStatus.SENT,
            recipient_email=request.to.email or f"{request.to.role}@example.com",
            duplicate=duplicate,
        )

    def activities(self) -> list[Callable[..., object]]:
        return [
            self.record_case,
            self.record_failed_attempt,
            self.schedule_redelivery,
            self.update_shipment_status,
            self.send_message,
        ]
