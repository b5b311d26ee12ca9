"""A client's week of stops and cases, written to the database as the routing system and the
cases would (rows, not API calls), with the figures they make, for the report tests of the
activities, the workflow and the API."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

from core.db import SessionFactory
from schemas.enums import CaseStatus, CaseType, ContactKind, RecordSource, Resolution, StopOutcome
from schemas.tables import Case, Client, ClientContact, DeliveryRecord, Depot, TimelineEntry

CLIENT = "acme"
DEPOT = "ldn-1"
LONDON = ZoneInfo("Europe/London")
WEEK = "2026-W48"  # Monday 23 to Sunday 29 November 2026 (GMT: London is UTC+0 then)
DAY = "2026-11-25"


def at(day: int, hour: int = 10, minute: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=LONDON)


async def seed_client(
    sessions: SessionFactory,
    *,
    reporting: dict[str, object] | None = None,
    reporting_contacts: int = 2,
    account_manager: bool = True,
) -> list[uuid.UUID]:
    """The client (London time), its depot and contacts; returns the reporting contacts' ids
    (by name: Rita, then Rob)."""
    ids = [uuid.uuid4() for _ in range(reporting_contacts)]
    async with sessions() as session:
        session.add(
            Client(
                id=CLIENT,
                name="Acme Retail",
                timezone="Europe/London",
                reporting=reporting or {"daily": True, "weekly": True, "hour": 7},
            )
        )
        session.add(
            Depot(
                id=DEPOT,
                name="London East",
                address="1 Depot Way",
                timezone="Europe/London",
                dispatcher_name="Dana Dispatch",
                dispatcher_email="dispatch@example.com",
            )
        )
        await session.flush()
        names = ["Rita Reports", "Rob Reports", "Ruth Reports"]
        for contact_id, name in zip(ids, names, strict=False):
            session.add(
                ClientContact(
                    id=contact_id,
                    client_id=CLIENT,
                    kind=ContactKind.REPORTING,
                    name=name,
                    email=f"{name.split()[0].lower()}@acme.example",
                )
            )
        if account_manager:
            session.add(
                ClientContact(
                    client_id=CLIENT,
                    kind=ContactKind.ACCOUNT_MANAGER,
                    name="Adam Manager",
                    email="adam@ours.example",
                )
            )
        session.add(
            ClientContact(
                client_id=CLIENT,
                kind=ContactKind.BILLING,
                name="Bea Billing",
                email="billing@acme.example",
            )
        )
        await session.commit()
    return ids


def record(
    shipment: str,
    when: dt.datetime,
    outcome: StopOutcome = StopOutcome.DELIVERED,
    attempt: int = 1,
    **kw: object,
) -> DeliveryRecord:
    return DeliveryRecord(
        shipment_id=shipment,
        attempt_number=attempt,
        client_id=CLIENT,
        depot_id=DEPOT,
        attempted_at=when,
        outcome=outcome,
        source=RecordSource.ROUTING,
        **kw,  # type: ignore[arg-type]
    )


async def seed_week(sessions: SessionFactory) -> None:
    """W48: 10 stops, 8 first attempts of which 6 delivered (75.0%); 3 delivered with a promised
    day, 2 on time (66.7%); failed: 2 `not_home` (a case's), 1 with no reason; a claim opened
    (1 per 10 stops: 100.00 per 1,000) and filed 73 h after the event (0.0% within 72 h); a
    failed-delivery case returned to sender and resolved in 30 h; 2 escalations; an invoice
    overdue with 70.00 GBP left at the week's end. W47 has 2 stops, both delivered first."""
    async with sessions() as session:
        session.add_all(
            [
                record("S1", at(23), promised_on=dt.date(2026, 11, 23)),
                record("S2", at(24), promised_on=dt.date(2026, 11, 25)),
                record("S3", at(25), promised_on=dt.date(2026, 11, 24)),
                record("S4", at(25)),
                record("S5", at(26)),
                record("S6", at(27)),
                record(
                    "S7",
                    at(23),
                    StopOutcome.FAILED,
                    reason="not_home",
                    case_id="failed-delivery-S7",
                ),
                record("S8", at(23, 23, 59), StopOutcome.FAILED),
                record("S0", at(24), attempt=2),
                record("S7", at(26), StopOutcome.FAILED, attempt=2, reason="not_home"),
                # the week before
                record("P1", at(17)),
                record("P2", at(18)),
                # the next Monday at 00:00: not in W48
                record("N1", at(30, 0, 0)),
            ]
        )
        session.add_all(
            [
                Case(
                    id="failed-delivery-S7",
                    type=CaseType.FAILED_DELIVERY,
                    status=CaseStatus.CLOSED,
                    resolution=Resolution.RETURNED_TO_SENDER,
                    business_key="S7",
                    client_id=CLIENT,
                    depot_id=DEPOT,
                    subject="Failed delivery S7",
                    opened_at=at(23, 8),
                    closed_at=at(24, 14),
                    escalated=True,
                ),
                Case(
                    id="damage-claim-S5",
                    type=CaseType.DAMAGE_CLAIM,
                    status=CaseStatus.AWAITING_DECISION,
                    business_key="S5",
                    client_id=CLIENT,
                    depot_id=DEPOT,
                    subject="Claim for shipment S5: damaged",
                    opened_at=at(25, 9),
                    deadline_at=at(28, 10),
                    escalated=True,
                    details={
                        "delivery_event_at": at(25).isoformat(),
                        "filed_at": at(28, 11).isoformat(),
                    },
                ),
                Case(
                    id="unpaid-invoice-INV-ACME-000001",
                    type=CaseType.UNPAID_INVOICE,
                    status=CaseStatus.AWAITING_PAYMENT,
                    business_key="INV-ACME-000001",
                    client_id=CLIENT,
                    subject="Invoice INV-ACME-000001",
                    opened_at=at(1),
                    details={
                        "currency": "GBP",
                        "amount": "100.00",
                        "balance": "70.00",
                        "due_on": "2026-11-20",
                        "payments": [{"amount": "30.00", "paid_on": "2026-11-24"}],
                    },
                ),
            ]
        )
        session.add_all(
            [
                TimelineEntry(
                    case_id="failed-delivery-S7",
                    seq=1,
                    at=at(23, 8),
                    kind="opened",
                    summary="Opened",
                ),
                TimelineEntry(
                    case_id="failed-delivery-S7",
                    seq=2,
                    at=at(24, 9),
                    kind="escalated",
                    summary="No answer in 24 h",
                ),
                TimelineEntry(
                    case_id="failed-delivery-S7",
                    seq=3,
                    at=at(24, 13),
                    kind="status",
                    summary="Returning to sender",
                    data={"status": "returning_to_sender"},
                ),
                TimelineEntry(
                    case_id="failed-delivery-S7",
                    seq=4,
                    at=at(24, 14),
                    kind="status",
                    summary="Closed",
                    data={"status": "closed"},
                ),
                TimelineEntry(
                    case_id="damage-claim-S5",
                    seq=1,
                    at=at(25, 9),
                    kind="escalated",
                    summary="Reported late",
                ),
            ]
        )
        await session.commit()


WEEK_FIGURES = {
    "stops_attempted": 10,
    "first_attempt_success": {"numerator": 6, "denominator": 8, "percent": "75.0"},
    "on_time": {"numerator": 2, "denominator": 3, "percent": "66.7"},
    "failed_by_reason": {"not_home": 2, "reason not reported": 1},
    "returns_to_sender": 1,
    "claims_opened": 1,
    "claims_per_1000_stops": {"count": 1, "base": 10, "value": "100.00"},
    "claims_filed_within_72h": {"numerator": 0, "denominator": 1, "percent": "0.0"},
    "escalations": 2,
    "invoices_overdue": 1,
    "overdue_balance": [{"currency": "GBP", "amount": "70.00"}],
}
"""What `seed_week` makes of W48 (JSON, as the API answers)."""
