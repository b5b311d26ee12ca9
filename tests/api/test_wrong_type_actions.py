"""An action a case's type does not have is refused by the registry: 409 problem+json naming
the case's type and the actions it does have, before anything is sent to the workflow. An
action every type has goes through on every type.

The API's Temporal client records every call it makes to a workflow (start, query, signal,
update), so "nothing reaches the workflow" is checked where it would happen."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio import client as temporal
from temporalio.testing import WorkflowEnvironment

from core.db import SessionFactory
from schemas.case_types import CASE_TYPES, DRIVER_COMPLIANCE, MULTIPART, ActionSpec, CaseTypeSpec
from schemas.enums import CaseStatus, CaseType
from schemas.onboarding import DriverComplianceInput, DriverProfile
from schemas.tables import Case
from tests.api.claims import claim, png
from tests.api.conftest import CLIENT_ID, DEPOT_ID, DRIVER_ID, Api, assert_problem, shipment_id
from tests.api.drivers import onboarding
from tests.api.invoices import invoice

NOW = datetime.now(UTC).isoformat()

# A body each action accepts; bytes are sent as files when the action takes multipart.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "redelivery": {"option": "neighbour", "neighbour_name": "Bob", "neighbour_address": "3 Main"},
    "delivery-outcome": {"outcome": "delivered", "attempted_at": NOW, "attempt_number": 1},
    "failed-attempt": {
        "attempt_number": 2,
        "reason": "not_home",
        "driver_id": DRIVER_ID,
        "attempted_at": NOW,
    },
    "documents": {"kind": "damage_photos", "file": png()},
    "file": {"missing_reasons": {"customer_attestation": "The customer is travelling."}},
    "decision": {"decision": "denied", "reason": "Not covered by the policy."},
    "notes": {"text": "Called the customer; no answer."},
    "assign": {"assignee": "sam"},
    "escalate": {"reason": "The client is asking daily."},
    "cancel": {"reason": "Opened by mistake."},
    "review": {"decision": "approved", "expires_on": "2099-12-31"},
    "payments": {"amount": "10.00", "paid_on": "2026-12-01", "reference": "BACS-1"},
    "disputes": {"reason": "The March deliveries were not made."},
    "resolve-dispute": {"outcome": "upheld"},
    "promise-to-pay": {"promised_on": "2099-12-31", "amount": "10.00"},
    "write-off": {"reason": "The client went out of business."},
}


def declaring(action: str) -> ActionSpec:
    """The action as the registry declares it (the first type that has it)."""
    return next(spec.action(action) for spec in CASE_TYPES.values() if spec.action(action))  # type: ignore[return-value]


def path_for(case_id: str, action: ActionSpec) -> str:
    """The action's route on the case (`documents/{document_id}/review` names a document)."""
    return f"/cases/{case_id}/{action.path.format(document_id='some-document')}"


def request_for(action: ActionSpec) -> dict[str, Any]:
    body = VALID_BODIES[action.name]
    if action.media_type != MULTIPART:
        return {"json": body}
    return {
        "data": {k: v for k, v in body.items() if not isinstance(v, bytes)},
        "files": {k: (f"{k}.png", v, "image/png") for k, v in body.items() if isinstance(v, bytes)},
    }


def missing_actions(spec: CaseTypeSpec) -> list[str]:
    """Actions other types declare that this one does not."""
    others = {a.name for other in CASE_TYPES.values() if other is not spec for a in other.actions}
    return sorted(others - set(spec.action_names))


WRONG_TYPE = [
    (spec.case_type, action) for spec in CASE_TYPES.values() for action in missing_actions(spec)
]
COMMON = sorted(set.intersection(*(set(spec.action_names) for spec in CASE_TYPES.values())))


# --- recording what the API sends to Temporal ---------------------------------------------


@dataclass(frozen=True)
class Call:
    kind: str
    workflow_id: str
    name: str


class _Recording(temporal.OutboundInterceptor):
    def __init__(self, next: temporal.OutboundInterceptor, calls: list[Call]) -> None:
        super().__init__(next)
        self._calls = calls

    async def start_workflow(self, input: temporal.StartWorkflowInput) -> Any:
        self._calls.append(Call("start", input.id, input.workflow))
        return await super().start_workflow(input)

    async def query_workflow(self, input: temporal.QueryWorkflowInput) -> Any:
        self._calls.append(Call("query", input.id, input.query))
        return await super().query_workflow(input)

    async def signal_workflow(self, input: temporal.SignalWorkflowInput) -> None:
        self._calls.append(Call("signal", input.id, input.signal))
        await super().signal_workflow(input)

    async def start_workflow_update(self, input: temporal.StartWorkflowUpdateInput) -> Any:
        self._calls.append(Call("update", input.id, input.update))
        return await super().start_workflow_update(input)


class RecordingInterceptor(temporal.Interceptor):
    def __init__(self, calls: list[Call]) -> None:
        self.calls = calls

    def intercept_client(self, next: temporal.OutboundInterceptor) -> temporal.OutboundInterceptor:
        return _Recording(next, self.calls)


@pytest.fixture
def calls() -> list[Call]:
    return []


@pytest.fixture
def app(app: FastAPI, time_env: WorkflowEnvironment, calls: list[Call]) -> FastAPI:
    """The API under test, its Temporal client recording every call to a workflow."""
    config = time_env.client.config()
    config["interceptors"] = [*config["interceptors"], RecordingInterceptor(calls)]
    app.state.temporal = temporal.Client(**config)
    return app


@pytest.fixture
def bare_api(raw_client: httpx.AsyncClient, keys: dict[str, str]) -> Api:
    """No worker: a refused action must not need one."""
    return Api(raw=raw_client, keys=keys)


async def indexed_case(sessions: SessionFactory, case_type: CaseType) -> str:
    """A case the API knows from its index row alone (no workflow behind it)."""
    key = shipment_id()
    async with sessions() as session:
        session.add(
            Case(
                id=case_type.workflow_id(key),
                type=case_type,
                status=CaseStatus.OPEN,
                business_key=key,
                client_id=CLIENT_ID,
                subject=f"{case_type.value} for {key}",
                opened_at=datetime.now(UTC),
            )
        )
        await session.commit()
    return case_type.workflow_id(key)


# --- the bodies used are valid ------------------------------------------------------------


def test_the_bodies_sent_are_valid_for_their_actions():
    """So a 409 below is about the type, not the body."""
    for spec in CASE_TYPES.values():
        for action in spec.actions:
            assert action.name in VALID_BODIES, f"add a valid body for '{action.name}'"
            action.body.model_validate(VALID_BODIES[action.name])


def test_every_type_lacks_some_action_another_type_has():
    """Otherwise the refusals below would test nothing for that type."""
    assert {case_type for case_type, _ in WRONG_TYPE} == set(CASE_TYPES)


# --- an action of another type ------------------------------------------------------------


@pytest.mark.parametrize(
    ("case_type", "action"), WRONG_TYPE, ids=[f"{t.value}-{a}" for t, a in WRONG_TYPE]
)
async def test_an_action_of_another_type_is_409_naming_the_type_and_its_actions(
    bare_api: Api, sessions: SessionFactory, calls: list[Call], case_type: CaseType, action: str
):
    spec = CASE_TYPES[case_type]
    case_id = await indexed_case(sessions, case_type)

    declared = declaring(action)
    response = await bare_api.post(path_for(case_id, declared), **request_for(declared))

    problem = assert_problem(response, 409)
    assert problem["type"] == "urn:casedesk:problem:action-not-allowed"
    assert case_type.value in problem["detail"]
    assert f"'{action}'" in problem["detail"]
    listed = problem["detail"].rpartition(":")[2]
    assert set(re.findall(r"[a-z][a-z-]*", listed)) == set(spec.action_names), problem["detail"]
    assert calls == []  # no query, no update: nothing reached Temporal


# --- an action every type has -------------------------------------------------------------


async def _start_compliance_watch(env: WorkflowEnvironment, task_queue: str) -> str:
    """A compliance watch, started as the onboarding case starts it at activation (it is
    never opened over the API)."""
    watch = DriverComplianceInput(
        driver_id=DRIVER_ID,
        depot_id=DEPOT_ID,
        driver=DriverProfile(name="Dee Driver", email="dee@example.com"),
        documents=[],
    )
    case_id = CaseType.DRIVER_COMPLIANCE.workflow_id(DRIVER_ID)
    await env.client.start_workflow(
        DRIVER_COMPLIANCE.workflow_type, watch, id=case_id, task_queue=task_queue
    )
    return case_id


async def _open(api: Api, case_type: CaseType, env: WorkflowEnvironment, task_queue: str) -> str:
    if case_type is CaseType.DRIVER_COMPLIANCE:
        return await _start_compliance_watch(env, task_queue)
    bodies = {
        CaseType.FAILED_DELIVERY: ("/cases/failed-deliveries", None),
        CaseType.DAMAGE_CLAIM: ("/cases/damage-claims", claim(driver_id=DRIVER_ID)),
        CaseType.DRIVER_ONBOARDING: ("/cases/driver-onboardings", onboarding()),
        CaseType.UNPAID_INVOICE: ("/cases/unpaid-invoices", invoice()),
    }
    assert case_type in bodies, f"say how to open a {case_type.value} case here"
    path, body = bodies[case_type]
    response = await (api.open_case() if body is None else api.post(path, json=body))
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    return case_id


@pytest.mark.parametrize("case_type", list(CASE_TYPES), ids=[t.value for t in CASE_TYPES])
async def test_a_note_goes_through_on_every_type(
    api: Api,
    calls: list[Call],
    case_type: CaseType,
    time_env: WorkflowEnvironment,
    task_queue: str,
):
    assert "notes" in COMMON
    case_id = await _open(api, case_type, time_env, task_queue)

    response = await api.post(f"/cases/{case_id}/notes", **request_for(declaring("notes")))

    assert response.status_code == 200, response.text
    notes = [e for e in response.json()["timeline"] if e["kind"] == "note"]
    assert [n["summary"] for n in notes] == ["Called the customer; no answer."]
    assert Call("update", case_id, "add_note") in calls
