"""Every enumeration of the domain, each value with the sentence that defines it.

The descriptions are shown in the OpenAPI schema (see `describe`) so that an API reader never
has to guess what a status means.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class DescribedEnum(StrEnum):
    """A string enum whose members carry a one-line description."""

    description: str

    def __new__(cls, value: str, description: str = "") -> DescribedEnum:
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.description = description
        return obj

    @classmethod
    def describe(cls) -> str:
        return "; ".join(f"`{m.value}`: {m.description}" for m in cls)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler(core_schema)
        schema["description"] = cls.describe()
        return schema


class CaseType(DescribedEnum):
    FAILED_DELIVERY = (
        "failed_delivery",
        "A delivery attempt failed; the parcel must be redelivered or returned.",
    )
    DAMAGE_CLAIM = (
        "damage_claim",
        "A parcel was damaged, lost or stolen; a claim is filed before the deadline.",
    )
    DRIVER_ONBOARDING = "driver_onboarding", "A new driver's documents are collected and approved."
    DRIVER_COMPLIANCE = (
        "driver_compliance",
        "An active driver's expiring documents are watched and renewed.",
    )
    UNPAID_INVOICE = "unpaid_invoice", "A client invoice is chased through the dunning ladder."

    @property
    def workflow_id_prefix(self) -> str:
        return self.value.replace("_", "-")

    def workflow_id(self, business_key: str) -> str:
        """Workflow ID = business key: one case per shipment, driver or invoice."""
        return f"{self.workflow_id_prefix}-{business_key}"


class CaseStatus(DescribedEnum):
    OPEN = "open", "Opened; the first actions are under way."
    WAITING_ON_CUSTOMER = (
        "waiting_on_customer",
        "Waiting for the customer to choose how to receive the parcel.",
    )
    REDELIVERY_SCHEDULED = (
        "redelivery_scheduled",
        "A redelivery is booked; waiting for the delivery outcome.",
    )
    RETURNING_TO_SENDER = (
        "returning_to_sender",
        "The parcel is being sent back to the client shipper.",
    )
    GATHERING_EVIDENCE = (
        "gathering_evidence",
        "Collecting the claim's evidence before the filing deadline.",
    )
    AWAITING_DECISION = (
        "awaiting_decision",
        "Filed with the carrier or insurer; waiting for their decision.",
    )
    COLLECTING_DOCUMENTS = (
        "collecting_documents",
        "Waiting for documents to be sent, reviewed and approved.",
    )
    MONITORING = "monitoring", "Every watched document is valid; waiting for the next expiry."
    RENEWAL_REQUESTED = (
        "renewal_requested",
        "A document expires soon; a replacement has been asked for.",
    )
    SUSPENDED = "suspended", "A document has expired; waiting for an approved replacement."
    AWAITING_PAYMENT = "awaiting_payment", "Waiting for the balance, following the ladder."
    DISPUTED = "disputed", "The client disputes it; the ladder is paused."
    PAYMENT_PROMISED = "payment_promised", "The client promised to pay by a date; paused."
    CLOSED = "closed", "Finished; the resolution says how."
    CANCELLED = "cancelled", "Cancelled by ops before it finished."

    @property
    def is_terminal(self) -> bool:
        return self in (CaseStatus.CLOSED, CaseStatus.CANCELLED)


class Resolution(DescribedEnum):
    DELIVERED = "delivered", "The parcel was delivered."
    RETURNED_TO_SENDER = "returned_to_sender", "The parcel went back to the client shipper."
    PAID = "paid", "The claim was approved and paid."
    DENIED = "denied", "The claim was denied."
    WITHDRAWN = "withdrawn", "Withdrawn before it finished."
    CANCELLED = "cancelled", "Ops cancelled the case."
    ACTIVATED = "activated", "Every document was approved; the driver is active."
    ABANDONED = "abandoned", "The driver did not complete onboarding in time."
    OFFBOARDED = "offboarded", "The driver no longer drives for us."
    WRITTEN_OFF = "written_off", "The balance was written off."


class FailureReason(DescribedEnum):
    NOT_HOME = "not_home", "Nobody was there to receive the parcel."
    ACCESS_PROBLEM = (
        "access_problem",
        "The driver could not get to the door (gate, code, building).",
    )
    ADDRESS_PROBLEM = "address_problem", "The address is wrong, incomplete or could not be found."
    REFUSED = "refused", "The recipient refused the parcel; it goes back to the sender."
    DAMAGED = "damaged", "The parcel was found damaged; recorded for a damage claim."


class RedeliveryOption(DescribedEnum):
    REDELIVERY_WINDOW = "redelivery_window", "Deliver again on a chosen day and time window."
    PICKUP_POINT = "pickup_point", "Leave the parcel at a pickup point for collection."
    NEIGHBOUR = "neighbour", "Leave the parcel with a named neighbour on the next route."
    ADDRESS_CORRECTION = "address_correction", "Deliver on the next route to a corrected address."


class TimeWindow(DescribedEnum):
    MORNING = "morning", "08:00 to 12:00 local time."
    AFTERNOON = "afternoon", "12:00 to 17:00 local time."
    EVENING = "evening", "17:00 to 21:00 local time."

    @property
    def hours(self) -> tuple[int, int]:
        return {"morning": (8, 12), "afternoon": (12, 17), "evening": (17, 21)}[self.value]


class DeliveryOutcome(DescribedEnum):
    DELIVERED = "delivered", "The parcel was handed over; the case closes."
    FAILED = "failed", "The redelivery failed too; the next attempt starts."


class Role(DescribedEnum):
    VIEWER = "viewer", "Reads cases, messages and reference data."
    OPS = "ops", "Opens cases and acts on them."
    ADMIN = "admin", "Manages clients, depots, drivers, policies and API keys."

    @property
    def rank(self) -> int:
        return {"viewer": 0, "ops": 1, "admin": 2}[self.value]

    def allows(self, required: Role) -> bool:
        return self.rank >= required.rank


class MessageStatus(DescribedEnum):
    PENDING = "pending", "Written to the outbox, not yet handed to the email backend."
    SENT = "sent", "Accepted by the email backend (or stored by the outbox sink)."
    FAILED = "failed", "The backend refused it permanently; the case was escalated."


class ContactKind(DescribedEnum):
    SHIPMENT_NOTIFICATIONS = (
        "shipment_notifications",
        "Receives updates about the client's shipments.",
    )
    BILLING = "billing", "Receives invoices and payment reminders."
    ACCOUNT_MANAGER = "account_manager", "Our account manager for the client; receives escalations."
    CLAIMS = "claims", "The carrier's or insurer's claims address for the client."
    REPORTING = (
        "reporting",
        "Receives the client's daily exception summary and weekly performance report.",
    )


class DriverStatus(DescribedEnum):
    ONBOARDING = "onboarding", "Documents are being collected."
    ACTIVE = "active", "Cleared to drive routes."
    SUSPENDED = "suspended", "Off routes: a required document has expired."
    INACTIVE = "inactive", "No longer driving for us."
    ABANDONED = "abandoned", "Did not complete onboarding in time."
    WITHDRAWN = "withdrawn", "Onboarding was withdrawn by ops."
    OFFBOARDED = "offboarded", "Left; no longer routed or watched."


class VehicleType(DescribedEnum):
    VAN = "van", "A delivery van."
    CAR = "car", "A car."
    CARGO_BIKE = "cargo_bike", "A cargo bike (no vehicle registration)."
    BIKE = "bike", "A bicycle (no vehicle registration)."


class ShipmentStatus(DescribedEnum):
    OUT_FOR_DELIVERY = "out_for_delivery", "On a route today."
    ATTEMPT_FAILED = "attempt_failed", "The last attempt failed; waiting for a new plan."
    REDELIVERY_SCHEDULED = (
        "redelivery_scheduled",
        "A new attempt, pickup point or neighbour drop is booked.",
    )
    DELIVERED = "delivered", "Handed over."
    RETURNING_TO_SENDER = "returning_to_sender", "On its way back to the client shipper."


class StopOutcome(DescribedEnum):
    """What a delivery record says happened at one stop (billing prices each)."""

    DELIVERED = "delivered", "The parcel was handed over: billed as a delivered stop."
    FAILED = "failed", "The attempt failed: billed at the failed-attempt fee."


class RecordSource(DescribedEnum):
    """Who vouches for a delivery record's facts (time, outcome, client, depot)."""

    ROUTING = "routing", "The routing system reported the stop (`POST /deliveries`)."
    CASE = (
        "case",
        "Only a failed-delivery case has recorded the attempt so far; the routing system's "
        "report of the same stop will confirm it and fill in its zone and residential flag.",
    )


class BillingCycle(DescribedEnum):
    WEEKLY = "weekly", "Invoiced every week, Monday to Sunday in the client's time zone."
    MONTHLY = "monthly", "Invoiced every calendar month in the client's time zone."
