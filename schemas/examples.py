"""Examples of every request body the API takes, in the demo data that `make run` seeds
(`core/bootstrap.py`): the client `demo-shop` (London time, GBP), the depot `depot-north`, the
driver `driver-001`, fictional `@example.com` people. "Try it out" in `/docs` starts from
them, so each one is a request that a fresh `make run` accepts.

Times are relative to now (an attempt "yesterday afternoon", a start date in two weeks),
because the API refuses events in the future and attempts older than the policy allows: each
model takes its example through `json_schema_extra=example(builder)`, and the builder runs
when the JSON schema is first built (once per process, as FastAPI builds its OpenAPI
document once).

Records that would collide with the seed (a new client, depot, driver, pickup point) use new
ids in the same style (`demo-garden`, `depot-south`, `driver-004`).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

DEMO_CLIENT = "demo-shop"
DEMO_DEPOT = "depot-north"
DEMO_DRIVER = "driver-001"
DEMO_CURRENCY = "GBP"
DEMO_ZONE = ZoneInfo("Europe/London")
SHIPMENT_ID = "SHP-2026-048213"
DAMAGED_SHIPMENT_ID = "SHP-2026-048377"
INVOICE_ID = "INV-DEMO-SHOP-000042"

Example = dict[str, Any]
Builder = Callable[[dt.datetime], Example]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class example:  # noqa: N801  # used as `json_schema_extra=example(builder)`
    """A model's `json_schema_extra`: sets the schema's `examples` to the builder's. Built
    the first time the schema is, then kept for the process, as FastAPI keeps its OpenAPI
    document: `/docs`, `/openapi.json` and `GET /case-types` show the same example. `build`
    stays reachable, so the tests build every example at times of their own."""

    build: Builder
    _built: list[Example] = field(default_factory=list, compare=False, repr=False)

    def __call__(self, schema: dict[str, Any]) -> None:
        if not self._built:
            self._built.append(self.build(now()))
        schema["examples"] = [copy.deepcopy(self._built[0])]


def _local(at: dt.datetime, days: int = 0, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A London wall-clock time `days` from `at`'s London date."""
    day = at.astimezone(DEMO_ZONE).date() + dt.timedelta(days=days)
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=DEMO_ZONE)


def _ago(at: dt.datetime, hours: int) -> str:
    """`hours` before `at` on the minute, in London time with its offset."""
    moment = (at - dt.timedelta(hours=hours)).astimezone(DEMO_ZONE)
    return moment.replace(second=0, microsecond=0).isoformat()


def _today(at: dt.datetime, days: int = 0) -> str:
    return (at.astimezone(DEMO_ZONE).date() + dt.timedelta(days=days)).isoformat()


CUSTOMER: Example = {
    "name": "Jamie Example",
    "email": "jamie.customer@example.com",
    "phone": "+44 7700 900123",
}
ADDRESS: Example = {
    "line1": "14 Sample Street",
    "line2": "Flat 3",
    "city": "London",
    "postal_code": "N1 0AD",
    "country": "GB",
}


# --- opening cases -------------------------------------------------------------------------


def failed_delivery_open(at: dt.datetime) -> Example:
    return {
        "shipment_id": SHIPMENT_ID,
        "client_id": DEMO_CLIENT,
        "customer": CUSTOMER,
        "address": ADDRESS,
        "attempt_number": 1,
        "reason": "not_home",
        "driver_id": DEMO_DRIVER,
        "attempted_at": _local(at, days=-1, hour=14, minute=32).isoformat(),
        "note": "No answer at the door; card left in the letterbox.",
    }


def damage_claim_open(at: dt.datetime) -> Example:
    return {
        "shipment_id": DAMAGED_SHIPMENT_ID,
        "client_id": DEMO_CLIENT,
        "claim_type": "damaged",
        "reported_by": "customer",
        "delivery_event_at": _ago(at, hours=20),
        "declared_value": "89.99",
        "currency": DEMO_CURRENCY,
        "description": "The box arrived crushed on one corner and the table lamp inside has a "
        "cracked base.",
        "customer": CUSTOMER,
        "driver_id": DEMO_DRIVER,
    }


def driver_onboarding_open(at: dt.datetime) -> Example:
    return {
        "driver_id": "driver-004",
        "name": "Rowan Example",
        "email": "rowan.driver@example.com",
        "phone": "+44 7700 900004",
        "depot_id": DEMO_DEPOT,
        "vehicle_type": "van",
        "planned_start_date": _today(at, days=14),
    }


def invoice_open(at: dt.datetime) -> Example:
    issued = at.astimezone(DEMO_ZONE).date() - dt.timedelta(days=10)
    return {
        "invoice_id": INVOICE_ID,
        "client_id": DEMO_CLIENT,
        "amount": "412.80",
        "currency": DEMO_CURRENCY,
        "issued_on": issued.isoformat(),
        "due_on": (issued + dt.timedelta(days=30)).isoformat(),
        "reference": "PO-7731",
    }


# --- case actions --------------------------------------------------------------------------


def redelivery(at: dt.datetime) -> Example:
    return {
        "option": "redelivery_window",
        "date": _today(at, days=2),
        "window": "morning",
        "instructions": "Please ring the bell twice; the flat is at the back.",
    }


def delivery_outcome(at: dt.datetime) -> Example:
    return {
        "outcome": "delivered",
        "attempted_at": _ago(at, hours=2),
        "attempt_number": 1,
        "driver_id": DEMO_DRIVER,
        "note": "Handed to the customer at the door.",
    }


def failed_attempt(at: dt.datetime) -> Example:
    return {
        "attempt_number": 2,
        "reason": "access_problem",
        "driver_id": DEMO_DRIVER,
        "attempted_at": _ago(at, hours=3),
        "note": "The building's gate code has changed.",
    }


def note(_: dt.datetime) -> Example:
    return {"text": "Customer phoned: she is home after 17:00 all week."}


def assign(_: dt.datetime) -> Example:
    return {"assignee": "Dana Dispatcher"}


def reason(_: dt.datetime) -> Example:
    return {"reason": "The customer has called twice and needs the parcel before Friday."}


def review(at: dt.datetime) -> Example:
    return {"decision": "approved", "expires_on": _today(at, days=730)}


def file_claim(_: dt.datetime) -> Example:
    return {"missing_reasons": {"police_report": "Damage in transit, not a theft."}}


def decision(_: dt.datetime) -> Example:
    return {"decision": "approved", "amount": "89.99"}


def payment(at: dt.datetime) -> Example:
    return {"amount": "200.00", "paid_on": _today(at), "reference": "BACS-0042-1"}


def dispute(_: dt.datetime) -> Example:
    return {
        "reason": "Two stops on the 12th were billed twice (SHP-2026-047001, SHP-2026-047002).",
        "disputed_amount": "9.50",
    }


def resolve_dispute(_: dt.datetime) -> Example:
    return {"outcome": "adjusted", "adjusted_amount": "403.30"}


def promise(at: dt.datetime) -> Example:
    return {"promised_on": _today(at, days=7), "amount": "412.80"}


def write_off(_: dt.datetime) -> Example:
    return {"reason": "Agreed with the account manager: goodwill for the October outage."}


def release_hold(_: dt.datetime) -> Example:
    return {"reason": "Payment plan agreed with Demo Shop's accounts team."}


def offboard(_: dt.datetime) -> Example:
    return {"reason": "Contract ended at the driver's request."}


# --- reference data ------------------------------------------------------------------------


def client_create(_: dt.datetime) -> Example:
    return {
        "id": "demo-garden",
        "name": "Demo Garden Supplies Ltd",
        "timezone": "Europe/London",
        "contacts": [
            {
                "kind": "shipment_notifications",
                "name": "Demo Garden Notifications",
                "email": "shipping.demo-garden@example.com",
            },
            {
                "kind": "account_manager",
                "name": "Avery Example (account manager)",
                "email": "avery.example.demo-garden@example.com",
                "phone": "+44 20 7946 0010",
            },
        ],
        "policy_overrides": {"failed_delivery": {"max_attempts": 2}},
        "reporting": {"daily": False, "weekly": True, "hour": 7},
    }


def client_update(_: dt.datetime) -> Example:
    return {"name": "Demo Shop Ltd", "reporting": {"daily": True, "weekly": True, "hour": 8}}


def contact(_: dt.datetime) -> Example:
    return {
        "kind": "billing",
        "name": "Demo Shop Accounts Payable",
        "email": "payables.demo-shop@example.com",
        "phone": "+44 20 7946 0011",
    }


def rate_agreement(at: dt.datetime) -> Example:
    return {
        "effective_from": _first_of_next_month(at).isoformat(),
        "currency": DEMO_CURRENCY,
        "base_rate_per_stop": "3.65",
        "zone_rates": {"A": "0.00", "B": "1.25", "C": "2.10"},
        "residential_surcharge": "0.75",
        "failed_attempt_fee": "4.00",
        "minimum_charge_per_invoice": "25.00",
        "tax_rate": "0.20",
        "billing_cycle": "monthly",
        "payment_terms_days": 30,
    }


def depot(_: dt.datetime) -> Example:
    return {
        "id": "depot-south",
        "name": "South Depot (demo)",
        "address": "5 Example Wharf, London SE1 0AA",
        "timezone": "Europe/London",
        "dispatcher": {
            "name": "Sol Dispatcher",
            "email": "dispatch.south@example.com",
            "phone": "+44 20 7946 0004",
        },
    }


def pickup_point(_: dt.datetime) -> Example:
    return {
        "id": "pickup-north-station-kiosk",
        "name": "Station Kiosk (demo pickup point)",
        "address": "Unit 2, Example Station, London N1 0AE",
        "opening_hours": "Mon-Fri 06:30-21:00, Sat 08:00-18:00",
    }


def driver(_: dt.datetime) -> Example:
    return {
        "id": "driver-004",
        "name": "Rowan Example",
        "email": "rowan.driver@example.com",
        "phone": "+44 7700 900004",
        "depot_id": DEMO_DEPOT,
        "status": "active",
    }


def api_key(_: dt.datetime) -> Example:
    return {"name": "routing system webhook", "role": "ops"}


def delivery_record(at: dt.datetime) -> Example:
    return {
        "shipment_id": SHIPMENT_ID,
        "client_id": DEMO_CLIENT,
        "depot_id": DEMO_DEPOT,
        "attempted_at": _ago(at, hours=2),
        "outcome": "delivered",
        "zone": "B",
        "residential": True,
        "attempt_number": 1,
        "promised_on": _today(at),
    }


# --- invoicing and reports -----------------------------------------------------------------


def invoicing_run(at: dt.datetime) -> Example:
    end = at.astimezone(DEMO_ZONE).date().replace(day=1) - dt.timedelta(days=1)
    return {
        "client_id": DEMO_CLIENT,
        "period_start": end.replace(day=1).isoformat(),
        "period_end": end.isoformat(),
    }


def schedule_note(_: dt.datetime) -> Example:
    return {"note": "Paused while Demo Shop's new rate agreement is signed."}


def report_schedule_note(_: dt.datetime) -> Example:
    return {"note": "Paused over the Christmas shutdown at Demo Shop.", "kind": "weekly"}


def report_run(at: dt.datetime) -> Example:
    year, week, _ = (at.astimezone(DEMO_ZONE).date() - dt.timedelta(days=7)).isocalendar()
    return {"client_id": DEMO_CLIENT, "kind": "weekly", "period": f"{year}-W{week:02d}"}


def _first_of_next_month(at: dt.datetime) -> dt.date:
    today = at.astimezone(DEMO_ZONE).date()
    return (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
