"""No personal data in Temporal: a case of every type is worked over the API with canary
personal data (a name, an email, a phone number, an address, a claim description, a note),
then each workflow's raw history, as Temporal stores it and its UI or API would show it
without the codec, is searched for the canaries and found free of them. Workflow ids, search
attributes and memos carry none either. The same history read through the codec server
(`/codec/decode`) does hold them: the search looks where the data is."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.history.v1 import History
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
)
from temporalio.testing import WorkflowEnvironment

from core.codec import ENCODING
from core.db import SessionFactory
from tests.api.claims import add_shipment, claim, wait_until
from tests.api.conftest import Api
from tests.api.drivers import activate, add_coordinator, onboarding, today
from tests.api.invoices import add_billing_contact, invoice

NAME = "Zebedee Canarywing"
EMAIL = "zebedee.canarywing@example.com"
PHONE = "+44 7700 900777"
STREET = "77 Canarywharf Lane"
DESCRIPTION = "The heirloom Canarywing teapot arrived in pieces"
NOTE = "Spoke to Zebedee on the phone about it"
CANARIES = (NAME, EMAIL, PHONE, STREET, DESCRIPTION, NOTE, "Canarywing", "canarywing")

CUSTOMER = {"name": NAME, "email": EMAIL, "phone": PHONE}
ADDRESS = {"line1": STREET, "city": "Leeds", "postal_code": "LS7 7ZZ", "country": "GB"}


@pytest.fixture(autouse=True)
async def contacts(sessions: SessionFactory, reference_data: None) -> None:
    await add_billing_contact(sessions)
    await add_coordinator(sessions)


async def raw_history(env: WorkflowEnvironment, workflow_id: str) -> History:
    """Every event of every run, as the server stores them (no codec applied)."""
    service, history = env.client.workflow_service, History()
    token = b""
    while True:
        page = await service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=env.client.namespace,
                execution=WorkflowExecution(workflow_id=workflow_id),
                next_page_token=token,
            )
        )
        history.events.extend(page.history.events)
        token = page.next_page_token
        if not token:
            return history


def canaries_in(data: bytes) -> list[str]:
    return [canary for canary in CANARIES if canary.encode() in data]


async def open_one_of_each(
    api: Api, env: WorkflowEnvironment, sessions: SessionFactory
) -> list[str]:
    """A failed delivery, a damage claim, a driver's onboarding and compliance watch, an
    unpaid invoice, each with the canaries where the type takes personal data, and a note."""
    delivery = await api.open_case(customer=CUSTOMER, address=ADDRESS, note=NOTE)
    assert delivery.status_code == 201, delivery.text

    body = claim(description=DESCRIPTION, customer=CUSTOMER)
    await add_shipment(sessions, body["shipment_id"])
    claimed = await api.post("/cases/damage-claims", json=body)
    assert claimed.status_code == 201, claimed.text

    start = await today(env) + timedelta(days=14)
    driver = await api.post(
        "/cases/driver-onboardings",
        json=onboarding(name=NAME, email=EMAIL, phone=PHONE, planned_start_date=start.isoformat()),
    )
    assert driver.status_code == 201, driver.text
    onboarding_id = driver.json()["case_id"]
    await wait_until(
        api, onboarding_id, lambda b: b["status"] == "collecting_documents", "asked for documents"
    )
    await activate(api, onboarding_id, expires_on=await today(env) + timedelta(days=400))
    watch_id = onboarding_id.replace("driver-onboarding-", "driver-compliance-")
    await api.wait_for(watch_id, "monitoring")

    billed = await api.post("/cases/unpaid-invoices", json=invoice(reference="PO-1"))
    assert billed.status_code == 201, billed.text

    case_ids = [
        delivery.json()["case_id"],
        claimed.json()["case_id"],
        onboarding_id,
        watch_id,
        billed.json()["case_id"],
    ]
    for case_id in case_ids:
        noted = await api.post(f"/cases/{case_id}/notes", json={"text": NOTE})
        assert noted.status_code in (200, 409), noted.text  # the onboarding has closed
    return case_ids


async def test_no_personal_data_in_any_cases_raw_history_ids_or_search_attributes(
    api: Api, time_env: WorkflowEnvironment, sessions: SessionFactory
):
    case_ids = await open_one_of_each(api, time_env, sessions)

    for case_id in case_ids:
        history = await raw_history(time_env, case_id)
        assert len(history.events) > 5, case_id
        assert canaries_in(history.SerializeToString()) == [], case_id
        assert canaries_in(case_id.encode()) == []
        described = await time_env.client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=time_env.client.namespace,
                execution=WorkflowExecution(workflow_id=case_id),
            )
        )
        info = described.workflow_execution_info
        assert canaries_in(info.search_attributes.SerializeToString()) == [], case_id
        assert canaries_in(info.memo.SerializeToString()) == [], case_id


async def test_the_codec_server_decodes_the_same_history_for_ops(
    api: Api, time_env: WorkflowEnvironment
):
    opened = await api.open_case(customer=CUSTOMER, address=ADDRESS, note=NOTE)
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")
    started = (await raw_history(time_env, case_id)).events[0]
    payloads = list(started.workflow_execution_started_event_attributes.input.payloads)
    body = {"payloads": [json_format.MessageToDict(p) for p in payloads]}

    decoded = await api.post("/codec/decode", json=body, role="ops")

    assert decoded.status_code == 200, decoded.text
    (payload,) = decoded.json()["payloads"]
    data = base64.b64decode(payload["data"])
    assert {NAME, EMAIL, STREET, NOTE} <= set(canaries_in(data))
    assert Payload(**_metadata(payload)).metadata["encoding"] == b"json/plain"


def _metadata(payload: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {k: base64.b64decode(v) for k, v in payload["metadata"].items()}}


async def _decoded(api: Api, payload: Payload) -> str:
    body = {"payloads": [json_format.MessageToDict(payload)]}
    decoded = await api.post("/codec/decode", json=body, role="ops")
    assert decoded.status_code == 200, decoded.text
    (plain,) = decoded.json()["payloads"]
    return str(json.loads(base64.b64decode(plain["data"])))


async def test_the_ui_summaries_are_encrypted_in_history_and_decode_for_ops(
    api: Api, time_env: WorkflowEnvironment
):
    """The static summary and details of the start and the summaries of timers and
    activities are user metadata: Temporal stores them encoded with the payload codec, so the
    raw history shows none of their words; the codec server gives them back."""
    opened = await api.open_case(customer=CUSTOMER, address=ADDRESS, note=NOTE)
    assert opened.status_code == 201, opened.text
    case = opened.json()
    await api.wait_for(case["case_id"], "waiting_on_customer")
    # The status is set, then the notice sent, then the reminder's timer started: wait for it.
    for _ in range(200):
        events = (await raw_history(time_env, case["case_id"])).events
        if any(e.HasField("timer_started_event_attributes") for e in events):
            break
        await asyncio.sleep(0.05)
    summaries = [e.user_metadata.summary for e in events if e.user_metadata.HasField("summary")]
    started = events[0].user_metadata
    timers = [
        e.user_metadata.summary for e in events if e.HasField("timer_started_event_attributes")
    ]

    assert len(summaries) >= 3  # the start, record_case activities, the reminder's timer
    for payload in [*summaries, started.details]:
        assert payload.metadata["encoding"] == ENCODING
    raw = b"".join(e.SerializeToString() for e in events)
    assert b"Failed delivery" not in raw and b"remind the customer" not in raw
    assert await _decoded(api, started.summary) == (
        f"Failed delivery · shipment {case['business_key']} · {case['client_id']}"
    )
    assert "Policy: reminder after 24 h" in await _decoded(api, started.details)
    assert await _decoded(api, timers[0]) == "remind the customer"
