"""POST /cases/failed-deliveries: one case per shipment, validated before Temporal sees it."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlmodel import func, select

from core.temporal import connect
from schemas.tables import Case, Message, Shipment
from tests.api.conftest import (
    DRIVER_ID,
    OTHER_DRIVER_ID,
    Api,
    assert_problem,
    failed_delivery,
    run_id,
)


async def test_opening_a_case_answers_201_with_the_case_and_its_location(api: Api):
    response = await api.open_case(shipment_id="SHIP-100")

    assert response.status_code == 201, response.text
    case = response.json()
    assert case["case_id"] == "failed-delivery-SHIP-100"
    assert response.headers["location"] == "/cases/failed-delivery-SHIP-100"
    assert case["type"] == "failed_delivery"
    assert case["business_key"] == "SHIP-100"
    assert case["client_id"] == "acme"
    assert case["trace_url"].endswith("/namespaces/default/workflows/failed-delivery-SHIP-100")
    settled = await api.wait_for(case["case_id"], "waiting_on_customer")
    assert settled["details"]["depot_id"] == "ldn-1"  # the driver's depot
    assert settled["details"]["attempt_number"] == 1
    assert settled["deadline_at"] is not None


async def test_the_same_post_again_returns_the_existing_case_and_starts_nothing(
    api: Api, time_env, sessions
):
    body = failed_delivery()
    first = await api.post("/cases/failed-deliveries", json=body)
    case_id = first.json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")
    first_run = await run_id(time_env, case_id)

    again = await api.post("/cases/failed-deliveries", json=body)

    assert again.status_code == 200, again.text
    assert again.json()["case_id"] == case_id
    assert again.json()["details"]["attempt_number"] == 1
    assert await run_id(time_env, case_id) == first_run
    async with sessions() as session:
        count = (await session.exec(select(func.count()).select_from(Case))).one()
    assert count == 1


async def test_a_later_attempt_is_delivered_to_the_open_case(api: Api, time_env):
    body = failed_delivery()
    case_id = (await api.post("/cases/failed-deliveries", json=body)).json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")

    later = {**body, "attempt_number": 2, "reason": "access_problem"}
    response = await api.post("/cases/failed-deliveries", json=later)

    assert response.status_code == 200, response.text
    assert response.json()["case_id"] == case_id
    settled = await api.wait_for(case_id, "waiting_on_customer", subject_contains="attempt 2")
    assert settled["details"]["attempt_number"] == 2
    assert settled["details"]["last_reason"] == "access_problem"
    assert "attempt 2" in settled["subject"]


async def test_a_new_attempt_for_a_closed_case_is_refused(api: Api):
    body = failed_delivery(reason="refused")
    case_id = (await api.post("/cases/failed-deliveries", json=body)).json()["case_id"]
    await api.wait_for(case_id, "closed")

    response = await api.post("/cases/failed-deliveries", json={**body, "attempt_number": 2})

    problem = assert_problem(response, 409)
    assert "closed" in problem["detail"]
    repeat = await api.post("/cases/failed-deliveries", json=body)
    assert repeat.status_code == 200 and repeat.json()["status"] == "closed"


async def test_a_bad_customer_email_names_the_field(api: Api):
    body = failed_delivery(customer={"name": "Ada", "email": "not-an-email"})
    assert_problem(await api.post("/cases/failed-deliveries", json=body), 422, "customer.email")


async def test_a_naive_attempted_at_is_refused(api: Api):
    naive = datetime.now(UTC).replace(tzinfo=None).isoformat()
    response = await api.open_case(attempted_at=naive)
    assert_problem(response, 422, "attempted_at")


async def test_an_unsafe_shipment_id_is_refused(api: Api):
    assert_problem(await api.open_case(shipment_id="../etc/passwd"), 422, "shipment_id")
    assert_problem(await api.open_case(shipment_id="x" * 65), 422, "shipment_id")


async def test_an_unknown_client_says_so(api: Api, sessions):
    problem = assert_problem(await api.open_case(client_id="ghost"), 422, "client_id")
    assert "unknown client 'ghost'" in problem["detail"]
    async with sessions() as session:
        assert (await session.exec(select(Case))).all() == []


async def test_an_unknown_driver_names_the_driver_id(api: Api):
    problem = assert_problem(await api.open_case(driver_id="nobody"), 422, "driver_id")
    assert "unknown driver 'nobody'" in problem["detail"]


async def test_the_depot_is_the_drivers_depot(api: Api):
    case_id = (await api.open_case(driver_id=OTHER_DRIVER_ID)).json()["case_id"]
    settled = await api.wait_for(case_id, "waiting_on_customer")
    assert settled["details"]["depot_id"] == "nyc-1"
    assert DRIVER_ID not in str(settled["details"])


async def test_temporal_unreachable_is_a_503_and_nothing_is_written(
    settings, engine, keys, reference_data, sessions
):
    from api.main import create_app

    down = await connect(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}), lazy=True)
    app = create_app(settings, temporal=down, engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = {"Authorization": f"Bearer {keys['ops']}"}
        response = await client.post(
            "/cases/failed-deliveries", json=failed_delivery(), headers=headers
        )
        problem = assert_problem(response, 503)
        assert problem["detail"] == "Temporal is unreachable"

        unknown = await client.get("/cases/failed-delivery-nope", headers=headers)
        assert_problem(unknown, 503)

    async with sessions() as session:
        for table in (Case, Shipment, Message):
            assert (await session.exec(select(table))).all() == []
