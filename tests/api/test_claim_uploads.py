"""The claim's upload page at /r/{token}: a `claim-upload` link from the evidence request
email; server-rendered, multipart, errors as pages."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.security import InvalidToken, sign_link, verify_link, verify_link_for
from core.settings import Settings
from tests.api.claims import EXE, MAX_UPLOAD, open_gathering_claim, png, wait_until
from tests.api.conftest import LINK_SECRET, Api

SECRET = LINK_SECRET.encode()
CUSTOMER_KINDS = ["customer_attestation", "proof_of_value"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_upload_bytes": MAX_UPLOAD})


def token(case_id: str, kinds: list[str] | None = None, *, days: float = 2, round: int = 1) -> str:
    return sign_link(
        SECRET,
        purpose="claim-upload",
        case_id=case_id,
        expires_at=datetime.now(UTC) + timedelta(days=days),
        kinds=kinds or ["damage_photos"],
        round=round,
    )


def page(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<script" not in response.text and "Traceback" not in response.text
    return response.text


async def send(
    api: Api, link: str, kind: str, data: bytes, name: str = "photo.png"
) -> httpx.Response:
    return await api.raw.post(link, data={"kind": kind}, files={"file": (name, data, "image/png")})


async def test_the_customers_link_shows_their_items_a_statement_box_and_takes_several_files(
    api: Api, sessions
):
    case_id = await open_gathering_claim(api, sessions)
    link = f"/r/{token(case_id, CUSTOMER_KINDS)}"

    html = page(await api.raw.get(link), 200)

    assert '<form method="post" action="" enctype="multipart/form-data">' in html
    assert re.search(r'<input type="file" id="file" name="file" multiple accept="', html)
    assert re.search(r'<textarea id="statement" name="statement" rows="7" maxlength="10000">', html)
    assert '<option value="customer_attestation"' in html
    assert '<option value="proof_of_value"' in html
    assert 'value="damage_photos"' not in html  # not asked of this recipient
    # The customer's own items, not the driver's photos nor what the system gathered.
    assert "Statement of what was received: still needed" in html
    assert "Proof of value (invoice or receipt): still needed" in html
    assert "Photos of the damage" not in html and "Delivery attempt record" not in html
    assert "On behalf of <strong>Acme Retail</strong>" in html


async def test_the_drivers_link_shows_only_the_photos_and_no_statement_box(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)

    html = page(await api.raw.get(f"/r/{token(case_id)}"), 200)

    assert "Photos of the damage: still needed" in html
    assert "Statement of what was received" not in html and "Proof of value" not in html
    assert "<textarea" not in html and " multiple " in html
    assert "On behalf of <strong>Acme Retail</strong>" in html
    assert "Contact your depot" in html


async def test_the_footers_say_whom_to_ask_and_that_replies_are_not_read(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    customer = f"/r/{token(case_id, CUSTOMER_KINDS)}"
    statement = "The box was crushed and the vase inside it was broken."

    pages = [
        page(await api.raw.get(customer), 200),
        page(await api.raw.post(customer, data={"statement": statement}), 200),
    ]

    for html in pages:
        footer = html.split("<footer>")[1]
        assert "Reply to the email" not in footer
        assert "Contact Acme Retail, the shop that sent your parcel" in footer
        assert "Replies to our emails are not read" in footer and "use this page" in footer


async def test_sending_a_png_adds_it_to_the_case_by_link(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    link = f"/r/{token(case_id)}"

    html = page(await send(api, link, "damage_photos", png()), 200)

    assert "We have received “photo.png” as photos of the damage." in html
    assert "Photos of the damage: <strong>received</strong>" in html
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["details"]["checklist"]["damage_photos"] == "present"
    added = [e for e in detail["timeline"] if e["kind"] == "document_added"]
    assert added[-1]["actor"] == "link" and added[-1]["data"]["document_kind"] == "damage_photos"


async def test_the_link_in_the_drivers_email_opens_the_form(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    link = None
    for _ in range(100):
        messages = (await api.get("/messages", params={"case_id": case_id}, role="ops")).json()
        for message in messages["items"]:
            if message["key"] == f"{case_id}/r1/request/driver":
                match = re.search(r"http://testserver(/r/[A-Za-z0-9_.\-]+)", message["text_body"])
                link = match.group(1) if match else None
        if link:
            break
        await asyncio.sleep(0.05)
    assert link, "no evidence request to the driver"

    html = page(await api.raw.get(link), 200)

    assert '<option value="damage_photos"' in html
    page(await send(api, link, "damage_photos", png()), 200)


@pytest.mark.parametrize(
    ("kind", "data", "status", "message"),
    [
        ("damage_photos", EXE, 422, "“photo.png”: unsupported content"),
        ("proof_of_value", png(), 422, "Please choose which document you are sending"),
        ("damage_photos", b"", 422, "“photo.png”: the file is empty."),
        ("damage_photos", png() + b"\x00" * MAX_UPLOAD, 422, "“photo.png”: it is larger than 97"),
    ],
)
async def test_a_refused_upload_re_renders_the_form_with_the_reason(
    api: Api, sessions, kind: str, data: bytes, status: int, message: str
):
    case_id = await open_gathering_claim(api, sessions)
    link = f"/r/{token(case_id)}"

    html = page(await send(api, link, kind, data, name="photo.png"), status)

    assert message in html and 'enctype="multipart/form-data"' in html
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["details"]["checklist"]["damage_photos"] == "missing"


async def test_an_expired_link_is_a_410_page(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    link = f"/r/{token(case_id, days=-1)}"

    assert "This link has expired" in page(await api.raw.get(link), 410)
    assert "documents" in page(await send(api, link, "damage_photos", png()), 410)
    customer = f"/r/{token(case_id, CUSTOMER_KINDS, days=-1)}"
    typed = await api.raw.post(customer, data={"statement": "The vase was broken."})
    assert "The time to send documents for this claim has passed" in page(typed, 410)
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["details"]["checklist"]["customer_attestation"] == "missing"


async def test_a_tampered_link_is_a_400_page(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    body, signature = token(case_id).split(".")
    tampered = f"/r/{body[:-2]}xx.{signature}"

    assert "This link is not valid" in page(await api.raw.get(tampered), 400)
    bad_kinds = f"/r/{token(case_id, ['selfies'])}"
    assert "This link is not valid" in page(await api.raw.get(bad_kinds), 400)


async def test_once_filed_the_link_says_so_and_takes_nothing(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    reasons: dict[str, Any] = {
        "damage_photos": "none taken",
        "customer_attestation": "not received",
        "proof_of_value": "not received",
    }
    await api.post(f"/cases/{case_id}/file", json={"missing_reasons": reasons})
    await wait_until(api, case_id, lambda b: b["status"] == "awaiting_decision", "was filed")
    link = f"/r/{token(case_id)}"

    html = page(await api.raw.get(link), 200)

    assert "This claim has been filed" in html and "<form" not in html
    assert "filed" in page(await send(api, link, "damage_photos", png()), 409)


async def test_a_link_from_an_earlier_round_is_out_of_date(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    link = f"/r/{token(case_id, round=0)}"

    assert "This link is out of date" in page(await api.raw.get(link), 200)


async def test_a_reschedule_link_still_opens_the_reschedule_page(api: Api):
    case_id = (await api.open_case()).json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")

    html = page(await api.raw.get(await api.customer_link(case_id)), 200)

    assert 'value="redelivery_window"' in html


# --- core.security.verify_link_for ---------------------------------------------------------


def test_verify_link_for_accepts_any_of_its_purposes_only():
    expires = datetime.now(UTC) + timedelta(hours=1)
    upload = sign_link(SECRET, purpose="claim-upload", case_id="c-1", expires_at=expires, round=1)

    claims = verify_link_for(SECRET, upload, purposes=("reschedule", "claim-upload"))

    assert claims.purpose == "claim-upload" and claims.case_id == "c-1"
    assert claims.data == {"round": 1}
    with pytest.raises(InvalidToken, match="not valid for this page"):
        verify_link_for(SECRET, upload, purposes=frozenset({"reschedule"}))
    with pytest.raises(InvalidToken, match="not valid for this page"):
        verify_link(SECRET, upload, purpose="reschedule")
    with pytest.raises(InvalidToken, match="expired"):
        verify_link_for(
            SECRET, upload, purposes=("claim-upload",), now=expires + timedelta(seconds=1)
        )
    with pytest.raises(InvalidToken, match="not valid"):
        verify_link_for(b"another secret", upload, purposes=("claim-upload",))
