"""Driver activities: the driver record's status, its documents' projection, and the route
briefing pack a new driver receives.

The onboarding case and the compliance watch own the checklist; what they write here is what
`GET /drivers` reads. Every write is idempotent and atomic on SQLite and PostgreSQL alike
(single conditional statements, as in `activities.records`): a document's row only moves
forward in time, so a retried or late record never undoes a newer one.
The briefing pack's PDFs are built from the depot's row only (no clock, no driver's personal
data), so the same depot and start date give the same bytes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import update
from sqlmodel import col
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.briefing import DEFAULT_OPENING_HOURS, what_to_bring
from activities.errors import DOCUMENT_REJECTED
from activities.heartbeat import heartbeating
from activities.pdf import render_pdf
from activities.records import unknown_reference
from activities.rendering import human_date, vehicle_label
from activities.sql import clip, insert_ignore
from core.db import SessionFactory
from core.documents import DocumentStore
from core.uploads import UploadRejected
from schemas.documents import DocumentKind, DocumentRef
from schemas.onboarding import (
    BriefingPack,
    BriefingPackRequest,
    DriverDocumentRecord,
    DriverStatusChange,
)
from schemas.tables import Depot, Driver, DriverDocument


def _depot_lines(depot: Depot) -> list[str]:
    dispatcher = depot.dispatcher_name
    if depot.dispatcher_phone:
        dispatcher += f", {depot.dispatcher_phone}"
    return [
        f"Depot: {depot.name}",
        f"Address: {depot.address}",
        f"Opening hours: {depot.opening_hours or DEFAULT_OPENING_HOURS}",
        f"Times are local to the depot ({depot.timezone}).",
        f"Dispatcher: {dispatcher}",
    ]


def route_briefing_pdf(depot: Depot, request: BriefingPackRequest) -> bytes:
    """Where the depot is, when it is open, who dispatches, and how a route day goes."""
    lines = [
        *_depot_lines(depot),
        "",
        f"Your first day: {human_date(request.planned_start_date)}",
        f"Your vehicle: {vehicle_label(request.vehicle_type)}",
        "",
        "How a route day goes",
        "1. Report to the dispatcher at the depot at the time you were given.",
        "2. Load your parcels in the order of your route; check each one is scanned.",
        "3. Deliver in route order. Scan every parcel at the door: delivered, or why not.",
        "4. If nobody can take a parcel, record the reason; never leave it unsafely.",
        "5. Bring back every parcel you could not deliver and check it in at the depot.",
        "",
        "If anything goes wrong on the road (an accident, a damaged parcel, a customer "
        "problem), call the dispatcher first.",
    ]
    return render_pdf(lines, title=f"Route briefing: {depot.name}")


def first_day_pdf(depot: Depot, request: BriefingPackRequest) -> bytes:
    """What the driver needs on the planned start date: when, where, and what to bring."""
    bring = what_to_bring(request.vehicle_type)
    lines = [
        f"Start date: {human_date(request.planned_start_date)}",
        f"Vehicle: {vehicle_label(request.vehicle_type)}",
        f"Report to: {depot.name}, {depot.address}",
        f"Opening hours: {depot.opening_hours or DEFAULT_OPENING_HOURS}",
        "",
        "What to bring",
        *[f"- {item}" for item in bring],
        "",
        "On arrival",
        "- Ask for the dispatcher at the depot office: they introduce you to the team, "
        "give you your route and show you the scanner app.",
        "- Your first route is shorter than usual, so you can learn the area.",
        "",
        f"Questions before your first day: call the dispatcher, {depot.dispatcher_name}"
        + (f", on {depot.dispatcher_phone}." if depot.dispatcher_phone else "."),
        "You can only be routed once every onboarding document has been approved.",
    ]
    return render_pdf(lines, title=f"First-day instructions: {depot.name}")


class DriverActivities:
    """Built once in worker.py with the database sessions and the document store."""

    def __init__(self, sessions: SessionFactory, documents: DocumentStore) -> None:
        self._sessions = sessions
        self._documents = documents

    @activity.defn
    async def set_driver_status(self, change: DriverStatusChange) -> None:
        """The driver record's status as the case decided it (setting it again is a no-op)."""
        async with self._sessions() as session:
            result = await session.exec(
                update(Driver)
                .where(col(Driver.id) == change.driver_id)
                .values(status=change.status, updated_at=datetime.now(UTC))
            )
            await session.commit()
        if not result.rowcount:
            raise unknown_reference(f"driver {change.driver_id!r} not found")
        activity.logger.info(
            "driver %s is %s (%s)", change.driver_id, change.status.value, change.case_id
        )

    @activity.defn
    async def record_driver_document(self, record: DriverDocumentRecord) -> None:
        """Insert the document's row, or move an existing one forward: applied only when
        `record.at` is newer than what the row holds."""
        at = record.at.astimezone(UTC)
        columns = {
            "case_id": clip(record.case_id, 128),
            "kind": record.kind,
            "status": record.status,
            "expires_on": record.expires_on,
            "updated_at": at,
        }
        async with self._sessions() as session:
            if await session.get(Driver, record.driver_id) is None:
                raise unknown_reference(f"driver {record.driver_id!r} not found")
            inserted = await session.exec(
                insert_ignore(session, DriverDocument, "driver_id", "document_id")
                .values(driver_id=record.driver_id, document_id=record.document_id, **columns)
                .execution_options(preserve_rowcount=True)  # else -1 with psycopg
            )
            if not inserted.rowcount:
                await session.exec(
                    update(DriverDocument)
                    .where(
                        col(DriverDocument.driver_id) == record.driver_id,
                        col(DriverDocument.document_id) == record.document_id,
                        col(DriverDocument.updated_at) < at,
                    )
                    .values(**columns)
                )
            await session.commit()

    @activity.defn
    async def build_briefing_pack(self, request: BriefingPackRequest) -> BriefingPack:
        """The depot's route briefing and first-day instructions as PDFs, stored (kind
        BRIEFING_PACK) to be attached to the welcome email."""
        async with heartbeating():
            return await self._build_briefing_pack(request)

    async def _build_briefing_pack(self, request: BriefingPackRequest) -> BriefingPack:
        async with self._sessions() as session:
            depot = await session.get(Depot, request.depot_id)
            if depot is None:
                raise unknown_reference(f"depot {request.depot_id!r} not found")
        pdfs = [
            (f"route-briefing-{request.depot_id}.pdf", route_briefing_pdf(depot, request)),
            (f"first-day-{request.depot_id}.pdf", first_day_pdf(depot, request)),
        ]
        documents: list[DocumentRef] = []
        for name, data in pdfs:
            try:
                ref = await asyncio.to_thread(
                    self._documents.put, data, kind=DocumentKind.BRIEFING_PACK, declared_name=name
                )
            except UploadRejected as err:
                # The store refuses the same bytes every time: do not retry.
                raise ApplicationError(
                    f"briefing pack for {request.case_id}: {err.reason}",
                    type=DOCUMENT_REJECTED,
                    non_retryable=True,
                ) from None
            documents.append(ref)
        activity.logger.info("briefing pack built for %s", request.case_id)
        return BriefingPack(documents=documents)
