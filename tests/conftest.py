"""Shared fixtures: databases on SQLite and PostgreSQL, and the time-skipping Temporal server.

Every test that asks for `sessions` runs once per backend. PostgreSQL tests create a fresh
database on the local server (127.0.0.1:5432, trust auth; `CASEDESK_TEST_PG_URL` overrides)
and drop it afterwards; SQLite tests use a file in tmp_path.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlmodel import SQLModel
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import schemas.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from core.codec import EncryptionCodec, data_converter, format_keys
from core.db import SessionFactory, make_engine, make_session_factory
from core.temporal import SEARCH_ATTRIBUTES

# The payload codec's key in tests: every workflow test runs with encrypted payloads, as
# production does, and the committed histories recorded with it decode with it.
TEST_CODEC_KEYS = (("test-key-1", bytes(range(32))),)
TEST_CODEC_KEYS_SETTING = format_keys(TEST_CODEC_KEYS)
TEST_CONVERTER = data_converter(EncryptionCodec(TEST_CODEC_KEYS))

PG_ADMIN_URL = os.environ.get(
    "CASEDESK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _bin(name: str) -> str:
    """A binary from the virtual environment (never let the SDK download a server)."""
    venv_bin = Path(__file__).resolve().parent.parent / ".venv" / "bin" / name
    found = str(venv_bin) if venv_bin.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: run `make test`, which installs it")
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'casedesk.db'}"
        return
    name = f"casedesk_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            + f"/{name}"
        )
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    yield make_session_factory(engine)
    await engine.dispose()


async def register_search_attributes(client: Client) -> None:
    types = {
        "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "DATETIME": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
        "BOOL": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    }
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: types[key.indexed_value_type.name] for key in SEARCH_ATTRIBUTES
            },
        )
    )


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping test server per test (it starts in ~0.1 s). A shared one would
    let a previous test's unfinished workflow hold the clock: the server only skips time
    when no task is outstanding."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_bin("temporal-test-server"),
        data_converter=TEST_CONVERTER,
    )
    await register_search_attributes(env.client)
    async with env:
        yield env


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"
