"""The stack the fault tests break: a real Temporal dev server (its SQLite file kept, so it can
be stopped and started again on the same port), the real worker as its own process (so it
can be SIGKILLed), the API in-process on the same settings, a migrated and seeded SQLite
database, and a fake SendGrid that counts what it accepted by message key."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.bootstrap import bootstrap
from core.db import make_engine, make_session_factory
from core.settings import Settings
from core.temporal import SEARCH_ATTRIBUTES, connect, converter_for
from schemas.enums import MessageStatus
from schemas.tables import Message
from tests.conftest import _bin
from tests.e2e.stack import free_port
from tests.sendgrid_fake import FakeSendGrid

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class WorkerProcess:
    """`python worker.py` with the stack's settings in its environment."""

    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started: int = 0

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 (our own worker)
                [sys.executable, "worker.py"], cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        self.started += 1

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, whatever it was doing."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class FaultStack:
    settings: Settings
    http: httpx.AsyncClient
    worker: WorkerProcess
    sendgrid: FakeSendGrid
    temporal_port: int
    temporal_db: Path
    env: WorkflowEnvironment | None = None
    sessions: Any = None
    notes: list[str] = field(default_factory=list)

    async def start_temporal(self) -> None:
        self.env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=_bin("temporal"),
            port=self.temporal_port,
            search_attributes=SEARCH_ATTRIBUTES,
            data_converter=converter_for(self.settings),
            dev_server_log_level="error",
            dev_server_extra_args=["--db-filename", str(self.temporal_db)],
        )

    async def stop_temporal(self) -> None:
        if self.env is not None:
            await self.env.shutdown()
            self.env = None

    async def sent_messages(self) -> list[Message]:
        async with self.sessions() as session:
            rows = await session.exec(select(Message).where(Message.status == MessageStatus.SENT))
            return list(rows.all())

    async def until(
        self, check: Callable[[], Awaitable[bool]], what: str, *, within: float = 90
    ) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            if await check():
                return
            await asyncio.sleep(0.25)
        raise AssertionError(f"never {what} within {within:.0f} s")

    async def case(self, case_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/cases/{case_id}")
        return response.json() if response.status_code == 200 else {}


@asynccontextmanager
async def fault_stack(
    tmp_path: Path, sendgrid: FakeSendGrid, **settings_fields: Any
) -> AsyncIterator[FaultStack]:
    temporal_port = free_port()
    settings = Settings(
        _env_file=None,
        environment="development",
        data_dir=tmp_path,
        temporal_address=f"127.0.0.1:{temporal_port}",
        temporal_task_queue=f"faults-{uuid.uuid4()}",
        link_secret="faults-link-secret-" + "x" * 32,
        sendgrid_api_key="SG.fake-key-for-the-fault-tests",
        sendgrid_host=sendgrid.url,
        public_base_url="http://127.0.0.1:8000",
        **settings_fields,
    )
    boot = await bootstrap(settings)  # the database, demo data, dev key, codec key
    worker_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CASEDESK_")},
        "CASEDESK_ENVIRONMENT": "development",
        "CASEDESK_DATA_DIR": str(tmp_path),
        "CASEDESK_TEMPORAL_ADDRESS": settings.temporal_address,
        "CASEDESK_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "CASEDESK_LINK_SECRET": "faults-link-secret-" + "x" * 32,
        "SENDGRID_API_KEY": "SG.fake-key-for-the-fault-tests",
        "CASEDESK_SENDGRID_HOST": sendgrid.url,
        "CASEDESK_PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        **{f"CASEDESK_{k.upper()}": str(v) for k, v in settings_fields.items()},
    }
    stack = FaultStack(
        settings=settings,
        http=httpx.AsyncClient(),
        worker=WorkerProcess(worker_env, tmp_path / "worker.log"),
        sendgrid=sendgrid,
        temporal_port=temporal_port,
        temporal_db=tmp_path / "temporal.db",
    )
    await stack.start_temporal()
    engine = make_engine(settings.resolved_database_url)
    stack.sessions = make_session_factory(engine)
    # The API's own client, as in production: it reconnects when the server comes back.
    app = create_app(settings, temporal=await connect(settings), engine=engine)
    try:
        async with app.router.lifespan_context(app):
            stack.http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://testserver",
                headers={"Authorization": f"Bearer {boot.api_key}"},
                timeout=30,
            )
            yield stack
    finally:
        stack.worker.stop()
        await stack.http.aclose()
        await engine.dispose()
        await stack.stop_temporal()


async def interruptions(stack: FaultStack, case_ids: list[str]) -> int:
    """Activities run again and workflow tasks timed out: a fault's marks in the histories."""
    assert stack.env is not None
    found = 0
    for case_id in case_ids:
        async for event in stack.env.client.get_workflow_handle(case_id).fetch_history_events():
            started = event.activity_task_started_event_attributes
            if event.HasField("activity_task_started_event_attributes") and started.attempt > 1:
                found += 1
            if event.HasField("workflow_task_timed_out_event_attributes"):
                found += 1
    return found


async def persist(
    http: httpx.AsyncClient, method: str, path: str, *, within: float = 90, **kw: Any
) -> httpx.Response:
    """What a careful client does while the stack is failing: send the request with an
    `Idempotency-Key` and send it again, with the same key, while it answers 503 or 504."""
    headers = {**kw.pop("headers", {}), "Idempotency-Key": str(uuid.uuid4())}
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await http.request(method, path, headers=headers, **kw)
        if response.status_code not in (503, 504):
            return response
        if asyncio.get_running_loop().time() > deadline:
            return response
        await asyncio.sleep(0.5)
