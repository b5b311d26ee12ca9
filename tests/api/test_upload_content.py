"""What an upload may bring in besides its content, through the API and through a signed
upload link: active PDFs are refused, images are stored as their picture alone, a text
attestation is plain text, and the same file on the same item is stored once."""

from __future__ import annotations

import pytest

from core.settings import Settings
from tests import files
from tests.api.claims import MAX_UPLOAD, open_gathering_claim, wait_until
from tests.api.conftest import Api, assert_problem
from tests.api.drivers import item, open_onboarding, uploaded
from tests.api.drivers import upload as upload_driver_document
from tests.api.test_claim_uploads import page, send, token
from tests.api.test_damage_claims import upload


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_upload_bytes": MAX_UPLOAD})


def _documents(detail: dict, kind: str) -> list[dict]:
    return [d for d in detail["documents"] if d["kind"] == kind]


@pytest.mark.parametrize(
    "make", [files.pdf_with_javascript, files.pdf_with_launch, files.pdf_with_embedded_file]
)
async def test_an_active_pdf_is_422_naming_file_and_stores_nothing(api: Api, sessions, make):
    case_id = await open_gathering_claim(api, sessions)

    response = await upload(
        api, case_id, "proof_of_value", make(), "receipt.pdf", "application/pdf"
    )

    assert_problem(response, 422, "file")
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert _documents(detail, "proof_of_value") == []


async def test_a_png_html_polyglot_reaches_the_case_as_the_picture_alone(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)

    response = await upload(api, case_id, "damage_photos", files.png_html_polyglot())

    assert response.status_code == 200, response.text
    [photo] = _documents(response.json(), "damage_photos")
    download = await api.get(photo["download_url"])
    assert download.status_code == 200 and download.content.startswith(b"\x89PNG")
    assert b"<html" not in download.content and b"script" not in download.content


async def test_the_same_file_on_the_same_item_twice_is_stored_once(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    photo = files.jpeg_with_gps()

    first = await upload(api, case_id, "damage_photos", photo, "a.jpg", "image/jpeg")
    again = await upload(api, case_id, "damage_photos", photo, "b.jpg", "image/jpeg")

    assert first.status_code == 200 and again.status_code == 200, again.text
    assert len(_documents(again.json(), "damage_photos")) == 1
    other = await upload(api, case_id, "damage_photos", files.png(color="blue"), "c.png")
    assert len(_documents(other.json(), "damage_photos")) == 2  # another photo is added


async def test_a_replayed_upload_link_stores_the_file_once(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    link = f"/r/{token(case_id)}"
    photo = files.png(color="green")

    assert page(await send(api, link, "damage_photos", photo), 200)
    await wait_until(
        api, case_id, lambda d: len(_documents(d, "damage_photos")) == 1, "holds the photo"
    )
    replayed = page(await send(api, link, "damage_photos", photo), 200)

    assert "We already have “photo.png” as photos of the damage: nothing was added" in replayed
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert len(_documents(detail, "damage_photos")) == 1, detail["documents"]


async def test_an_attestation_with_markup_after_a_zero_width_character_is_refused(
    api: Api, sessions
):
    case_id = await open_gathering_claim(api, sessions)
    link = f"/r/{token(case_id, ['customer_attestation'])}"
    disguised = "\u200b".encode() + files.HTML

    html = page(await send(api, link, "customer_attestation", disguised, "statement.txt"), 422)

    assert "markup" in html
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert _documents(detail, "customer_attestation") == []


async def test_a_driver_may_send_a_rejected_file_again(api: Api):
    case_id = (await open_onboarding(api))["case_id"]
    document_id = await uploaded(api, case_id, "tax_form")
    review = f"/cases/{case_id}/documents/{document_id}/review"
    rejected = await api.post(review, json={"decision": "rejected", "reason": "Wrongly."})
    assert rejected.status_code == 200, rejected.text

    again = await upload_driver_document(api, case_id, "tax_form")  # the very same file

    assert again.status_code == 200, again.text
    entry = item(again.json(), "tax_form")
    assert entry["status"] == "in_review" and entry["document"]["id"] != document_id
