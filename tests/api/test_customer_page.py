"""The customer's page at /r/{token}: server-rendered, no JavaScript, errors as pages."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta

import httpx

from api.main import create_app
from api.routes.customer import masked_address
from core.security import sign_link
from core.temporal import connect
from tests.api.conftest import LINK_SECRET, Api, failed_delivery


async def _case_and_link(api: Api, **fields) -> tuple[str, str]:
    response = await api.post("/cases/failed-deliveries", json=failed_delivery(**fields))
    case_id = response.json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")
    return case_id, await api.customer_link(case_id)


def _is_page(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<script" not in response.text and "Traceback" not in response.text
    return response.text


def _window(days: int = 2) -> dict[str, str]:
    day = (datetime.now(UTC) + timedelta(days=days)).date()
    return {"option": "redelivery_window", "date": day.isoformat(), "window": "morning"}


async def test_the_link_from_the_email_shows_the_form_with_the_depots_pickup_points(api: Api):
    case_id, link = await _case_and_link(api, shipment_id="SHIP-PAGE")

    html = _is_page(await api.raw.get(link), 200)

    assert "SHIP-PAGE" in html and '<form method="post"' in html
    for option in ("redelivery_window", "pickup_point", "neighbour", "address_correction"):
        assert f'value="{option}"' in html
    assert "Corner Shop" in html and "Station Lockers" in html
    assert "Northern Kiosk" not in html  # another depot's pickup point
    assert html.count('<option value="20') == 7  # the next 7 days
    for window in ("morning", "afternoon", "evening"):
        assert f'value="{window}"' in html


async def test_choosing_a_window_confirms_and_books_the_redelivery(api: Api):
    case_id, link = await _case_and_link(api)
    choice = _window(2)

    html = _is_page(await api.raw.post(link, data=choice), 200)

    day = datetime.fromisoformat(choice["date"])
    # The booking happens after the answer (and can fail): the page does not claim it is done.
    assert f"Thank you — we have your choice: delivery on {day:%A} {day.day} {day:%B}," in html
    assert "We are booking it now and will email you a confirmation." in html
    assert "we will deliver" not in html
    booked = await api.wait_for(case_id, "redelivery_scheduled")
    assert booked["details"]["redelivery_option"] == "redelivery_window"
    chosen = [e for e in booked["timeline"] if e["kind"] == "redelivery_chosen"]
    assert chosen[0]["actor"] == "customer"


async def test_the_answer_can_be_changed_until_the_cut_off_and_then_not(api: Api, time_env):
    case_id, link = await _case_and_link(api)
    assert (await api.raw.post(link, data=_window(3))).status_code == 200
    booked = await api.wait_for(case_id, "redelivery_scheduled")

    page = _is_page(await api.raw.get(link), 200)
    assert "Change your delivery" in page and booked["details"]["redelivery"] in page
    booked_day = _window(3)["date"]
    assert f'<option value="{booked_day}" selected>' in page  # the form starts from the booking
    assert '<option value="morning" selected>' in page
    until = datetime.fromisoformat(booked["details"]["changeable_until"])
    assert f"You can change it until {until:%A} {until.day} {until:%B}, 18:00 " in page
    changed = _is_page(await api.raw.post(link, data={**_window(4), "window": "evening"}), 200)
    assert "Thank you — we have your new choice: delivery on " in changed
    for _ in range(100):
        rebooked = await api.wait_for(case_id, "redelivery_scheduled")
        if rebooked["details"]["redelivery"] != booked["details"]["redelivery"]:
            break
        await asyncio.sleep(0.05)
    assert "17:00-21:00" in rebooked["details"]["redelivery"]
    kinds = [e["kind"] for e in rebooked["timeline"]]
    assert "redelivery_changed" in kinds

    fixed_at = datetime.fromisoformat(rebooked["details"]["changeable_until"])
    assert fixed_at == until + timedelta(days=1)  # the new day's cut-off
    await time_env.sleep(fixed_at - await time_env.get_current_time() + timedelta(hours=1))
    for _ in range(100):
        late = await api.raw.get(link)
        if "<form" not in late.text:
            break
        await asyncio.sleep(0.05)
    html = _is_page(late, 200)  # a page to read, not an error
    assert "You have already answered" in html and "<form" not in html
    assert "It can no longer be changed: the depot is planning the route." in html
    refused = _is_page(await api.raw.post(link, data=_window(5)), 409)
    assert "no longer be changed" in refused


async def test_a_tampered_link_is_a_400_page(api: Api):
    _, link = await _case_and_link(api)
    body, signature = link.removeprefix("/r/").split(".")
    tampered = f"/r/{body[:-2]}xx.{signature}"

    for response in (await api.raw.get(tampered), await api.raw.post(tampered, data=_window())):
        html = _is_page(response, 400)
        assert "This link is not valid" in html
    assert "This link is not valid" in _is_page(await api.raw.get("/r/garbage"), 400)


async def test_an_expired_link_is_a_410_page(api: Api):
    case_id, _ = await _case_and_link(api)
    token = sign_link(
        LINK_SECRET.encode(),
        purpose="reschedule",
        case_id=case_id,
        expires_at=datetime.now(UTC) - timedelta(minutes=1),
        attempt=1,
    )

    html = _is_page(await api.raw.get(f"/r/{token}"), 410)

    assert "This link has expired" in html
    assert _is_page(await api.raw.post(f"/r/{token}", data=_window()), 410)


async def test_a_missing_field_re_renders_the_form_with_the_error(api: Api):
    case_id, link = await _case_and_link(api)

    response = await api.raw.post(link, data={"option": "neighbour", "neighbour_name": "Bob"})

    html = _is_page(response, 422)
    assert "Neighbour&#39;s address" in html and '<form method="post"' in html
    assert 'value="Bob"' in html  # what was typed is kept
    assert (await api.wait_for(case_id))["status"] == "waiting_on_customer"


async def test_a_date_outside_the_horizon_re_renders_the_form(api: Api):
    case_id, link = await _case_and_link(api)

    html = _is_page(await api.raw.post(link, data=_window(30)), 422)

    assert "date must be between" in html and '<form method="post"' in html
    detail = await api.wait_for(case_id)
    assert "redelivery" in detail["allowed_actions"]


async def test_a_pickup_point_of_another_depot_re_renders_the_form(api: Api):
    _, link = await _case_and_link(api)
    data = {"option": "pickup_point", "pickup_point_id": "pp-nyc"}

    html = _is_page(await api.raw.post(link, data=data), 422)

    assert "Please choose one of the pickup points listed" in html


async def test_choosing_a_pickup_point_confirms_it(api: Api):
    case_id, link = await _case_and_link(api)
    data = {"option": "pickup_point", "pickup_point_id": "pp-corner"}

    html = _is_page(await api.raw.post(link, data=data), 200)

    assert "we have your choice: collection from Corner Shop, 12 High St." in html
    assert "We are booking it now" in html and "will be taken to" not in html
    await api.wait_for(case_id, "redelivery_scheduled")


async def test_a_link_for_a_closed_case_says_it_is_finished(api: Api, time_env):
    case_id, link = await _case_and_link(api)
    await api.post(f"/cases/{case_id}/cancel", json={"reason": "collected at depot"})
    await time_env.client.get_workflow_handle(case_id).result()

    html = _is_page(await api.raw.get(link), 200)
    assert "This delivery is finished" in html and "<form" not in html
    answer = _is_page(await api.raw.post(link, data=_window()), 409)
    assert "finished" in answer or "already answered" in answer


async def test_a_link_for_an_earlier_attempt_is_out_of_date(api: Api):
    body = failed_delivery()
    case_id, link = await _case_and_link(api, **body)
    await api.post("/cases/failed-deliveries", json={**body, "attempt_number": 2})
    await api.wait_for(case_id, "waiting_on_customer", subject_contains="attempt 2")

    html = _is_page(await api.raw.get(link), 200)

    assert "This link is out of date" in html and "<form" not in html
    assert "out of date" in _is_page(await api.raw.post(link, data=_window()), 409)


def _token(case_id: str, attempt: int = 1) -> str:
    return sign_link(
        LINK_SECRET.encode(),
        purpose="reschedule",
        case_id=case_id,
        expires_at=datetime.now(UTC) + timedelta(days=2),
        attempt=attempt,
    )


async def test_a_valid_link_for_an_unknown_case_is_a_404_page(api: Api):
    link = f"/r/{_token('failed-delivery-nobody')}"

    for response in (await api.raw.get(link), await api.raw.post(link, data=_window())):
        html = _is_page(response, 404)
        assert "We could not find this delivery" in html
        assert "problem" not in response.headers["content-type"]


async def test_temporal_unreachable_is_a_503_page(settings, engine, reference_data):
    down = await connect(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}), lazy=True)
    app = create_app(settings, temporal=down, engine=engine)
    link = f"/r/{_token('failed-delivery-somebody')}"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for response in (await client.get(link), await client.post(link, data=_window())):
            html = _is_page(response, 503)
            assert "Please try again shortly" in html


CUSTOMER_PAGE_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _has_page_headers(response) -> None:
    for name, value in CUSTOMER_PAGE_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    csp = response.headers["content-security-policy"]
    assert csp.startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert "script-src" not in csp


async def test_every_customer_page_is_uncached_unframed_and_sends_no_referrer(api: Api):
    _, link = await _case_and_link(api)

    for response in (
        await api.raw.get(link),
        await api.raw.post(link, data={"option": "neighbour"}),  # the form again (422)
        await api.raw.get("/r/garbage"),  # a notice page (400)
        await api.raw.post(link, data=_window(2)),  # the confirmation
    ):
        _has_page_headers(response)


async def test_the_access_log_never_holds_a_links_token(app, caplog):
    token = "eyJwIjoicmVzY2hlZHVsZSJ9.c2lnbmF0dXJl"
    access = logging.getLogger("uvicorn.access")

    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        # What uvicorn's protocols log for each request (uvicorn/protocols/http/*_impl.py).
        access.info('%s - "%s %s HTTP/%s" %d', "10.0.0.9:5123", "GET", f"/r/{token}", "1.1", 200)
        access.info('%s - "%s %s HTTP/%s" %d', "10.0.0.9:5123", "GET", "/cases?limit=5", "1.1", 200)

    assert token not in caplog.text and token.split(".")[1] not in caplog.text
    assert '"GET /r/…redacted… HTTP/1.1" 200' in caplog.text
    assert '"GET /cases?limit=5 HTTP/1.1" 200' in caplog.text


async def test_the_first_option_is_preselected_and_a_filled_option_is_inferred(api: Api):
    case_id, link = await _case_and_link(api)
    form = _is_page(await api.raw.get(link), 200)
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()

    # The neighbour's fields filled in, its radio not ticked: the neighbour is the choice
    # (the day and window selects post a value whatever the customer picks).
    html = _is_page(
        await api.raw.post(
            link,
            data={
                "date": day,
                "window": "morning",
                "neighbour_name": "Bob",
                "neighbour_address": "3 Main St",
            },
        ),
        200,
    )

    assert 'value="redelivery_window" checked' in form  # a radio is always ticked
    assert "we have your choice: leave it with Bob at 3 Main St" in html
    booked = await api.wait_for(case_id, "redelivery_scheduled")
    assert booked["details"]["redelivery_option"] == "neighbour"


async def test_a_day_without_its_radio_is_the_window_option_and_errors_are_sentences(api: Api):
    case_id, link = await _case_and_link(api)
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()

    both = await api.raw.post(
        link, data={"date": day, "window": "morning", "neighbour_name": "Bob", "line1": "2 Rd"}
    )
    half = await api.raw.post(link, data={"option": "neighbour", "neighbour_name": "Bob"})
    chosen = _is_page(await api.raw.post(link, data={"date": day, "window": "evening"}), 200)

    assert "Please tick one of the four ways to receive your parcel." in _is_page(
        both, 422
    )  # two options half-filled: ask
    assert "Neighbour&#39;s address is needed when the choice is “neighbour”." in (
        _is_page(half, 422)
    )
    assert "Input should be" not in both.text and "Input should be" not in half.text
    assert "in the evening" in chosen
    assert (await api.wait_for(case_id, "redelivery_scheduled"))["details"][
        "redelivery_option"
    ] == "redelivery_window"


async def test_the_page_names_the_shop_shows_the_address_masked_and_local_times(api: Api):
    _, link = await _case_and_link(api)

    html = _is_page(await api.raw.get(link), 200)

    assert "On behalf of <strong>Acme Retail</strong>" in html
    assert "The address we have: <strong>1 M… S…, London, E1 •••</strong>" in html
    assert "1 Main St" not in html and "6AN" not in html
    # One date format, in the depot's zone (London: GMT in December, BST in summer).
    assert re.search(r"by \w+day \d{1,2} \w+, \d\d:\d\d (GMT|BST)\.", html)
    assert " UTC" not in html


async def test_a_broken_link_says_what_to_do_next(api: Api):
    _, link = await _case_and_link(api)

    html = _is_page(await api.raw.get(link[:-6]), 400)

    assert "Please open it again from our email" in html and "shipment number" in html


def test_masked_addresses_keep_numbers_and_the_town():
    assert masked_address({"line1": "Flat 3, 22 Long Lane", "city": "Leeds"}) == (
        "F… 3, 22 L… L…, Leeds"
    )
    assert masked_address({"line1": "5 Rue Neuve", "postal_code": "75001"}) == "5 R… N…, 75•••"
