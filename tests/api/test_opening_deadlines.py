"""The answer to opening a case already carries its deadline and first step, as the workflow
set them when it started, and reading the case right after says the same."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.api.claims import claim
from tests.api.conftest import DRIVER_ID, Api


def at(value: Any) -> datetime:
    assert isinstance(value, str), value
    return datetime.fromisoformat(value)


async def test_a_failed_delivery_opens_with_the_customer_window_as_its_deadline(api: Api):
    response = await api.open_case()

    assert response.status_code == 201, response.text
    opened = response.json()
    assert at(opened["deadline_at"]) == at(opened["opened_at"]) + timedelta(days=5)


async def test_a_failed_delivery_opens_with_the_reminder_as_its_next_step(api: Api):
    response = await api.open_case()

    assert response.status_code == 201, response.text
    opened = response.json()
    assert opened["next_step"] == "remind the customer"
    assert at(opened["next_step_at"]) == at(opened["opened_at"]) + timedelta(hours=24)


async def test_reading_a_failed_delivery_right_after_shows_the_same_deadline(api: Api):
    opened = (await api.open_case()).json()

    read = await api.get(f"/cases/{opened['case_id']}")

    assert read.status_code == 200, read.text
    assert at(read.json()["deadline_at"]) == at(opened["deadline_at"])


async def test_a_claim_opens_with_the_filing_deadline_72_hours_after_the_delivery_event(api: Api):
    body = claim(driver_id=DRIVER_ID)

    response = await api.post("/cases/damage-claims", json=body)

    assert response.status_code == 201, response.text
    event = at(body["delivery_event_at"])
    assert at(response.json()["deadline_at"]) == event + timedelta(hours=72)


async def test_reading_a_claim_right_after_shows_the_same_deadline(api: Api):
    body = claim(driver_id=DRIVER_ID)
    opened = (await api.post("/cases/damage-claims", json=body)).json()

    read = await api.get(f"/cases/{opened['case_id']}")

    assert read.status_code == 200, read.text
    assert at(read.json()["deadline_at"]) == at(body["delivery_event_at"]) + timedelta(hours=72)
