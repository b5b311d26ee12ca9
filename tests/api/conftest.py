"""The API under test: the real app, a real worker on the time-skipping server, and seeded
reference data; every test runs on SQLite and PostgreSQL (`sessions` / `database_url`).

`api` sends real HTTP requests through ASGITransport with an API key per role:
`await api.get("/cases", role="viewer")`, `await api.post(path, json=..., role="ops")`.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.deps import now
from api.main import create_app
from core.db import SessionFactory, make_engine
from core.security import hash_api_key, new_api_key
from core.settings import Settings
from schemas.enums import ContactKind, Role
from schemas.tables import (
    ApiKey,
    Client,
    ClientContact,
    Depot,
    Driver,
    PickupPoint,
    TeamContact,
    TeamRole,
)
from tests.conftest import TEST_CODEC_KEYS_SETTING
from worker import build_worker

LINK_SECRET = "test-link-secret-that-is-long-enough-0123456789"
CLIENT_ID = "acme"
DEPOT_ID = "ldn-1"
OTHER_DEPOT_ID = "nyc-1"
DRIVER_ID = "drv-7"
OTHER_DRIVER_ID = "drv-9"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, task_queue: str) -> Settings:
    return Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path,
        database_url=database_url,
        link_secret=LINK_SECRET,
        codec_keys=TEST_CODEC_KEYS_SETTING,
        temporal_task_queue=task_queue,
        public_base_url="http://testserver",
    )


async def client_policy(sessions: SessionFactory, case_type: str, **fields: object) -> None:
    """The test client's policy override for one case type (as an admin would set it)."""
    async with sessions() as session:
        client = await session.get(Client, CLIENT_ID)
        assert client is not None
        client.policy_overrides = {**(client.policy_overrides or {}), case_type: fields}
        session.add(client)
        await session.commit()


NO_CHANGES = {"change_cutoff": "P2D"}
"""A failed-delivery policy whose change cut-off has passed as soon as a redelivery is booked
(2 days before a route day that starts tomorrow at the latest): a second choice is refused,
whatever the time of day the test runs at."""


@pytest.fixture
async def reference_data(sessions: SessionFactory) -> None:
    """A client with contacts (including its claims address), two depots with dispatchers,
    drivers, pickup points and our claims desk."""
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
                    kind=ContactKind.ACCOUNT_MANAGER,
                    name="Adam Manager",
                    email="adam@acme.example",
                ),
                ClientContact(
                    client_id=CLIENT_ID,
                    kind=ContactKind.CLAIMS,
                    name="Carrier Claims",
                    email="claims@carrier.example",
                ),
                TeamContact(
                    role=TeamRole.CLAIMS_DESK, name="Cleo Claims", email="claims-desk@example.com"
                ),
                Driver(id=DRIVER_ID, name="Dee Driver", email="dee@example.com", depot_id=DEPOT_ID),
                Driver(
                    id=OTHER_DRIVER_ID,
                    name="Nia Driver",
                    email="nia@example.com",
                    depot_id=OTHER_DEPOT_ID,
                ),
                PickupPoint(
                    id="pp-corner", depot_id=DEPOT_ID, name="Corner Shop", address="12 High St"
                ),
                PickupPoint(
                    id="pp-station", depot_id=DEPOT_ID, name="Station Lockers", address="Station Rd"
                ),
                PickupPoint(
                    id="pp-nyc", depot_id=OTHER_DEPOT_ID, name="Northern Kiosk", address="3 Mill Rd"
                ),
            ]
        )
        await session.commit()


@pytest.fixture
async def keys(sessions: SessionFactory) -> dict[str, str]:
    """Plain API keys by role, plus one that is revoked."""
    plain: dict[str, str] = {}
    async with sessions() as session:
        for name, role in [(r.value, r) for r in Role] + [("revoked", Role.ADMIN)]:
            secret = new_api_key()
            plain[name] = secret
            session.add(
                ApiKey(
                    name=f"{name}-key",
                    role=role,
                    prefix=secret[:8],
                    key_hash=hash_api_key(secret),
                    revoked_at=datetime.now(UTC) if name == "revoked" else None,
                )
            )
        await session.commit()
    return plain


@pytest.fixture
async def engine(database_url: str, sessions: SessionFactory) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def app(
    settings: Settings,
    time_env: WorkflowEnvironment,
    engine: AsyncEngine,
    reference_data: None,
    keys: dict[str, str],
) -> FastAPI:
    app = create_app(settings, temporal=time_env.client, engine=engine)

    async def test_server_clock() -> datetime:
        return await time_env.get_current_time()

    # The API's "now" follows the time-skipping server, as the workflows' does.
    app.dependency_overrides[now] = test_server_clock
    return app


@pytest.fixture
async def worker(
    time_env: WorkflowEnvironment, settings: Settings, sessions: SessionFactory
) -> AsyncIterator[Worker]:
    async with build_worker(time_env.client, settings, sessions) as running:
        yield running


@dataclass
class Api:
    """Real requests with a role's key; `raw` sends exactly what it is given."""

    raw: httpx.AsyncClient
    keys: dict[str, str]

    def _auth(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"} if role else {}

    async def get(self, path: str, *, role: str | None = "viewer", **kw: Any) -> httpx.Response:
        headers = {**self._auth(role), **kw.pop("headers", {})}
        return await self.raw.get(path, headers=headers, **kw)

    async def post(self, path: str, *, role: str | None = "ops", **kw: Any) -> httpx.Response:
        headers = {**self._auth(role), **kw.pop("headers", {})}
        return await self.raw.post(path, headers=headers, **kw)

    async def delete(self, path: str, *, role: str | None = "admin") -> httpx.Response:
        return await self.raw.delete(path, headers=self._auth(role))

    async def poll(
        self, path: str, check: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        """GET `path` until it answers 200 with a body that passes `check`: the workflows
        write what the API reads after the request that caused it has been answered."""
        body: dict[str, Any] = {}
        for _ in range(300):
            response = await self.get(path)
            body = response.json()
            if response.status_code == 200 and check(body):
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"{path} never {what}: {body}")

    async def open_case(self, **fields: Any) -> httpx.Response:
        return await self.post("/cases/failed-deliveries", json=failed_delivery(**fields))

    async def wait_for(
        self, case_id: str, *statuses: str, subject_contains: str = ""
    ) -> dict[str, Any]:
        """Poll the detail until the case reaches one of `statuses` (any when none given):
        the time-skipping server applies changes after an update returns."""
        body: dict[str, Any] = {}
        for _ in range(300):
            response = await self.get(f"/cases/{case_id}")
            body = response.json()
            reached = response.status_code == 200 and (not statuses or body["status"] in statuses)
            if reached and subject_contains in body["subject"]:
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"case {case_id} never reached {statuses}: {body}")

    async def wait_for_list(self, params: dict[str, Any], case_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for _ in range(300):
            body = (await self.get("/cases", params=params)).json()
            if case_id in [item["case_id"] for item in body["items"]]:
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"{case_id} never listed for {params}: {body}")

    async def customer_link(self, case_id: str, attempt: int = 1) -> str:
        """The /r/ link from the stored customer email's text body (only ops see it)."""
        for _ in range(300):
            page = (await self.get("/messages", params={"case_id": case_id}, role="ops")).json()
            for message in page["items"]:
                if message["key"] == f"{case_id}/a{attempt}/customer-notice":
                    match = re.search(
                        r"http://testserver(/r/[A-Za-z0-9_.\-]+)", message["text_body"]
                    )
                    assert match, message["text_body"]
                    return match.group(1)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no customer notice stored for {case_id}")


@pytest.fixture
async def raw_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def api(raw_client: httpx.AsyncClient, keys: dict[str, str], worker: Worker) -> Api:
    return Api(raw=raw_client, keys=keys)


def shipment_id() -> str:
    return f"S-{uuid.uuid4().hex[:10]}"


def failed_delivery(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "shipment_id": shipment_id(),
        "client_id": CLIENT_ID,
        "customer": {"name": "Ada Customer", "email": "ada@example.com", "phone": "+44 20 1234"},
        "address": {
            "line1": "1 Main St",
            "city": "London",
            "postal_code": "E1 6AN",
            "country": "GB",
        },
        "attempt_number": 1,
        "reason": "not_home",
        "driver_id": DRIVER_ID,
        "attempted_at": datetime.now(UTC).isoformat(),
        "note": "No answer at the door",
    }
    body.update(fields)
    return body


async def run_id(env: WorkflowEnvironment, workflow_id: str) -> str:
    """The workflow's current run id."""
    raw = await env.client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )
    return raw.workflow_execution_info.execution.run_id


def assert_problem(response: httpx.Response, status: int, *fields: str) -> dict[str, Any]:
    """A problem+json response with `status`, naming `fields` (422)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"] and body["detail"]
    assert body["instance"] == response.request.url.path
    for field in fields:
        assert field in [e["field"] for e in body["errors"]], body
        assert field in body["detail"]
    return body


@pytest.fixture
async def blackhole() -> AsyncIterator[str]:
    """A Temporal address that accepts connections and never answers (a hung frontend, a
    firewall dropping packets): the SDK's own connect waits 30 s there."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}"
    for writer in held:
        writer.close()
    server.close()
