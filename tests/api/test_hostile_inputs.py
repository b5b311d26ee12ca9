"""Inputs an attacker (or a broken client) sends: each is refused with a 4xx, never a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.claims import claim
from tests.api.conftest import Api, assert_problem
from tests.api.test_customer_page import _case_and_link, _is_page

LIST_ENDPOINTS = [
    "/cases",
    "/clients",
    "/depots",
    "/depots/ldn-1/pickup-points",
    "/drivers",
    "/messages",
    "/api-keys",
]


async def test_a_link_with_a_non_ascii_character_appended_is_a_400_page(api: Api):
    _, link = await _case_and_link(api)

    for response in (await api.raw.get(f"{link}é"), await api.raw.post(f"{link}é", data={})):
        assert "This link is not valid" in _is_page(response, 400)


async def test_a_customer_form_field_over_the_part_limit_is_a_400_page(api: Api):
    case_id, link = await _case_and_link(api)

    response = await api.raw.post(
        link, data={"option": "neighbour", "neighbour_name": "x" * (1024 * 1024 + 1)}
    )

    html = _is_page(response, 400)
    assert "Something went wrong on our side" not in html
    assert (await api.wait_for(case_id))["status"] == "waiting_on_customer"


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
async def test_an_offset_beyond_the_bound_is_422_naming_offset(api: Api, path: str):
    response = await api.get(path, params={"offset": str(2**63)}, role="admin")

    assert_problem(response, 422, "offset")


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
async def test_a_limit_beyond_the_bound_is_422_naming_limit(api: Api, path: str):
    response = await api.get(path, params={"limit": "201"}, role="admin")

    assert_problem(response, 422, "limit")


@pytest.mark.parametrize("offset", ["²", "٣", str(2**63), "-1"])
async def test_the_consoles_list_refuses_an_offset_it_cannot_use(api: Api, offset: str):
    await api.raw.post("/console/login", data={"api_key": api.keys["viewer"]})

    response = await api.raw.get("/console", params={"offset": offset})

    assert response.status_code == 422, response.text
    assert "offset" in response.text


@pytest.mark.parametrize("year", ["0001", "9999"])
async def test_a_claim_whose_delivery_event_is_out_of_range_is_422(api: Api, year: str):
    body = claim(delivery_event_at=f"{year}-12-31T23:00:00+00:00")

    response = await api.post("/cases/damage-claims", json=body)

    assert_problem(response, 422, "delivery_event_at")


# --- input validation: text, ids, numbers, emails, dates, JSON ---------------------------------

BAD_TEXT = {
    "NUL": "Ada\x00Customer",
    "a bell": "Ada\x07",
    "CR/LF": "Ada\r\nBcc: someone",
    "a tab": "Ada\tCustomer",
    "zero-width only": "\u200b\u200c\u200d",
    "an RTL override": "Ada \u202egnp.exe",
    "an isolate": "Ada \u2066x\u2069",
}


@pytest.mark.parametrize("text", BAD_TEXT.values(), ids=BAD_TEXT.keys())
async def test_names_and_addresses_refuse_control_and_formatting_characters(api: Api, text: str):
    customer = {"name": text, "email": "ada@example.com"}
    address = {"line1": text, "city": "London", "postal_code": "E1 6AN", "country": "GB"}

    response = await api.open_case(customer=customer, address=address)

    assert_problem(response, 422, "customer.name", "address.line1")


async def test_long_text_keeps_its_newlines_but_refuses_other_control_characters(api: Api):
    assert_problem(await api.open_case(note="no answer\x00"), 422, "note")

    response = await api.open_case(note="No answer at the door.\r\nLeft a card.")

    assert response.status_code == 201, response.text
    case = await api.wait_for(response.json()["case_id"], "waiting_on_customer")
    attempt = [e for e in case["timeline"] if e["kind"] == "attempt_failed"]
    assert "No answer at the door.\nLeft a card." in attempt[0]["summary"], case["timeline"]


@pytest.mark.parametrize("shipment", [".", "..", "...", "a/b", ""])
async def test_ids_that_could_be_a_path_are_refused(api: Api, shipment: str):
    assert_problem(await api.open_case(shipment_id=shipment), 422, "shipment_id")


@pytest.mark.parametrize("value", ["2", True, 1.5])
async def test_a_number_must_be_a_json_number(api: Api, value: object):
    assert_problem(await api.open_case(attempt_number=value), 422, "attempt_number")


@pytest.mark.parametrize("email", ["a@b", "ada@localhost", "ada@@example.com", "ada@exa mple.com"])
async def test_emails_are_checked_by_a_validator(api: Api, email: str):
    customer = {"name": "Ada", "email": email}
    assert_problem(await api.open_case(customer=customer), 422, "customer.email")


async def test_the_openapi_schema_says_emails_are_format_email(api: Api):
    schema = (await api.get("/openapi.json", role=None)).json()["components"]["schemas"]

    assert schema["Customer"]["properties"]["email"]["format"] == "email"
    assert schema["DriverOnboardingOpen"]["properties"]["email"]["format"] == "email"


@pytest.mark.parametrize(
    "attempted_at",
    ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"],
    ids=["year 1", "year 9999"],
)
async def test_an_attempt_out_of_range_is_refused(api: Api, attempted_at: str):
    assert_problem(await api.open_case(attempted_at=attempted_at), 422, "attempted_at")


@pytest.mark.parametrize("days", [-31, 1], ids=["older than the policy", "in the future"])
async def test_an_attempt_must_be_recent_and_not_in_the_future(api: Api, time_env, days: int):
    at = await time_env.get_current_time() + timedelta(days=days)

    response = await api.open_case(attempted_at=at.isoformat())

    problem = assert_problem(response, 422, "attempted_at")
    assert "future" in problem["detail"] or "days ago" in problem["detail"]


async def test_a_delivery_outcome_dated_year_1_never_closes_the_case(api: Api):
    case_id = (await api.open_case()).json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")
    outcome = {"outcome": "delivered", "attempted_at": "0001-01-01T00:00:00+00:00"}

    response = await api.post(f"/cases/{case_id}/delivery-outcome", json=outcome)

    assert_problem(response, 422, "attempted_at")
    assert (await api.get(f"/cases/{case_id}")).json()["status"] == "waiting_on_customer"


async def test_a_claims_delivery_event_older_than_its_policy_is_refused(api: Api, time_env):
    at = await time_env.get_current_time() - timedelta(days=366)

    response = await api.post("/cases/damage-claims", json=claim(delivery_event_at=at.isoformat()))

    assert_problem(response, 422, "delivery_event_at")


async def test_a_malformed_json_body_names_the_problem_not_an_offset(api: Api):
    response = await api.raw.post(
        "/cases/failed-deliveries",
        content=b'{"shipment_id": "S-1",,}',
        headers={**api._auth("ops"), "content-type": "application/json"},
    )

    problem = assert_problem(response, 422, "body")
    assert [e["field"] for e in problem["errors"]] == ["body"]
    assert "not valid JSON" in problem["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/cases?q=%00",
        "/cases?client_id=a%00b",
        "/cases?assignee=%00",
        "/cases/failed-delivery-S%00",
        "/messages?case_id=%00",
        "/drivers?depot_id=%00",
        "/drivers/drv%00",
        "/clients/acme%00",
        "/depots/%00",
    ],
)
async def test_a_nul_in_a_path_or_query_is_refused_not_a_500(api: Api, path: str):
    response = await api.get(path)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "control characters" in response.json()["detail"]
