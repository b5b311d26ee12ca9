"""The whole API against its own OpenAPI document (Schemathesis): every operation, with
generated valid and invalid requests and an ops key, answers without a 5xx and with a body
its schema allows.

The API runs for real (uvicorn on a free local port, a worker on the time-skipping server,
SQLite) in a thread of its own, so that Schemathesis calls it over HTTP as any client would.
The example count is bounded to keep this to about a minute of the suite."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Ok
from sqlmodel import SQLModel
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.db import make_engine, make_session_factory
from core.security import hash_api_key, new_api_key
from core.settings import Settings
from schemas.enums import Role
from schemas.tables import ApiKey, Client, Depot, Driver, PickupPoint
from tests.conftest import TEST_CONVERTER, _bin, register_search_attributes
from worker import build_worker

EXAMPLES_PER_OPERATION = 12


@dataclass
class LiveApi:
    base_url: str
    ops_key: str


async def _seed(settings: Settings) -> str:
    """Reference data the generated requests may name, and an ops key."""
    engine = make_engine(settings.resolved_database_url)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    key = new_api_key()
    async with make_session_factory(engine)() as session:
        session.add(Client(id="acme", name="Acme Retail"))
        session.add(
            Depot(
                id="ldn-1",
                name="London East",
                address="1 Depot Way",
                dispatcher_name="Dana Dispatch",
                dispatcher_email="dispatch@example.com",
            )
        )
        await session.flush()
        session.add_all(
            [
                Driver(id="drv-7", name="Dee Driver", email="dee@example.com", depot_id="ldn-1"),
                PickupPoint(id="pp-1", depot_id="ldn-1", name="Corner Shop", address="1 High St"),
                ApiKey(
                    name="schemathesis",
                    role=Role.OPS,
                    prefix=key[:8],
                    key_hash=hash_api_key(key),
                    created_at=datetime.now(UTC),
                ),
            ]
        )
        await session.commit()
    await engine.dispose()
    return key


async def _serve(
    settings: Settings, sock: socket.socket, ready: threading.Event, live: dict[str, object]
) -> None:
    live["key"] = await _seed(settings)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_bin("temporal-test-server"),
        data_converter=TEST_CONVERTER,
    )
    async with env:
        await register_search_attributes(env.client)
        engine = make_engine(settings.resolved_database_url)
        app = create_app(settings, temporal=env.client, engine=engine)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        live["server"] = server
        try:
            async with build_worker(env.client, settings, make_session_factory(engine)):
                serving = asyncio.create_task(server.serve(sockets=[sock]))
                while not server.started and not serving.done():
                    await asyncio.sleep(0.05)
                ready.set()
                await serving
        finally:
            await engine.dispose()


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'casedesk.db'}",
        link_secret="schemathesis-link-secret-that-is-long-enough-0123",
        temporal_task_queue="schemathesis",
        public_base_url="http://testserver",
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ready, live, failed = threading.Event(), dict[str, object](), list[BaseException]()

    def run() -> None:
        try:
            asyncio.run(_serve(settings, sock, ready, live))
        except BaseException as err:  # reported to the test below
            failed.append(err)
            ready.set()

    thread = threading.Thread(target=run, name="live-api", daemon=True)
    thread.start()
    assert ready.wait(60), "the live API did not start"
    if failed:
        raise failed[0]
    yield LiveApi(base_url=f"http://127.0.0.1:{port}", ops_key=str(live["key"]))
    server = live.get("server")
    if isinstance(server, uvicorn.Server):
        server.should_exit = True
    thread.join(30)
    sock.close()


@pytest.fixture(scope="module")
def api_schema(live_api: LiveApi) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_api.base_url}/openapi.json")


def test_no_request_gets_a_5xx_or_an_answer_its_schema_forbids(
    live_api: LiveApi, api_schema: schemathesis.BaseSchema
) -> None:
    """Each operation with valid and with invalid requests. (Schemathesis' own pytest
    `parametrize` needs a pytest internal that pytest 9 no longer has: the operations are
    walked here, one Hypothesis run each.)"""
    headers = {"Authorization": f"Bearer {live_api.ops_key}"}
    failures: list[str] = []
    sent = [0]
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # every operation's schema is valid
        operations.append(result.ok())
    assert len(operations) > 40  # the whole API, not a part of it
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def requests_to(case: schemathesis.Case) -> None:
                sent[0] += 1
                case.call_and_validate(
                    base_url=live_api.base_url,
                    headers=headers,
                    checks=[not_a_server_error, response_schema_conformance],
                    timeout=35,
                )

            try:
                requests_to()
            except Unsatisfiable:  # nothing in the operation can be sent wrong (no inputs)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as failure:  # every operation is tried; all failures reported
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    assert not failures, "\n\n".join(failures)
    assert sent[0] > 10 * len(operations), sent
