"""Activities of the unpaid-invoice case that touch records: the client's dispatch hold, and
the depots whose dispatchers hear of it.

The hold is set by the case at the end of its dunning ladder and lifted when the invoice is
paid (or by an admin). Lifting only clears a hold this case set, so a hold another invoice
set stays; setting it again is a no-op."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlmodel import col, select
from temporalio import activity

from activities.records import unknown_reference
from activities.sql import clip
from core.db import SessionFactory
from schemas.invoices import ClientDepots, ClientDepotsRequest, DispatchHoldChange
from schemas.tables import Case, Client, DeliveryRecord, Shipment


class InvoiceActivities:
    """Built once in worker.py with the session factory."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn
    async def set_dispatch_hold(self, change: DispatchHoldChange) -> None:
        async with self._sessions() as session:
            if await session.get(Client, change.client_id) is None:
                raise unknown_reference(f"client {change.client_id!r} not found")
            statement = update(Client).where(col(Client.id) == change.client_id)
            if change.hold:
                statement = statement.where(col(Client.dispatch_hold).is_(False)).values(
                    dispatch_hold=True,
                    dispatch_hold_reason=clip(change.reason, 500),
                    dispatch_hold_case_id=change.case_id,
                    dispatch_hold_since=datetime.now(UTC),
                )
            else:
                statement = statement.where(
                    col(Client.dispatch_hold_case_id) == change.case_id
                ).values(
                    dispatch_hold=False,
                    dispatch_hold_reason=None,
                    dispatch_hold_case_id=None,
                    dispatch_hold_since=None,
                )
            await session.exec(statement)
            await session.commit()
        activity.logger.info(
            "dispatch hold for %s %s by %s",
            change.client_id,
            "set" if change.hold else "lifted",
            change.case_id,
        )

    @activity.defn
    async def client_depots(self, request: ClientDepotsRequest) -> ClientDepots:
        """The depots that have handled the client's stops, shipments or cases, in id order."""
        stops = select(DeliveryRecord.depot_id).where(
            col(DeliveryRecord.client_id) == request.client_id
        )
        shipments = select(Shipment.depot_id).where(col(Shipment.client_id) == request.client_id)
        cases = select(Case.depot_id).where(
            col(Case.client_id) == request.client_id, col(Case.depot_id).is_not(None)
        )
        async with self._sessions() as session:
            found = {str(d) for d in (await session.exec(stops.distinct())).all()}
            found |= {str(d) for d in (await session.exec(shipments.distinct())).all()}
            found |= {str(d) for d in (await session.exec(cases.distinct())).all() if d}
        return ClientDepots(depot_ids=sorted(found))
