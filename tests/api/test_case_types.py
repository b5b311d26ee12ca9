"""GET /case-types: every registered case type as data, for any key holder (the console builds
its forms from it)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from schemas.case_types import CASE_TYPES
from schemas.enums import CaseStatus
from tests.api.conftest import Api, assert_problem

DURATION = TypeAdapter(timedelta)


@pytest.fixture
def api(raw_client: httpx.AsyncClient, keys: dict[str, str]) -> Api:
    """No worker: describing the case types asks nothing of Temporal."""
    return Api(raw=raw_client, keys=keys)


async def published(api: Api) -> dict[str, dict[str, Any]]:
    response = await api.get("/case-types", role="viewer")
    assert response.status_code == 200, response.text
    return {entry["type"]: entry for entry in response.json()}


def duration(value: Any) -> timedelta:
    """An ISO 8601 duration from the JSON (`P1D`, `PT12H`), as a timedelta."""
    assert isinstance(value, str) and value.startswith("P"), value
    return DURATION.validate_python(value)


async def test_without_a_key_it_is_401(api: Api):
    response = await api.get("/case-types", role=None)

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_viewer_reads_every_registered_case_type_in_registry_order(api: Api):
    response = await api.get("/case-types", role="viewer")

    assert response.status_code == 200, response.text
    assert [entry["type"] for entry in response.json()] == [t.value for t in CASE_TYPES]


async def test_each_type_lists_its_statuses_with_their_descriptions(api: Api):
    types = await published(api)

    for case_type, spec in CASE_TYPES.items():
        statuses = types[case_type.value]["statuses"]
        assert [(s["value"], s["description"]) for s in statuses] == [
            (status.value, text) for status, text in spec.statuses.items()
        ]
        for status in statuses:
            assert status["terminal"] is CaseStatus(status["value"]).is_terminal
    fd_statuses = {s["value"] for s in types["failed_delivery"]["statuses"]}
    assert {"waiting_on_customer", "redelivery_scheduled", "closed"} <= fd_statuses
    dc_statuses = {s["value"] for s in types["damage_claim"]["statuses"]}
    assert {"gathering_evidence", "awaiting_decision", "closed"} <= dc_statuses


async def test_each_type_lists_its_resolutions_with_their_descriptions(api: Api):
    types = await published(api)

    for case_type, spec in CASE_TYPES.items():
        assert [(r["value"], r["description"]) for r in types[case_type.value]["resolutions"]] == [
            (resolution.value, text) for resolution, text in spec.resolutions.items()
        ]
    claim_resolutions = types["damage_claim"]["resolutions"]
    assert {r["value"] for r in claim_resolutions} == {"paid", "denied", "withdrawn"}
    assert all(r["description"] for r in claim_resolutions)


async def test_each_action_has_its_body_schema_role_and_media_type(api: Api):
    types = await published(api)

    for case_type, spec in CASE_TYPES.items():
        actions = types[case_type.value]["actions"]
        assert [a["name"] for a in actions] == spec.action_names
        for action, declared in zip(actions, spec.actions, strict=True):
            assert action["role"] == declared.role.value
            assert action["media_type"] == declared.media_type
            assert action["body_schema"] == declared.body.model_json_schema()
            assert action["title"] and action["description"]


async def test_ops_take_every_action_and_claim_evidence_is_a_multipart_upload(api: Api):
    types = await published(api)

    roles = {
        (entry_type, a["name"]): a["role"]
        for entry_type, entry in types.items()
        for a in entry["actions"]
    }
    # Every action is for ops, but an invoice's write-off is for admins only.
    assert roles.pop(("unpaid_invoice", "write-off")) == "admin"
    assert set(roles.values()) == {"ops"}
    documents = {a["name"]: a for a in types["damage_claim"]["actions"]}["documents"]
    assert documents["media_type"] == "multipart/form-data"
    assert set(documents["body_schema"]["required"]) == {"kind", "file"}
    redelivery = {a["name"]: a for a in types["failed_delivery"]["actions"]}["redelivery"]
    assert redelivery["media_type"] == "application/json"
    assert redelivery["body_schema"]["required"] == ["option"]


async def test_the_failed_delivery_default_policy_is_published_with_iso_durations(api: Api):
    policy = (await published(api))["failed_delivery"]["default_policy"]

    assert policy["max_attempts"] == 3
    assert duration(policy["reminder_after"]) == timedelta(hours=24)
    assert duration(policy["escalate_after"]) == timedelta(hours=48)
    assert duration(policy["customer_window"]) == timedelta(days=5)


async def test_the_damage_claim_default_policy_is_published_with_iso_durations(api: Api):
    policy = (await published(api))["damage_claim"]["default_policy"]

    assert duration(policy["filing_window"]) == timedelta(hours=72)
    assert [duration(d) for d in policy["reminders_after"]] == [
        timedelta(hours=24),
        timedelta(hours=48),
    ]
    assert duration(policy["escalate_before_deadline"]) == timedelta(hours=12)


async def test_each_type_says_where_it_opens_and_that_opening_needs_the_shipment(api: Api):
    types = await published(api)

    for case_type, spec in CASE_TYPES.items():
        entry = types[case_type.value]
        assert entry["open_path"] == (f"/cases/{spec.path}" if spec.path else None)
        assert entry["open_schema"] == spec.open_body.model_json_schema()
    for shipment_case in ("failed_delivery", "damage_claim"):
        assert "shipment_id" in types[shipment_case]["open_schema"]["required"]
    assert types["failed_delivery"]["open_path"] == "/cases/failed-deliveries"
    assert types["damage_claim"]["open_path"] == "/cases/damage-claims"


async def test_a_driver_is_onboarded_at_its_path_and_the_watch_is_not_opened_over_the_api(
    api: Api,
):
    types = await published(api)

    onboarding = types["driver_onboarding"]
    assert onboarding["open_path"] == "/cases/driver-onboardings"
    assert {"name", "email", "depot_id", "vehicle_type", "planned_start_date"} <= set(
        onboarding["open_schema"]["required"]
    )
    assert "driver_id" not in onboarding["open_schema"]["required"]  # generated when absent
    assert types["driver_compliance"]["open_path"] is None
