"""Random sequences of what people and time do to a case, for every case type, on the
real app and worker (time-skipping server, SQLite): every answer is below 500, and after
every step the case agrees with itself:

- a closed case allows nothing, has no deadline and is not overdue;
- `overdue` is exactly "the deadline has passed and the case is open";
- the timeline's seqs only grow, and its last status event names the case's status;
- once a case's workflow has finished, no message is ever added to it, however much time
  passes or whatever is tried afterwards.

The examples are derandomized (the same sequences every run, so CI is stable); set
CASEDESK_SEQUENCE_EXAMPLES to run more, randomly, on a workstation.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from core.db import SessionFactory
from tests.api.claims import add_shipment, claim
from tests.api.conftest import DRIVER_ID, Api
from tests.api.drivers import activate, add_coordinator, onboarding
from tests.api.invoices import add_billing_contact, invoice

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

EXAMPLES = int(os.environ.get("CASEDESK_SEQUENCE_EXAMPLES", "0"))
SEQUENCES = settings(
    max_examples=EXAMPLES or 6,
    derandomize=not EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
Step = tuple[str, Any]
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
async def contacts(sessions: SessionFactory, reference_data: None) -> None:
    await add_billing_contact(sessions)
    await add_coordinator(sessions)


@dataclass
class Tracker:
    """What a sequence has seen of its case."""

    api: Api
    env: WorkflowEnvironment
    case_id: str
    finished_messages: int | None = None
    last_seq: int = 0
    answers: list[int] = field(default_factory=list)

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def act(self, path: str, body: dict[str, Any] | None, role: str = "ops") -> None:
        response = await self.api.post(f"/cases/{self.case_id}/{path}", json=body, role=role)
        self.answers.append(response.status_code)
        assert response.status_code < 500, (path, body, response.text)

    async def messages(self) -> int:
        page = await self.api.get("/messages", params={"case_id": self.case_id, "limit": 200})
        assert page.status_code == 200, page.text
        return int(page.json()["total"])

    async def check(self) -> dict[str, Any]:
        response = await self.api.get(f"/cases/{self.case_id}")
        assert response.status_code == 200, response.text
        case = response.json()
        terminal = case["status"] in ("closed", "cancelled")
        if terminal:
            assert case["allowed_actions"] == ["notes"], case["allowed_actions"]  # notes only
            assert case["deadline_at"] is None and case["overdue"] is False
        elif case["deadline_at"] is not None:
            deadline = datetime.fromisoformat(case["deadline_at"])
            assert case["overdue"] == (deadline < await self.now()), case
        seqs = [event["seq"] for event in case["timeline"]]
        assert seqs == sorted(set(seqs)), seqs
        assert not seqs or seqs[-1] >= self.last_seq  # the timeline never loses its end
        self.last_seq = seqs[-1] if seqs else 0
        statuses = [e for e in case["timeline"] if e["kind"] == "status"]
        if case["live"] and statuses:
            assert statuses[-1]["data"]["status"] == case["status"], statuses[-1]
        await self._no_message_after_the_end()
        return case

    async def _no_message_after_the_end(self) -> None:
        description = await self.env.client.get_workflow_handle(self.case_id).describe()
        if description.status == WorkflowExecutionStatus.RUNNING:
            return
        count = await self.messages()
        if self.finished_messages is None:
            self.finished_messages = count
        assert count == self.finished_messages, "a message after the case had finished"

    async def run(self, steps: list[Step]) -> None:
        await self.check()
        for name, value in steps:
            if name == "wait":
                await self.wait(value)
            else:
                await self.perform(name, value)
            await self.check()
        await self.wait(timedelta(days=40))  # everything still ahead falls due
        await self.check()

    async def wait(self, span: timedelta) -> None:
        """Let time pass while the case runs. A finished workflow has no timer left to fire,
        and the time-skipping server can stay locked after an API call cancelled its wait
        for a result (as `/drivers/{id}/offboard` does at its limit): so once the case has
        finished, its messages are counted again instead."""
        if self.finished_messages is None:
            await self.env.sleep(span)

    async def perform(self, name: str, value: Any) -> None:
        common = {
            "notes": {"text": "Spoke to them"},
            "escalate": {"reason": "Needs a person"},
            "cancel": {"reason": "No longer needed"},
            "assign": {"assignee": "sam"},
        }
        if name in common:
            await self.act(name, common[name])
            return
        await self.perform_own(name, value)

    async def perform_own(self, name: str, value: Any) -> None:
        raise NotImplementedError


COMMON: list[st.SearchStrategy[Step]] = [
    st.tuples(st.sampled_from(["notes", "escalate", "cancel", "assign"]), st.none()),
]


def waits(*hours: float) -> st.SearchStrategy[Step]:
    return st.tuples(st.just("wait"), st.sampled_from([h * HOUR for h in hours]))


# --- failed deliveries ---------------------------------------------------------------------


class FailedDeliverySteps(Tracker):
    async def perform_own(self, name: str, value: Any) -> None:
        now = (await self.now()).isoformat()
        current = (await self.api.get(f"/cases/{self.case_id}")).json()["details"]
        attempt = current.get("attempt_number", 1)
        if name == "redelivery":
            await self.act("redelivery", {"option": "pickup_point", "pickup_point_id": "pp-corner"})
        elif name == "outcome":
            body: dict[str, Any] = {
                "outcome": value,
                "attempted_at": now,
                "attempt_number": attempt,
            }
            if value == "failed":
                body["reason"] = "not_home"
            await self.act("delivery-outcome", body)
        elif name == "failed-attempt":
            await self.act(
                "failed-attempt",
                {
                    "attempt_number": attempt + 1,
                    "reason": value,
                    "driver_id": DRIVER_ID,
                    "attempted_at": now,
                },
            )


FAILED_DELIVERY_STEPS = st.lists(
    st.one_of(
        *COMMON,
        st.tuples(st.just("redelivery"), st.none()),
        st.tuples(st.just("outcome"), st.sampled_from(["delivered", "failed"])),
        st.tuples(st.just("failed-attempt"), st.sampled_from(["not_home", "refused"])),
        waits(1, 25, 49, 130),
    ),
    min_size=2,
    max_size=7,
)


@SEQUENCES
@given(steps=FAILED_DELIVERY_STEPS)
async def test_failed_deliveries_stay_consistent(api: Api, time_env, steps: list[Step]):
    opened = await api.open_case(attempted_at=(await time_env.get_current_time()).isoformat())
    assert opened.status_code == 201, opened.text
    await FailedDeliverySteps(api, time_env, opened.json()["case_id"]).run(steps)


# --- damage claims -------------------------------------------------------------------------


class ClaimSteps(Tracker):
    async def perform_own(self, name: str, value: Any) -> None:
        if name == "file":
            reasons = {k: "not available" for k in ("damage_photos", "customer_attestation")}
            await self.act("file", {"missing_reasons": {**reasons, "proof_of_value": "none"}})
        elif name == "decision":
            body: dict[str, Any] = {"decision": value}
            if value == "approved":
                body["amount"] = "49.90"
            elif value == "denied":
                body["reason"] = "Not covered"
            else:
                body["requested"] = ["proof_of_value"]
            await self.act("decision", body)


CLAIM_STEPS = st.lists(
    st.one_of(
        *COMMON,
        st.tuples(st.just("file"), st.none()),
        st.tuples(st.just("decision"), st.sampled_from(["approved", "denied", "more_information"])),
        waits(12, 30, 61, 200),
    ),
    min_size=2,
    max_size=7,
)


@SEQUENCES
@given(steps=CLAIM_STEPS)
async def test_damage_claims_stay_consistent(
    api: Api, time_env, sessions: SessionFactory, steps: list[Step]
):
    body = claim(delivery_event_at=(await time_env.get_current_time() - HOUR).isoformat())
    await add_shipment(sessions, body["shipment_id"])
    opened = await api.post("/cases/damage-claims", json=body)
    assert opened.status_code == 201, opened.text
    await ClaimSteps(api, time_env, opened.json()["case_id"]).run(steps)


# --- driver onboarding ---------------------------------------------------------------------


class OnboardingSteps(Tracker):
    async def perform_own(self, name: str, value: Any) -> None:
        raise AssertionError(f"no step {name}")  # pragma: no cover


ONBOARDING_STEPS = st.lists(st.one_of(*COMMON, waits(24, 49, 170, 721)), min_size=2, max_size=6)


@SEQUENCES
@given(steps=ONBOARDING_STEPS)
async def test_driver_onboardings_stay_consistent(api: Api, time_env, steps: list[Step]):
    start = (await time_env.get_current_time()).date() + timedelta(days=14)
    opened = await api.post(
        "/cases/driver-onboardings",
        json=onboarding(
            driver_id=f"drv-{uuid.uuid4().hex[:8]}", planned_start_date=start.isoformat()
        ),
    )
    assert opened.status_code == 201, opened.text
    await OnboardingSteps(api, time_env, opened.json()["case_id"]).run(steps)


# --- unpaid invoices -----------------------------------------------------------------------


class InvoiceSteps(Tracker):
    async def perform_own(self, name: str, value: Any) -> None:
        today = (await self.now()).date()
        if name == "payment":
            amount, reference = value
            await self.act(
                "payments",
                {"amount": amount, "paid_on": today.isoformat(), "reference": reference},
            )
        elif name == "dispute":
            await self.act("disputes", {"reason": "Wrong stops", "disputed_amount": "100.00"})
        elif name == "resolve":
            body = {"outcome": value}
            if value == "adjusted":
                body["adjusted_amount"] = "1000.00"
            await self.act("disputes/resolve", body)
        elif name == "promise":
            promised = (today + timedelta(days=3)).isoformat()
            await self.act("promise-to-pay", {"promised_on": promised, "amount": "1234.50"})
        elif name == "write-off":
            await self.act("write-off", {"reason": "Gone"}, role="admin")


INVOICE_STEPS = st.lists(
    st.one_of(
        *COMMON,
        st.tuples(
            st.just("payment"),
            st.tuples(
                st.sampled_from(["100.00", "1234.50", "2000.00"]), st.sampled_from(["A", "B"])
            ),
        ),
        st.tuples(st.just("dispute"), st.none()),
        st.tuples(st.just("resolve"), st.sampled_from(["upheld", "adjusted"])),
        st.tuples(st.just("promise"), st.none()),
        st.tuples(st.just("write-off"), st.none()),
        waits(24, 24 * 8, 24 * 20),
    ),
    min_size=2,
    max_size=8,
)


@SEQUENCES
@given(steps=INVOICE_STEPS, overdue_by=st.sampled_from([-5, 0, 8, 31]))
async def test_unpaid_invoices_stay_consistent(
    api: Api, time_env, steps: list[Step], overdue_by: int
):
    due = (await time_env.get_current_time()).date() - timedelta(days=overdue_by)
    body = invoice(issued_on=(due - timedelta(days=30)).isoformat(), due_on=due.isoformat())
    opened = await api.post("/cases/unpaid-invoices", json=body)
    assert opened.status_code == 201, opened.text
    await InvoiceSteps(api, time_env, opened.json()["case_id"]).run(steps)


# --- the compliance watch ------------------------------------------------------------------


class ComplianceSteps(Tracker):
    """Notes, escalations and time on a watch (its renewals, warnings and suspension).
    Offboarding, which ends a watch, is left to tests/api/test_drivers.py: the API's wait for
    the watch to close can leave the time-skipping server unable to skip time again."""

    async def perform_own(self, name: str, value: Any) -> None:
        raise AssertionError(f"no step {name}")  # pragma: no cover


COMPLIANCE_STEPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["notes", "escalate", "assign"]), st.none()),
        waits(24 * 7, 24 * 40, 24 * 100),
    ),
    min_size=2,
    max_size=6,
)


@SEQUENCES
@given(steps=COMPLIANCE_STEPS, valid_for=st.sampled_from([45, 120]))
async def test_compliance_watches_stay_consistent(
    api: Api, time_env, steps: list[Step], valid_for: int
):
    today = (await time_env.get_current_time()).date()
    driver_id = f"drv-{uuid.uuid4().hex[:8]}"
    opened = await api.post(
        "/cases/driver-onboardings",
        json=onboarding(
            driver_id=driver_id, planned_start_date=(today + timedelta(days=14)).isoformat()
        ),
    )
    assert opened.status_code == 201, opened.text
    onboarding_id = opened.json()["case_id"]
    await api.wait_for(onboarding_id, "collecting_documents")
    await activate(api, onboarding_id, expires_on=today + timedelta(days=valid_for))
    watch_id = f"driver-compliance-{driver_id}"
    await api.wait_for(watch_id, "monitoring")
    await ComplianceSteps(api, time_env, watch_id).run(steps)
