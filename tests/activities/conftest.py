"""Reference data for the activity tests and a fake SendGrid on a local port.

`sessions` (tests/conftest.py) runs every test here on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from core.db import SessionFactory
from schemas.enums import ContactKind
from schemas.tables import Client, ClientContact, Depot, Driver, Message, PickupPoint

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


# --- a fake SendGrid -----------------------------------------------------------------------


@dataclass
class FakeSendGrid:
    """Answers POST /v3/mail/send with the queued statuses (then 202) and records requests."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def respond_with(self, *statuses: int) -> None:
        self.statuses.extend(statuses)


def _handler(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            fake.requests.append(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
            )
            status = fake.statuses.pop(0) if fake.statuses else 202
            answer = (
                b"" if status == 202 else json.dumps({"errors": [{"message": "nope"}]}).encode()
            )
            self.send_response(status)
            if status == 202:
                self.send_header("X-Message-Id", f"sg-{len(fake.requests)}")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    fake = FakeSendGrid()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
