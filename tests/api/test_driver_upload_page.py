"""A driver's upload page at /r/{token}: the `driver-upload` link in the welcome (and in a
rejection, and in the compliance watch's renewal request); what is still requested with its
file types, uploads by `link`, and a notice page (never JSON) once the case has closed."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from core.db import SessionFactory
from core.security import sign_link
from tests.api.claims import EXE, png, wait_until
from tests.api.conftest import LINK_SECRET, Api
from tests.api.drivers import (
    CARGO_BIKE_ITEMS,
    activate,
    add_coordinator,
    approve,
    item,
    message_link,
    open_onboarding,
    today,
    uploaded,
)

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
async def coordinator(sessions: SessionFactory) -> None:
    await add_coordinator(sessions)


def page(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<script" not in response.text and "Traceback" not in response.text
    return response.text


async def send(api: Api, link: str, kind: str, data: bytes) -> httpx.Response:
    files = {"file": ("scan.png", data, "image/png")}
    return await api.raw.post(link, data={"kind": kind}, files=files)


async def welcome(api: Api) -> tuple[str, str]:
    """An onboarding case and the link from its stored welcome email."""
    case_id = (await open_onboarding(api))["case_id"]
    return case_id, await message_link(api, case_id, "welcome")


async def test_the_welcome_link_lists_what_is_requested_with_its_file_types(api: Api):
    _, link = await welcome(api)

    html = page(await api.raw.get(link), 200)

    assert '<form method="post" action="" enctype="multipart/form-data">' in html
    # Everything a cargo bike's driver hands in (no vehicle registration), labelled.
    assert re.findall(r'<option value="([a-z_]+)"', html) == CARGO_BIKE_ITEMS
    assert '<option value="tax_form">Tax form</option>' in html
    assert "Accepted file types: PDF, PNG, JPG, WEBP, HEIC, HEIF." in html
    assert "Driving licence: <strong>still needed</strong>" in html


async def test_a_document_sent_through_the_link_waits_for_review_by_link(api: Api):
    case_id, link = await welcome(api)

    html = page(await send(api, link, "proof_of_insurance", png()), 200)

    assert "We have received “scan.png” as proof of insurance." in html
    assert "Proof of insurance: <strong>received, being checked</strong>" in html
    assert "Send another document" in html
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert item(detail, "proof_of_insurance")["status"] == "in_review"
    added = [e for e in detail["timeline"] if e["kind"] == "document_added"]
    assert added[-1]["actor"] == "link"
    assert 'value="proof_of_insurance"' not in page(await api.raw.get(link), 200)


@pytest.mark.parametrize(
    ("kind", "data", "status", "message"),
    [
        ("tax_form", EXE, 422, "“scan.png”: unsupported content"),
        ("vehicle_registration", png(), 422, "Please choose which document you are sending"),
        ("tax_form", b"", 422, "“scan.png”: the file is empty."),
    ],
)
async def test_a_refused_upload_re_renders_the_form_with_the_reason(
    api: Api, kind: str, data: bytes, status: int, message: str
):
    case_id, link = await welcome(api)

    html = page(await send(api, link, kind, data), status)

    assert message in html and 'enctype="multipart/form-data"' in html
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert {entry["status"] for entry in detail["details"]["checklist"]} == {"requested"}


async def test_a_rejected_document_is_asked_for_again_through_a_fresh_link(
    api: Api, time_env: WorkflowEnvironment
):
    case_id, _ = await welcome(api)
    document_id = await uploaded(api, case_id, "tax_form")
    path = f"/cases/{case_id}/documents/{document_id}/review"
    await api.post(path, json={"decision": "rejected", "reason": "It is not signed."})

    link = await message_link(api, case_id, f"rejected-{document_id}")
    html = page(await api.raw.get(link), 200)

    assert '<option value="tax_form">' in html
    assert "we could not accept the last one: It is not signed." in html
    page(await send(api, link, "tax_form", png()), 200)


async def test_once_everything_is_in_the_link_says_so(api: Api):
    case_id, link = await welcome(api)
    detail = (await api.get(f"/cases/{case_id}")).json()
    for entry in detail["details"]["checklist"]:
        await uploaded(api, case_id, entry["kind"])

    html = page(await api.raw.get(link), 200)

    assert "Thank you: we have your documents" in html and "<form" not in html


async def test_after_abandonment_the_link_no_longer_works(api: Api, time_env: WorkflowEnvironment):
    case_id, link = await welcome(api)

    await time_env.sleep(30 * DAY + timedelta(hours=1))
    await wait_until(api, case_id, lambda b: b["resolution"] == "abandoned", "was abandoned")

    html = page(await api.raw.get(link), 410)
    assert "This link no longer works" in html and "has passed" in html and "<form" not in html
    answer = page(await send(api, link, "tax_form", png()), 410)
    assert "This link no longer works" in answer
    # A link still within its own lifetime says the same: the case is over.
    fresh = sign_link(
        LINK_SECRET.encode(),
        purpose="driver-upload",
        case_id=case_id,
        expires_at=await time_env.get_current_time() + DAY,
        kinds=["tax_form"],
    )
    closed = page(await api.raw.get(f"/r/{fresh}"), 410)
    assert "This link no longer works" in closed and "has passed" in closed
    record = (await api.get(f"/drivers/{case_id.removeprefix('driver-onboarding-')}")).json()
    assert record["status"] == "abandoned" and record["open_case"] is None


async def test_after_withdrawal_the_link_no_longer_works(api: Api):
    case_id, link = await welcome(api)
    response = await api.post(f"/cases/{case_id}/cancel", json={"reason": "Took another job."})
    assert response.status_code == 200, response.text
    await wait_until(api, case_id, lambda b: b["resolution"] == "withdrawn", "was withdrawn")

    html = page(await api.raw.get(link), 410)

    assert "This link no longer works" in html and "stopped" in html


async def test_after_activation_the_link_no_longer_works(api: Api, time_env: WorkflowEnvironment):
    case_id, link = await welcome(api)
    await activate(api, case_id, expires_on=await today(time_env) + 200 * DAY)

    html = page(await api.raw.get(link), 410)

    assert "This link no longer works" in html and "complete" in html


async def test_the_watchs_renewal_link_takes_the_replacement(
    api: Api, time_env: WorkflowEnvironment
):
    detail = await open_onboarding(api)
    expires_on = await today(time_env) + 40 * DAY
    await activate(api, detail["case_id"], expires_on=expires_on)
    watch_id = f"driver-compliance-{detail['business_key']}"
    await wait_until(api, watch_id, lambda b: b["status"] == "monitoring", "watched")

    await time_env.sleep(11 * DAY)  # 30 days before the expiry: the renewal is asked for
    link = await message_link(
        api, watch_id, f"driving_licence-{expires_on.isoformat()}/renewal-request"
    )
    html = page(await api.raw.get(link), 200)

    assert "Renew your documents" in html and '<option value="driving_licence">' in html
    # The new licence: another file than the one expiring (the same one is already held).
    page(await send(api, link, "driving_licence", png(shade=200)), 200)
    watch = await wait_until(
        api,
        watch_id,
        lambda b: item(b, "driving_licence")["status"] == "in_review",
        "received the renewal",
    )
    renewal = item(watch, "driving_licence")["document"]["id"]
    assert renewal in [d["id"] for d in watch["documents"]]
    approved = await approve(api, watch_id, renewal, expires_on + 365 * DAY)
    assert approved.status_code == 200, approved.text
