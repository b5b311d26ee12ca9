"""Inputs an attacker (or a broken client) sends: each is refused with a 4xx, never a 500."""

from __future__ import annotations

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
