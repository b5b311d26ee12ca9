"""Activities that write records: the case projection and timeline, shipments, attempts."""

from __future__ import annotations

from temporalio import activity

from core.db import SessionFactory
from schemas.activities import AttemptRecord, RedeliveryBooking, ShipmentStatusUpdate
from schemas.cases import CaseRecord, RedeliveryBooked


class RecordActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn
    async def record_case(self, record: CaseRecord) -> None:
        raise NotImplementedError

    @activity.defn
    async def record_failed_attempt(self, record: AttemptRecord) -> None:
        raise NotImplementedError

    @activity.defn
    async def schedule_redelivery(self, booking: RedeliveryBooking) -> RedeliveryBooked:
        raise NotImplementedError

    @activity.defn
    async def update_shipment_status(self, update: ShipmentStatusUpdate) -> None:
        raise NotImplementedError
