"""Dependencies every route shares, as `Annotated` aliases.

The engine, session factory, Temporal client and settings live on `app.state` (built by the
lifespan or injected into `create_app`), so these read them from the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.errors import (
    CALL_LIMIT,
    Problem,
    problem_from_temporal,
    temporal_call,
    temporal_unreachable,
)
from api.errors import unknown_case as unknown_case_problem
from api.ratelimit import FailureLimiter, client_address
from core.db import SessionFactory
from core.documents import DocumentStore
from core.logs import CASE_ID
from core.security import hash_api_key
from core.settings import Settings
from schemas.enums import Role
from schemas.tables import ApiKey, Case

# The dependencies below do no I/O and are `async def` for that reason: FastAPI runs a plain
# `def` dependency in its thread pool, one thread hop per dependency per request (measured in
# a burst of 500 openings: 14% of the API's event loop).


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessions: SessionFactory = request.app.state.sessions
    async with sessions() as session:
        yield session


async def get_temporal(request: Request) -> Client:
    client: Client | None = request.app.state.temporal
    if client is None:  # neither injected nor built yet: the lifespan has not run
        raise temporal_unreachable()
    return client


async def get_documents(request: Request) -> DocumentStore:
    """The document store (claim evidence and packages); blocking: call it in a thread."""
    store: DocumentStore = request.app.state.documents
    return store


async def now() -> datetime:
    """The API's clock (tests override it with the time-skipping server's clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Timeouts:
    """How long the API waits on a case: a query answers fast when a worker is up."""

    query: timedelta
    update: timedelta
    health: timedelta
    run: timedelta = timedelta(seconds=30)
    """How long `POST /invoicing-runs` waits for the run's answer before a 202."""


async def get_timeouts(request: Request) -> Timeouts:
    return request.app.state.timeouts


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
Now = Annotated[datetime, Depends(now)]
TimeoutsDep = Annotated[Timeouts, Depends(get_timeouts)]
DocumentsDep = Annotated[DocumentStore, Depends(get_documents)]


# --- auth ---------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cd_…`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
"""The `Authorization: Bearer` credentials, if any were sent."""


def get_auth_limiter(request: Request) -> FailureLimiter:
    limiter: FailureLimiter = request.app.state.auth_limiter
    return limiter


def too_many_failures(retry_after: int) -> Problem:
    return Problem(
        429,
        f"too many wrong keys from this address; try again in {retry_after} s",
        slug="too-many-requests",
        headers={"Retry-After": str(retry_after)},
    )


async def current_key(
    request: Request,
    session: SessionDep,
    credentials: BearerCredentials,
) -> ApiKey:
    """The request's key; 401 for none, an unknown or a revoked one (a failure counted
    against the client's address), 429 while the address has failed too often."""
    if credentials is None or not credentials.credentials:
        raise Problem(
            401, "an API key is required: Authorization: Bearer <key>", headers=_CHALLENGE
        )
    limiter = get_auth_limiter(request)
    address = client_address(request.client.host if request.client else None)
    wait = limiter.retry_after(address)
    if wait is not None:
        raise too_many_failures(wait)
    statement = select(ApiKey).where(ApiKey.key_hash == hash_api_key(credentials.credentials))
    key = (await session.exec(statement)).first()
    if key is None or key.revoked_at is not None:
        limiter.failed(address)
        raise Problem(401, "unknown or revoked API key", headers=_CHALLENGE)
    return key


CurrentKey = Annotated[ApiKey, Depends(current_key)]


def require(role: Role) -> Callable[[ApiKey], Awaitable[ApiKey]]:
    """A dependency that lets through keys whose role is at least `role`."""

    async def dependency(key: CurrentKey) -> ApiKey:
        if not key.role.allows(role):
            raise Problem(
                403, f"this needs the {role.value} role; the key '{key.name}' is {key.role.value}"
            )
        return key

    return dependency


ViewerKey = Annotated[ApiKey, Depends(require(Role.VIEWER))]
OpsKey = Annotated[ApiKey, Depends(require(Role.OPS))]
AdminKey = Annotated[ApiKey, Depends(require(Role.ADMIN))]


# --- pagination ---------------------------------------------------------------------------


MAX_LIMIT = 200
MAX_OFFSET = 100_000
"""Deeper than this, offset paging is the wrong tool (and the database's integer the limit):
narrow the filters instead."""


@dataclass(frozen=True)
class Pagination:
    limit: int
    offset: int


async def pagination(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Pagination:
    return Pagination(limit=limit, offset=offset)


PageDep = Annotated[Pagination, Depends(pagination)]


# --- the case a route is about ------------------------------------------------------------


@dataclass
class CaseRef:
    """A case that exists: its index row (None while not yet projected) and its workflow."""

    case_id: str
    row: Case | None
    client: Client

    @property
    def handle(self) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(self.case_id)


async def workflow_status(
    client: Client, workflow_id: str, limit: timedelta = CALL_LIMIT
) -> WorkflowExecutionStatus:
    """The workflow's execution status; RPCError NOT_FOUND when there is no such workflow,
    503 when Temporal has not answered within `limit` (retries included).

    The raw describe call decodes nothing but the status (`WorkflowHandle.describe()` also
    decodes every search attribute, which this check does not need)."""
    with temporal_call():
        async with asyncio.timeout(limit.total_seconds()):
            raw = await client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(
                    namespace=client.namespace,
                    execution=WorkflowExecution(workflow_id=workflow_id),
                ),
                retry=True,
                timeout=limit,
            )
    return WorkflowExecutionStatus(raw.workflow_execution_info.status)


async def current_case(case_id: str, session: SessionDep, temporal: TemporalDep) -> CaseRef:
    """404 once for every /cases/{case_id} route. A case exists if the index has it or, for a
    case just started and not yet projected, if Temporal knows its workflow."""
    CASE_ID.set(case_id)  # the request's log lines name the case (core.logs)
    row = await session.get(Case, case_id)
    if row is None:
        try:
            await workflow_status(temporal, case_id)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise unknown_case_problem(case_id) from None
            raise (problem_from_temporal(err) or err) from None
    return CaseRef(case_id=case_id, row=row, client=temporal)


CurrentCase = Annotated[CaseRef, Depends(current_case)]
