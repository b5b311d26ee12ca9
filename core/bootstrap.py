"""First-run setup for a database: migrations, demo data and the dev admin API key.

`make run` calls `bootstrap` before it starts the worker and the API. On a fresh development
database it seeds one demo client (on London time, with a rate agreement), a depot with its
pickup points and a few drivers (every contact is fictional: `@example.com` addresses, Ofcom
drama phone numbers), so a newcomer can open a case in the first minute. In development it
also creates the link-signing secret and the payload codec's key under the data directory,
so the worker and the API do not race to create them. Outside development it only migrates.

`python -m core.bootstrap` does the same and prints the dev admin key on stdout.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.db import make_engine, make_session_factory
from core.migrate import upgrade_database
from core.security import hash_api_key, new_api_key
from core.settings import Settings
from schemas.enums import BillingCycle, ContactKind, DriverStatus, Role
from schemas.tables import (
    ApiKey,
    Client,
    ClientContact,
    Depot,
    Driver,
    PickupPoint,
    RateAgreementVersion,
    TeamContact,
    TeamRole,
)

DEV_KEY_FILENAME = "dev-api-key"
DEV_KEY_NAME = "dev admin (make run)"

DEMO_CLIENT_ID = "demo-shop"
DEMO_DEPOT_ID = "depot-north"


@dataclass(frozen=True)
class BootstrapResult:
    database_url: str
    seeded: bool
    """True when this run inserted the demo data (a fresh development database)."""
    api_key: str | None
    """The dev admin key (development only)."""
    api_key_path: Path | None
    api_key_created: bool


def dev_key_path(settings: Settings) -> Path:
    return settings.data_dir / DEV_KEY_FILENAME


DemoRow = Client | ClientContact | RateAgreementVersion | Depot | PickupPoint | Driver | TeamContact


def demo_data() -> list[DemoRow]:
    """The demo client (with its rate agreement), depot, pickup points, drivers and our claims
    desk (fictional people)."""
    contacts = {
        ContactKind.SHIPMENT_NOTIFICATIONS: ("Demo Shop Notifications", "shipping"),
        ContactKind.BILLING: ("Demo Shop Accounts", "accounts"),
        ContactKind.ACCOUNT_MANAGER: ("Avery Example (account manager)", "avery.example"),
        ContactKind.CLAIMS: ("Demo Insurance Claims Desk", "claims"),
        ContactKind.REPORTING: ("Demo Shop Operations", "operations"),
    }
    rows: list[DemoRow] = [
        Client(
            id=DEMO_CLIENT_ID,
            name="Demo Shop Ltd",
            timezone="Europe/London",
            # Both reports at 07:00 London time to its reporting contact (the account
            # manager copied): `GET /clients/demo-shop/reports`.
            reporting={"daily": True, "weekly": True, "hour": 7, "contacts": []},
        ),
        # Its rates since the start of the demo year: `GET /clients/demo-shop/rate-agreement`.
        RateAgreementVersion(
            client_id=DEMO_CLIENT_ID,
            effective_from=date(2026, 1, 1),
            currency="GBP",
            base_rate_per_stop=Decimal("3.50"),
            zone_rates={"A": "0.00", "B": "1.25", "C": "2.10"},
            residential_surcharge=Decimal("0.75"),
            failed_attempt_fee=Decimal("4.00"),
            minimum_charge_per_invoice=Decimal("25.00"),
            tax_rate=Decimal("0.20"),
            billing_cycle=BillingCycle.MONTHLY,
            payment_terms_days=30,
            created_by="demo data",
        ),
        *(
            ClientContact(
                client_id=DEMO_CLIENT_ID,
                kind=kind,
                name=name,
                email=f"{local}.demo-shop@example.com",
            )
            for kind, (name, local) in contacts.items()
        ),
        Depot(
            id=DEMO_DEPOT_ID,
            name="North Depot (demo)",
            address="1 Example Yard, London N1 0AA",
            timezone="Europe/London",
            dispatcher_name="Dana Dispatcher",
            dispatcher_email="dispatch.north@example.com",
            dispatcher_phone="+44 20 7946 0001",
        ),
        PickupPoint(
            id="pickup-north-corner-shop",
            depot_id=DEMO_DEPOT_ID,
            name="Corner Shop (demo pickup point)",
            address="12 Sample Street, London N1 0AB",
            opening_hours="Mon-Sat 08:00-20:00",
        ),
        PickupPoint(
            id="pickup-north-library-lockers",
            depot_id=DEMO_DEPOT_ID,
            name="Library Lockers (demo pickup point)",
            address="3 Placeholder Road, London N1 0AC",
            opening_hours="Every day 07:00-22:00",
        ),
    ]
    drivers = [
        ("driver-001", "Alex Example", "alex.driver", "+44 7700 900001"),
        ("driver-002", "Sam Sample", "sam.driver", "+44 7700 900002"),
        ("driver-003", "Jo Placeholder", "jo.driver", "+44 7700 900003"),
    ]
    rows += [
        Driver(
            id=driver_id,
            name=name,
            email=f"{local}@example.com",
            phone=phone,
            depot_id=DEMO_DEPOT_ID,
            status=DriverStatus.ACTIVE,
        )
        for driver_id, name, local, phone in drivers
    ]
    rows += [
        TeamContact(
            role=TeamRole.CLAIMS_DESK,
            name="Casedesk Claims Desk (demo)",
            email="claims-desk@example.com",
            phone="+44 20 7946 0002",
        ),
        TeamContact(
            role=TeamRole.ONBOARDING_COORDINATOR,
            name="Casedesk Onboarding (demo)",
            email="onboarding@example.com",
            phone="+44 20 7946 0003",
        ),
    ]
    return rows


async def seed_demo_data(session: AsyncSession) -> bool:
    """Insert the demo data if there is no client yet; True if it did."""
    clients = (await session.exec(select(func.count()).select_from(Client))).one()
    if clients:
        return False
    # Parents first: PostgreSQL checks the foreign keys row by row.
    for row in demo_data():
        session.add(row)
        await session.flush()
    await session.commit()
    return True


async def ensure_dev_api_key(session: AsyncSession, path: Path) -> tuple[str, bool]:
    """The dev admin key stored at `path`, created (row + file) if missing or unknown.

    Returns the key and whether it was created now."""
    key = await asyncio.to_thread(_read_secret, path)
    if key:
        row = (
            await session.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key)))
        ).first()
        if row is not None and row.revoked_at is None:
            return key, False
    key = new_api_key()
    session.add(
        ApiKey(
            name=DEV_KEY_NAME,
            role=Role.ADMIN,
            prefix=key[:8],
            key_hash=hash_api_key(key),
        )
    )
    await session.commit()
    await asyncio.to_thread(_write_secret, path, key)
    return key, True


def _read_secret(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    path.chmod(0o600)  # the file may have existed with wider permissions


async def bootstrap(settings: Settings) -> BootstrapResult:
    """Migrate the database; in development also seed demo data and ensure the dev key."""
    await asyncio.to_thread(settings.data_dir.mkdir, parents=True, exist_ok=True)
    url = settings.resolved_database_url
    await asyncio.to_thread(upgrade_database, url)
    if settings.environment != "development":
        return BootstrapResult(
            url, seeded=False, api_key=None, api_key_path=None, api_key_created=False
        )
    # Created here, before the worker and the API start, rather than by whichever comes first.
    await asyncio.to_thread(lambda: settings.resolved_link_secret)
    await asyncio.to_thread(lambda: settings.resolved_codec_keys)

    engine = make_engine(url)
    try:
        sessions = make_session_factory(engine)
        async with sessions() as session:
            seeded = await seed_demo_data(session)
        async with sessions() as session:
            path = dev_key_path(settings)
            key, created = await ensure_dev_api_key(session, path)
    finally:
        await engine.dispose()
    return BootstrapResult(
        url, seeded=seeded, api_key=key, api_key_path=path, api_key_created=created
    )


def main() -> int:
    settings = Settings()
    result = asyncio.run(bootstrap(settings))
    if result.api_key is None:
        print(f"database migrated ({settings.environment}: no dev key)", file=sys.stderr)
        return 0
    if result.seeded:
        print("seeded the demo client, depot, pickup points and drivers", file=sys.stderr)
    state = "created" if result.api_key_created else "stored"
    print(f"dev admin API key ({state} in {result.api_key_path}):", file=sys.stderr)
    print(result.api_key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
