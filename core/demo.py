"""`make demo`: a realistic day of cases on a running stack (`make run`), opened through the
REST API with the dev key exactly as the routing system, the client and ops would: failed
deliveries, damage claims, driver onboardings and unpaid invoices, some just opened, some with
their timers part-way (claims and invoices dated earlier, so deadlines are near and the dunning
ladder has started), some escalated and unassigned (the stuck radar lists them), some booked
and some closed. A failed delivery's reminders run from when casedesk learned of the attempt,
so those wait live (24 h, 48 h); a claim's run from the delivery event, so a claim dated 65
hours ago is 7 hours from its filing deadline, and one dated four days ago is late and
escalated at once. Every name and address is fictional and in the demo depot's area (London
N1).

Each run tags its ids with the time (`D1412…`), so running it again adds another day rather
than colliding with the first. It talks only HTTP: it never imports the workflows."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from core.bootstrap import DEMO_CLIENT_ID, DEMO_DEPOT_ID, DEV_KEY_FILENAME
from core.settings import Settings

DRIVERS = ("driver-001", "driver-002", "driver-003")
PEOPLE = (
    ("Priya Patel", "12 Sample Street", "N1 0AB"),
    ("Tom Okafor", "4 Example Mews", "N1 0AD"),
    ("Grace Liu", "27 Placeholder Road", "N1 0AE"),
    ("Marek Nowak", "9 Demo Terrace", "N1 0AF"),
    ("Aisha Rahman", "31 Fictional Lane", "N1 0AG"),
    ("Ben Carter", "6 Sample Street", "N1 0AB"),
    ("Chloe Martin", "18 Example Mews", "N1 0AD"),
)


class DemoError(RuntimeError):
    """The stack refused a step: the message says which and what it answered."""


@dataclass
class Day:
    http: httpx.AsyncClient
    tag: str
    now: datetime
    opened: dict[str, list[str]] = field(default_factory=dict)

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.http.request(method, path, json=body)
        if response.status_code >= 300:
            raise DemoError(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json() if response.content else None

    async def open(self, kind: str, path: str, body: dict[str, Any]) -> str:
        case_id: str = (await self.call("POST", path, body))["case_id"]
        self.opened.setdefault(kind, []).append(case_id)
        return case_id

    async def when(self, case_id: str, *statuses: str, seconds: float = 30) -> dict[str, Any]:
        """The case once it reached one of `statuses` (its workflow works asynchronously)."""
        case: dict[str, Any] = {}
        for _ in range(int(seconds / 0.2)):
            case = await self.call("GET", f"/cases/{case_id}")
            if case["status"] in statuses:
                return case
            await asyncio.sleep(0.2)
        raise DemoError(f"{case_id} stayed {case.get('status')}, expected {' or '.join(statuses)}")

    def ago(self, **delta: float) -> str:
        return (self.now - timedelta(**delta)).isoformat()

    def day(self, days: int) -> str:
        return (self.now.date() + timedelta(days=days)).isoformat()


# --- the cases -----------------------------------------------------------------------------


def _customer(n: int) -> tuple[dict[str, str], dict[str, str]]:
    name, line1, postcode = PEOPLE[n % len(PEOPLE)]
    email = name.lower().replace(" ", ".") + "@example.com"
    address = {"line1": line1, "city": "London", "postal_code": postcode, "country": "GB"}
    return {"name": name, "email": email}, address


async def failed_deliveries(day: Day) -> None:
    async def attempt(n: int, hours_ago: float, reason: str = "not_home", **extra: Any) -> str:
        customer, address = _customer(n)
        body = {
            "shipment_id": f"{day.tag}-{n:02d}",
            "client_id": DEMO_CLIENT_ID,
            "customer": customer,
            "address": address,
            "attempt_number": 1,
            "reason": reason,
            "driver_id": DRIVERS[n % len(DRIVERS)],
            "attempted_at": day.ago(hours=hours_ago),
            **extra,
        }
        return await day.open("failed deliveries", "/cases/failed-deliveries", body)

    # Just missed this afternoon: the customer's email is out, the reminder is 24 h away.
    await attempt(1, 0.5, note="Card left; side gate locked")
    await attempt(2, 2, reason="access_problem", note="No answer on the entry phone")
    await attempt(3, 8)
    # The client asked for a VIP's parcel to be handled by a person: escalated, nobody
    # assigned yet (the stuck radar lists it).
    vip = await attempt(4, 5)
    await day.when(vip, "waiting_on_customer")
    await day.call("POST", f"/cases/{vip}/escalate", {"reason": "VIP customer of the client"})
    # Escalated, and then taken by someone at the depot.
    taken = await attempt(5, 6, note="Customer works nights")
    await day.when(taken, "waiting_on_customer")
    await day.call("POST", f"/cases/{taken}/escalate", {"reason": "Third parcel missed this month"})
    await day.call("POST", f"/cases/{taken}/assign", {"assignee": "dana@depot-north"})
    await day.call(
        "POST", f"/cases/{taken}/notes", {"text": "Rang the customer: prefers an evening slot."}
    )
    # Booked on the customer's behalf (a phone call), waiting for tomorrow's round.
    booked = await attempt(6, 3)
    await day.when(booked, "waiting_on_customer")
    await day.call(
        "POST",
        f"/cases/{booked}/redelivery",
        {"option": "pickup_point", "pickup_point_id": "pickup-north-corner-shop"},
    )
    # Redelivered this morning: closed as delivered.
    delivered = await attempt(7, 27)
    await day.when(delivered, "waiting_on_customer")
    window = {"option": "redelivery_window", "date": day.day(1), "window": "evening"}
    await day.call(
        "POST", f"/cases/{delivered}/redelivery", window | {"instructions": "Ring twice"}
    )
    await day.when(delivered, "redelivery_scheduled")
    await day.call(
        "POST",
        f"/cases/{delivered}/delivery-outcome",
        {"outcome": "delivered", "attempted_at": day.ago(minutes=20), "attempt_number": 1},
    )
    # Refused at the door: returned to the sender at once.
    await attempt(8, 4, reason="refused")


async def damage_claims(day: Day) -> None:
    async def claim(n: int, hours_ago: float, claim_type: str, value: str, text: str) -> str:
        customer, _ = _customer(n + 3)
        body = {
            "shipment_id": f"{day.tag}-C{n:02d}",
            "client_id": DEMO_CLIENT_ID,
            "claim_type": claim_type,
            "reported_by": "customer",
            "delivery_event_at": day.ago(hours=hours_ago),
            "declared_value": value,
            "currency": "GBP",
            "description": text,
            "customer": customer,
            "driver_id": DRIVERS[n % len(DRIVERS)],
        }
        return await day.open("damage claims", "/cases/damage-claims", body)

    await claim(1, 5, "damaged", "89.99", "Box crushed on one corner; the kettle inside is dented.")
    # Reported 65 hours after the delivery: 7 hours left on the 72-hour filing deadline.
    await claim(2, 65, "damaged", "240.00", "Screen of the monitor cracked; box was wet.")
    # Reported four days after it: late, escalated to the claims desk at once.
    await claim(3, 96, "non_delivery", "64.00", "Marked delivered on Monday; never arrived.")
    lost = await claim(4, 30, "lost", "35.50", "Tracking says delivered; nothing on the doorstep.")
    await day.when(lost, "gathering_evidence")
    await day.call(
        "POST", f"/cases/{lost}/cancel", {"reason": "Parcel found at the neighbour's (no claim)."}
    )


async def driver_onboardings(day: Day) -> None:
    for n, (name, vehicle, days) in enumerate(
        (("Olu Newdriver", "van", 14), ("Sofia Demo", "cargo_bike", 7)), start=1
    ):
        body = {
            "driver_id": f"drv-{day.tag.lower()}-{n}",
            "name": name,
            "email": name.lower().replace(" ", ".") + "@example.com",
            "depot_id": DEMO_DEPOT_ID,
            "vehicle_type": vehicle,
            "planned_start_date": day.day(days),
        }
        await day.open("driver onboardings", "/cases/driver-onboardings", body)


async def unpaid_invoices(day: Day) -> None:
    async def invoice(n: int, issued_days_ago: int, amount: str) -> str:
        body = {
            "invoice_id": f"INV-{day.tag}-{n}",
            "client_id": DEMO_CLIENT_ID,
            "amount": amount,
            "currency": "GBP",
            "issued_on": day.day(-issued_days_ago),
            "reference": f"PO-{4400 + n}",
        }
        return await day.open("unpaid invoices", "/cases/unpaid-invoices", body)

    await invoice(1, 3, "1840.00")  # not due for four weeks
    await invoice(2, 38, "612.40")  # eight days overdue: the dunning ladder has started
    await invoice(3, 52, "2975.15")  # three weeks overdue
    paid = await invoice(4, 31, "430.00")
    await day.call(
        "POST",
        f"/cases/{paid}/payments",
        {"amount": "430.00", "paid_on": day.day(0), "reference": f"BACS-{day.tag}"},
    )


STEPS: tuple[Callable[[Day], Awaitable[None]], ...] = (
    failed_deliveries,
    damage_claims,
    driver_onboardings,
    unpaid_invoices,
)


async def run_demo(base_url: str, key: str, *, now: datetime | None = None) -> dict[str, list[str]]:
    """Open the day's cases; returns their ids by kind."""
    now = now or datetime.now(UTC)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
        day = Day(http=http, tag=f"D{now:%H%M%S}", now=now)
        try:
            await day.call("GET", "/clients/" + DEMO_CLIENT_ID)
        except httpx.HTTPError as err:
            raise DemoError(
                f"no casedesk API at {base_url} ({err}); start it with make run"
            ) from err
        for step in STEPS:
            await step(day)
        return day.opened


def main(argv: list[str] | None = None) -> int:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=settings.resolved_public_base_url)
    parser.add_argument("--key-file", type=Path, default=settings.data_dir / DEV_KEY_FILENAME)
    args = parser.parse_args(argv)
    if not args.key_file.exists():
        print(f"no dev key at {args.key_file}: start the stack first (make run)", file=sys.stderr)
        return 1
    key = args.key_file.read_text().strip()
    try:
        opened = asyncio.run(run_demo(args.url, key))
    except DemoError as err:
        print(f"make demo stopped: {err}", file=sys.stderr)
        return 1
    for kind, ids in opened.items():
        print(f"{len(ids):3d} {kind}: {', '.join(ids)}")
    print(f"\nconsole: {args.url}/console   stuck cases: {args.url}/console/stuck")
    print(f"today: {date.today().isoformat()}; timers run on: reminders and escalations fire live")
    return 0


if __name__ == "__main__":
    sys.exit(main())
