"""Reference data for the activity tests and a fake SendGrid on a local port.

`sessions` (tests/conftest.py) runs every test here on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from core.db import SessionFactory
from schemas.enums import ContactKind
from schemas.tables import Client, ClientContact, Depot, Driver, Message, PickupPoint
from tests.sendgrid_fake import FakeSendGrid, running_fake_sendgrid

CLIENT_ID = "acme"
DEPOT_ID = "ldn-1"
OTHER_DEPOT_ID = "nyc-1"
DRIVER_ID = "drv-7"


@pytest.fixture
async def reference_data(sessions: SessionFactory) -> AsyncIterator[SessionFactory]:
    """A client with contacts, two depots (London, New York), a driver, pickup points."""
    async with sessions() as session:
        session.add(Client(id=CLIENT_ID, name="Acme Retail"))
        session.add_all(
            [
                Depot(
                    id=DEPOT_ID,
                    name="London East",
                    address="1 Depot Way, London",
                    timezone="Europe/London",
                    dispatcher_name="Dana Dispatch",
                    dispatcher_email="dispatch.ldn@example.com",
                ),
                Depot(
                    id=OTHER_DEPOT_ID,
                    name="New York",
                    address="2 Depot Way, New York",
                    timezone="America/New_York",
                    dispatcher_name="Max Dispatch",
                    dispatcher_email="dispatch.nyc@example.com",
                ),
            ]
        )
        await session.flush()
        session.add_all(
            [
                ClientContact(
                    client_id=CLIENT_ID,
                    kind=ContactKind.SHIPMENT_NOTIFICATIONS,
                    name="Zoe Notifications",
                    email="zoe@acme.example",
                ),
                ClientContact(
                    client_id=CLIENT_ID,
                    kind=ContactKind.SHIPMENT_NOTIFICATIONS,
                    name="Adam Notifications",
                    email="adam@acme.example",
                ),
                Driver(id=DRIVER_ID, name="Dee Driver", email="dee@example.com", depot_id=DEPOT_ID),
                PickupPoint(
                    id="pp-corner",
                    depot_id=DEPOT_ID,
                    name="Corner Shop",
                    address="12 High St",
                ),
                PickupPoint(
                    id="pp-nyc", depot_id=OTHER_DEPOT_ID, name="Northern Kiosk", address="3 Mill Rd"
                ),
            ]
        )
        await session.commit()
    yield sessions


@pytest.fixture
def activity_env() -> ActivityEnvironment:
    return ActivityEnvironment()


async def outbox(sessions: SessionFactory) -> list[Message]:
    async with sessions() as session:
        return list((await session.exec(select(Message))).all())


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    with running_fake_sendgrid() as fake:
        yield fake
