"""SQLModel tables: reference data, drivers and their documents, delivery records and rate
agreements (what billing reads), invoices, the case index (a projection the workflows write through
activities), the timeline, the outbox and API keys.

Timestamps are timezone-aware UTC. Business identifiers (client, depot, driver, shipment) are
the operator's own string ids; rows the system creates get UUIDs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.schema import DDL
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from schemas.documents import DocumentKind
from schemas.enums import (
    BillingCycle,
    CaseStatus,
    CaseType,
    ContactKind,
    DescribedEnum,
    DriverStatus,
    MessageStatus,
    RecordSource,
    Resolution,
    Role,
    ShipmentStatus,
    StopOutcome,
    VehicleType,
)
from schemas.onboarding import ItemStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


class DecimalString(TypeDecorator[Decimal]):
    """An exact decimal stored as its text (`"12.50"`): SQLite has no decimal type (SQLAlchemy
    would go through a float), and money must never be a float."""

    length = 40
    impl = String(length)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"not a finite Decimal: {value!r}")
        return format(value, "f")

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite hands back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; casedesk stores aware UTC datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enum(enum: type[Enum]) -> Any:
    """Store enum values (not member names) as plain strings: readable SQL, no ALTER TYPE."""
    return SAEnum(
        enum,
        values_callable=lambda members: [m.value for m in members],
        native_enum=False,
        create_constraint=False,
        length=32,
    )


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


# --- reference data -----------------------------------------------------------------------


class Client(SQLModel, table=True):
    __tablename__ = "clients"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    # IANA name. A stop's date, and so its billing period and the rate agreement that prices
    # it, is the date in this zone.
    timezone: str = Field(default="UTC", max_length=64)
    # Per case type policy overrides, e.g. {"failed_delivery": {"max_attempts": 2}}.
    policy_overrides: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Set by an unpaid invoice at the end of its dunning ladder: new dispatches for this client
    # are held until the invoice is paid or an admin releases the hold.
    dispatch_hold: bool = False
    dispatch_hold_reason: str | None = Field(default=None, max_length=500)
    dispatch_hold_case_id: str | None = Field(default=None, max_length=128)
    dispatch_hold_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Which reports the client gets, at what local hour, to whom
    # (`schemas.reporting.ReportingSettings`); {}: none.
    reporting: dict[str, Any] = _json()


class ClientContact(SQLModel, table=True):
    __tablename__ = "client_contacts"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: str = Field(foreign_key="clients.id", index=True, max_length=64)
    kind: ContactKind = Field(sa_type=_enum(ContactKind))
    name: str = Field(max_length=200)
    email: str = Field(max_length=254)
    phone: str | None = Field(default=None, max_length=40)


class TeamRole(DescribedEnum):
    """Our own teams that cases hand work to (not a client's contacts)."""

    CLAIMS_DESK = (
        "claims_desk",
        "Our claims desk: takes over claims at risk of missing the deadline.",
    )
    ONBOARDING_COORDINATOR = (
        "onboarding_coordinator",
        "Coordinates new drivers' documents and approvals.",
    )


class TeamContact(SQLModel, table=True):
    """Who answers for one of our teams; messages to the role go to the first one by name."""

    __tablename__ = "team_contacts"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    role: TeamRole = Field(index=True, sa_type=_enum(TeamRole))
    name: str = Field(max_length=200)
    email: str = Field(max_length=254)
    phone: str | None = Field(default=None, max_length=40)


class Depot(SQLModel, table=True):
    __tablename__ = "depots"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    address: str = Field(max_length=500)
    timezone: str = Field(default="UTC", max_length=64)
    dispatcher_name: str = Field(max_length=200)
    dispatcher_email: str = Field(max_length=254)
    dispatcher_phone: str | None = Field(default=None, max_length=40)
    # As a new driver should read them in the briefing pack, e.g. "Mon-Sat 06:30-19:00".
    opening_hours: str | None = Field(default=None, max_length=200)
    # Per case type policy overrides, e.g.
    # {"driver_onboarding": {"depot_changes": {"add": ["right_to_work"]}}}.
    policy_overrides: dict[str, Any] = _json()


class PickupPoint(SQLModel, table=True):
    __tablename__ = "pickup_points"

    id: str = Field(primary_key=True, max_length=64)
    depot_id: str = Field(foreign_key="depots.id", index=True, max_length=64)
    name: str = Field(max_length=200)
    address: str = Field(max_length=500)
    opening_hours: str | None = Field(default=None, max_length=200)


class Driver(SQLModel, table=True):
    __tablename__ = "drivers"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    email: str = Field(max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    depot_id: str = Field(foreign_key="depots.id", index=True, max_length=64)
    status: DriverStatus = Field(default=DriverStatus.ACTIVE, sa_type=_enum(DriverStatus))
    vehicle_type: VehicleType | None = Field(default=None, sa_type=_enum(VehicleType))
    planned_start_date: date | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DriverDocument(SQLModel, table=True):
    """A driver's document and where it stands, as the onboarding case and the compliance
    watch record it (a projection: the workflows own the checklist). `GET /drivers/{id}`
    lists these; `expiring_before` filters on `expires_on`."""

    __tablename__ = "driver_documents"
    __table_args__ = (UniqueConstraint("driver_id", "document_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    driver_id: str = Field(foreign_key="drivers.id", index=True, max_length=64)
    case_id: str = Field(max_length=128)
    document_id: str = Field(max_length=64)
    kind: DocumentKind = Field(sa_type=_enum(DocumentKind))
    status: ItemStatus = Field(sa_type=_enum(ItemStatus))
    expires_on: date | None = Field(default=None, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Shipment(SQLModel, table=True):
    __tablename__ = "shipments"

    id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(foreign_key="clients.id", index=True, max_length=64)
    depot_id: str = Field(foreign_key="depots.id", index=True, max_length=64)
    status: ShipmentStatus = Field(
        default=ShipmentStatus.OUT_FOR_DELIVERY, sa_type=_enum(ShipmentStatus)
    )
    customer_name: str = Field(max_length=200)
    customer_email: str = Field(max_length=254)
    customer_phone: str | None = Field(default=None, max_length=40)
    address: dict[str, Any] = _json()
    failed_attempts: int = 0
    # The current plan after a failed attempt: a window, pickup point, neighbour or new address.
    redelivery_date: date | None = None
    redelivery_plan: dict[str, Any] = _json()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeliveryRecord(SQLModel, table=True):
    """One stop outcome: attempt `attempt_number` at shipment `shipment_id`, delivered or
    failed. Billing prices these. The routing system reports them (`POST /deliveries`) and a
    failed-delivery case records its failed attempts here too: one row per (shipment,
    attempt) whoever reports it first (`source` says whose facts stand), never two.

    `shipment_id` is the operator's id and need not be in `shipments` (that table holds only
    the shipments casedesk has worked a case for)."""

    __tablename__ = "delivery_records"
    __table_args__ = (
        UniqueConstraint("shipment_id", "attempt_number"),
        # Invoicing reads a client's stops over a period.
        Index("ix_delivery_records_client_id_attempted_at", "client_id", "attempted_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # Looked up by shipment through the unique constraint's index.
    shipment_id: str = Field(max_length=64)
    attempt_number: int
    client_id: str = Field(foreign_key="clients.id", max_length=64)
    depot_id: str = Field(foreign_key="depots.id", index=True, max_length=64)
    attempted_at: datetime = Field(sa_type=UTCDateTime)
    outcome: StopOutcome = Field(sa_type=_enum(StopOutcome))
    zone: str | None = Field(default=None, max_length=32)
    residential: bool | None = None
    # The day the client promised the customer (in the client's time zone), where the
    # routing system sends one: the on-time rate of the client's reports.
    promised_on: date | None = None
    source: RecordSource = Field(sa_type=_enum(RecordSource))
    # What the failed-delivery case recorded with the attempt (null for routing-only rows).
    # The fee is the one the case's policy named (shown on a claim's attempt record); an
    # invoice prices a failed attempt from the client's rate agreement instead.
    case_id: str | None = Field(default=None, index=True, max_length=128)
    reason: str | None = Field(default=None, max_length=32)
    driver_id: str | None = Field(default=None, max_length=64)
    case_fee_cents: int | None = None
    case_fee_currency: str | None = Field(default=None, max_length=3)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RateAgreementVersion(SQLModel, table=True):
    """One version of a client's rate agreement, in force from `effective_from` (a date in
    the client's time zone) until the next version's. Versions are never deleted; a version
    not yet in force may be replaced (`updated_at`/`updated_by`). Money is exact: decimal
    strings (see `DecimalString`), validated to the currency's minor units on the way in."""

    __tablename__ = "rate_agreements"
    __table_args__ = (UniqueConstraint("client_id", "effective_from"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: str = Field(foreign_key="clients.id", index=True, max_length=64)
    effective_from: date
    currency: str = Field(max_length=3)
    base_rate_per_stop: Decimal = Field(sa_type=DecimalString)
    # zone -> amount added per delivered stop, as decimal strings: {"B": "1.50", "C": "0.00"}.
    zone_rates: dict[str, str] = _json()
    residential_surcharge: Decimal = Field(sa_type=DecimalString)
    failed_attempt_fee: Decimal = Field(sa_type=DecimalString)
    minimum_charge_per_invoice: Decimal = Field(sa_type=DecimalString)
    tax_rate: Decimal = Field(sa_type=DecimalString)
    billing_cycle: BillingCycle = Field(sa_type=_enum(BillingCycle))
    payment_terms_days: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(max_length=200)
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_by: str | None = Field(default=None, max_length=200)


# --- invoices -----------------------------------------------------------------------------


class InvoiceCounter(SQLModel, table=True):
    """A client's last invoice number. Incremented in the transaction that inserts the
    invoice (the row lock orders concurrent runs on PostgreSQL; SQLite has one writer), so a
    number is taken only by an invoice that exists: no gaps, no repeats."""

    __tablename__ = "invoice_counters"

    client_id: str = Field(foreign_key="clients.id", primary_key=True, max_length=64)
    last_number: int = 0


class Invoice(SQLModel, table=True):
    """An issued invoice: one per client and period (what makes a run idempotent). Money is
    in integer minor units of `currency` (exact, and summable in SQL on both databases;
    `minor_units` says where the point goes). Where it stands is the unpaid-invoice case's
    business: `case_id` joins the case index."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("client_id", "period_start", "period_end"),
        UniqueConstraint("client_id", "sequence"),
    )

    id: str = Field(primary_key=True, max_length=64, description="The number.")
    client_id: str = Field(foreign_key="clients.id", index=True, max_length=64)
    sequence: int
    period_start: date
    period_end: date
    timezone: str = Field(max_length=64, description="The client's, which dated the stops.")
    currency: str = Field(max_length=3)
    minor_units: int
    stops_minor: int = Field(
        sa_type=BigInteger, description="The stop lines, before any minimum-charge uplift."
    )
    minimum_charge_minor: int = Field(
        sa_type=BigInteger, description="The uplift to the minimum (0: none)."
    )
    subtotal_minor: int = Field(sa_type=BigInteger)
    tax_minor: int = Field(sa_type=BigInteger)
    total_minor: int = Field(sa_type=BigInteger)
    # [{"tax_rate": "0.20", "taxable": "50.00", "amount": "10.00"}]: decimal strings.
    tax_lines: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    stop_count: int
    issued_on: date
    due_on: date
    payment_terms_days: int
    agreements_used: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    run_id: str = Field(max_length=200, description="The run that issued it.")
    case_id: str = Field(max_length=128, index=True)
    message_key: str = Field(max_length=300, description="The invoice email's outbox key.")
    pdf_document_id: str | None = Field(default=None, max_length=64)
    pdf_sha256: str | None = Field(default=None, max_length=64)
    pdf_size_bytes: int | None = None
    csv_document_id: str | None = Field(default=None, max_length=64)
    csv_sha256: str | None = Field(default=None, max_length=64)
    csv_size_bytes: int | None = None
    documents_stored_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InvoiceLine(SQLModel, table=True):
    """An invoice's summary line: its stops of one (agreement version, kind, zone,
    residential) at one unit price, or the minimum-charge uplift."""

    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("invoice_id", "position"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    invoice_id: str = Field(foreign_key="invoices.id", max_length=64)
    position: int
    kind: str = Field(max_length=32)
    description: str = Field(max_length=300)
    agreement_effective_from: date
    zone: str | None = Field(default=None, max_length=32)
    residential: bool | None = None
    quantity: int
    unit_price_minor: int = Field(sa_type=BigInteger)
    amount_minor: int = Field(sa_type=BigInteger)
    tax_rate: Decimal = Field(sa_type=DecimalString)


class InvoiceStop(SQLModel, table=True):
    """A stop an invoice bills, with its price components (a row of the invoice's CSV).
    Unique per (shipment, attempt): a stop is billed once, ever."""

    __tablename__ = "invoice_stops"
    __table_args__ = (UniqueConstraint("shipment_id", "attempt_number"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    invoice_id: str = Field(foreign_key="invoices.id", index=True, max_length=64)
    shipment_id: str = Field(max_length=64)
    attempt_number: int
    attempted_at: datetime = Field(sa_type=UTCDateTime)
    local_date: date
    outcome: StopOutcome = Field(sa_type=_enum(StopOutcome))
    zone: str | None = Field(default=None, max_length=32)
    residential: bool | None = None
    agreement_effective_from: date
    base_rate_minor: int = Field(sa_type=BigInteger)
    zone_rate_minor: int = Field(sa_type=BigInteger)
    residential_surcharge_minor: int = Field(sa_type=BigInteger)
    failed_attempt_fee_minor: int = Field(sa_type=BigInteger)
    amount_minor: int = Field(sa_type=BigInteger)


# --- client reports ------------------------------------------------------------------------


class ClientReport(SQLModel, table=True):
    """A report run for one client, kind and period (what makes it idempotent): the figures
    as emailed, the stored charts, PDF and CSV, and whether its emails went out. `id` is the
    business key, `report-{kind}-{client_id}-{period}` (the run's workflow id)."""

    __tablename__ = "client_reports"
    __table_args__ = (
        UniqueConstraint("client_id", "kind", "period"),
        Index("ix_client_reports_client_id_kind_created_at", "client_id", "kind", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=128)
    client_id: str = Field(foreign_key="clients.id", max_length=64)
    kind: str = Field(max_length=16)
    period: str = Field(max_length=16)
    timezone: str = Field(max_length=64)
    as_of: datetime = Field(sa_type=UTCDateTime, description="The run's moment.")
    run_id: str = Field(max_length=200)
    # The whole `schemas.report_figures.Report`, as the email showed it (decimal strings).
    figures: dict[str, Any] = _json()
    # {"trend": {"id", "sha256", "size_bytes", "content_type", "stored_at"}, ...}
    charts: dict[str, Any] = _json()
    pdf: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    csv: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # prepared | sent | no_recipients | send_failed
    status: str = Field(default="prepared", max_length=32)
    recipients: int = 0
    message_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    problems: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- cases --------------------------------------------------------------------------------


class Case(SQLModel, table=True):
    """The case index: one row per case, written only by the workflow's activities."""

    __tablename__ = "cases"

    id: str = Field(primary_key=True, max_length=128, description="The workflow id.")
    type: CaseType = Field(index=True, sa_type=_enum(CaseType))
    status: CaseStatus = Field(index=True, sa_type=_enum(CaseStatus))
    resolution: Resolution | None = Field(default=None, sa_type=_enum(Resolution))
    business_key: str = Field(index=True, max_length=64)
    client_id: str | None = Field(default=None, index=True, max_length=64)
    depot_id: str | None = Field(default=None, index=True, max_length=64)
    subject: str = Field(max_length=300)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deadline_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    escalated: bool = Field(default=False)
    escalation_reason: str | None = Field(default=None, max_length=1000)
    assignee: str | None = Field(default=None, max_length=200, index=True)
    next_step: str | None = Field(default=None, max_length=300)
    next_step_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    details: dict[str, Any] = _json()
    version: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# A case that is not closed or cancelled, in the words both the partial index below and
# `GET /cases?overdue=` use: a planner takes a partial index only for a query whose WHERE
# repeats its predicate.
OPEN_CASE_SQL = "status NOT IN ({})".format(
    ", ".join(f"'{status.value}'" for status in CaseStatus if status.is_terminal)
)


CASES = SQLModel.metadata.tables["cases"]


# `GET /cases?q=` finds text anywhere in a case's id, business key or subject through a
# trigram index: PostgreSQL's pg_trgm on this expression (the same SQL in the index and the
# query, so the planner matches them); on SQLite an FTS5 trigram table `cases_search` of the
# same words and the case id, kept by triggers. Its rowid is the case row's, for the triggers
# to find it; the list joins on the case id. (A VACUUM may renumber the rowids of `cases`; a
# new row then replaces a search row of the same rowid instead of failing. Rebuild with
# CASE_SEARCH_REBUILD after one.)
def case_words_sql(row: str = "") -> str:
    return f"({row}id || ' ' || {row}business_key || ' ' || {row}subject)"


CASE_SEARCH_TABLE = "cases_search"
# Constant SQL (no input reaches it).
_SEARCH_ROW = (
    f"INSERT OR REPLACE INTO {CASE_SEARCH_TABLE} (rowid, words, case_id) "  # noqa: S608
    f"VALUES (new.rowid, {case_words_sql('new.')}, new.id)"
)
CASE_SEARCH_REBUILD = [
    f"DELETE FROM {CASE_SEARCH_TABLE}",  # noqa: S608
    f"INSERT INTO {CASE_SEARCH_TABLE} (rowid, words, case_id) "  # noqa: S608
    f"SELECT rowid, {case_words_sql()}, id FROM cases",
]
_SEARCH_GONE = f"DELETE FROM {CASE_SEARCH_TABLE} WHERE rowid = old.rowid"  # noqa: S608
CASE_SEARCH_DDL = {
    "postgresql": [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        f"CREATE INDEX ix_cases_words ON cases USING gin ({case_words_sql()} gin_trgm_ops)",
    ],
    "sqlite": [
        f"CREATE VIRTUAL TABLE {CASE_SEARCH_TABLE} "
        "USING fts5(words, case_id UNINDEXED, tokenize='trigram')",
        f"CREATE TRIGGER cases_search_insert AFTER INSERT ON cases BEGIN {_SEARCH_ROW}; END",
        "CREATE TRIGGER cases_search_update AFTER UPDATE OF id, business_key, subject ON cases "
        "WHEN old.id IS NOT new.id OR old.business_key IS NOT new.business_key "
        f"OR old.subject IS NOT new.subject BEGIN {_SEARCH_GONE}; {_SEARCH_ROW}; END",
        f"CREATE TRIGGER cases_search_delete AFTER DELETE ON cases BEGIN {_SEARCH_GONE}; END",
    ],
}
for _dialect, _statements in CASE_SEARCH_DDL.items():
    for _sql in _statements:
        event.listen(CASES, "after_create", DDL(_sql).execute_if(dialect=_dialect))

# The orders `GET /cases` lists in, each an index the list is read from in order (the case id
# breaks ties, so a keyset cursor is exact); a deadline sort puts cases without one last in
# either direction, hence the flag in front.
_c = CASES.c
Index("ix_cases_opened_at_id", _c.opened_at, _c.id)
Index("ix_cases_updated_at_id", _c.updated_at, _c.id)
Index("ix_cases_deadline_nulls_last", _c.deadline_at.is_(None), _c.deadline_at, _c.id)
Index("ix_cases_deadline_desc", _c.deadline_at.is_not(None), _c.deadline_at, _c.id)
# "My cases in my depot", the console's everyday list.
Index("ix_cases_depot_id_assignee", _c.depot_id, _c.assignee)
# Escalations are few and asked for often: a partial index of just them (queries say
# `escalated` in these words, see OPEN_CASE_SQL).
ESCALATED_SQL = "escalated"
Index(
    "ix_cases_escalated_only",
    _c.deadline_at,
    sqlite_where=text(ESCALATED_SQL),
    postgresql_where=text(ESCALATED_SQL),
)
Index(
    "ix_cases_open_deadline",
    _c.deadline_at,
    sqlite_where=text(OPEN_CASE_SQL),
    postgresql_where=text(OPEN_CASE_SQL),
)


class TimelineEntry(SQLModel, table=True):
    __tablename__ = "timeline"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: str = Field(index=True, max_length=128)
    seq: int
    at: datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(max_length=64)
    summary: str = Field(max_length=1000)
    actor: str = Field(default="system", max_length=200)
    data: dict[str, Any] = _json()


class Message(SQLModel, table=True):
    """The outbox: written before sending, unique on the deterministic message key."""

    __tablename__ = "messages"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    key: str = Field(unique=True, max_length=300)
    case_id: str = Field(index=True, max_length=128)
    template: str = Field(max_length=100)
    recipient_role: str = Field(max_length=64)
    recipient_name: str | None = Field(default=None, max_length=200)
    recipient_email: str = Field(max_length=254)
    subject: str = Field(max_length=300)
    text_body: str
    html_body: str
    status: MessageStatus = Field(default=MessageStatus.PENDING, sa_type=_enum(MessageStatus))
    backend: str = Field(max_length=32)
    provider_message_id: str | None = Field(default=None, max_length=200)
    error: str | None = Field(default=None, max_length=2000)
    send_attempts: int = 0
    # The attached documents: [{"id", "kind", "name", "sha256"}, ...]; the bytes stay in the
    # document store.
    attachments: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # What SendGrid's Event Webhook reported after sending: a bounce, a drop or a spam report
    # (the status stays `sent`: the message left, and is never sent again).
    delivery_problem: str | None = Field(default=None, max_length=32)
    delivery_problem_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    """An API key; only its SHA-256 is stored, the secret is shown once at creation."""

    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    role: Role = Field(sa_type=_enum(Role))
    prefix: str = Field(max_length=16, description="The first characters, to recognise a key.")
    key_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ConsoleSession(SQLModel, table=True):
    """A signed-in console browser. The cookie holds a random token; only its SHA-256 is
    stored, so the table cannot be turned back into cookies. A session ends at logout
    (`ended_at`), when its key is revoked, after the idle timeout and at `expires_at`."""

    __tablename__ = "console_sessions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    key_id: uuid.UUID = Field(foreign_key="api_keys.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class HealthCheck(SQLModel, table=True):
    """One row that `GET /healthz` rewrites on every call: the proof that the database takes
    writes (a `SELECT 1` answers while every write is blocked)."""

    __tablename__ = "health_checks"

    id: int = Field(primary_key=True)
    checked_at: datetime = Field(sa_type=UTCDateTime)


class IdempotencyKey(SQLModel, table=True):
    """A POST sent with an `Idempotency-Key`: its first kept answer, replayed to the same key
    with the same request for 24 hours. `status_code` is None until an answer is kept;
    `claimed_at` is set while a request with the key runs. The row's `id` names the updates
    the key sends (the same id on every retry, a new one once the key has expired)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    scope: str = Field(max_length=64, description="SHA-256 of the caller's credentials.")
    key: str = Field(max_length=255)
    fingerprint: str = Field(max_length=64, description="SHA-256 of the method, path and body.")
    status_code: int | None = None
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    content_type: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=500)
    body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class SendgridEvent(SQLModel, table=True):
    """An Event Webhook event already handled, by SendGrid's `sg_event_id`: SendGrid retries a
    batch it did not see answered, and each event must count once."""

    __tablename__ = "sendgrid_events"

    sg_event_id: str = Field(primary_key=True, max_length=100)
    event: str = Field(max_length=32)
    message_key: str | None = Field(default=None, max_length=300)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
