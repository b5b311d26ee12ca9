"""What the claim's upload page does with one send: several files at once (each checked and
recorded on its own), the customer's typed statement (kept as their attestation, exactly as
an uploaded plain-text statement), and every bad input answered with a sentence at its
field, never a 500: a file too big or of the wrong type is named and the rest is kept; no
file and no statement, too many files, a statement that is too long, has markup or comes
through the driver's link send nothing."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.security import sign_link
from core.settings import Settings
from tests import files
from tests.api.claims import EXE, MAX_UPLOAD, open_gathering_claim, png
from tests.api.conftest import LINK_SECRET, Api

STATEMENT = "I received the box crushed on one side.\nThe vase inside was broken in three pieces."


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_upload_bytes": MAX_UPLOAD})


def link(case_id: str, kinds: list[str]) -> str:
    token = sign_link(
        LINK_SECRET.encode(),
        purpose="claim-upload",
        case_id=case_id,
        expires_at=datetime.now(UTC) + timedelta(days=2),
        kinds=kinds,
        round=1,
    )
    return f"/r/{token}"


def driver_link(case_id: str) -> str:
    return link(case_id, ["damage_photos"])


def customer_link(case_id: str) -> str:
    return link(case_id, ["customer_attestation", "proof_of_value"])


def page(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<script" not in response.text and "Traceback" not in response.text
    return response.text


async def post(
    api: Api,
    url: str,
    sent: list[tuple[str, bytes]] | None = None,
    **fields: str,
) -> httpx.Response:
    parts = [("file", (name, data, "application/octet-stream")) for name, data in sent or []]
    return await api.raw.post(url, data=fields, files=parts or None)


async def documents(api: Api, case_id: str, kind: str) -> list[dict[str, Any]]:
    detail = (await api.get(f"/cases/{case_id}")).json()
    return [doc for doc in detail["documents"] if doc["kind"] == kind]


async def test_several_photos_in_one_send_are_each_added(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    photos = [(f"side-{n}.png", png(shade=40 * n)) for n in range(1, 4)]

    html = page(await post(api, driver_link(case_id), photos, kind="damage_photos"), 200)

    assert (
        "We have received 3 files as photos of the damage: “side-1.png”, “side-2.png” and "
        "“side-3.png”."
    ) in html
    assert len(await documents(api, case_id, "damage_photos")) == 3
    detail = (await api.get(f"/cases/{case_id}")).json()
    added = [e for e in detail["timeline"] if e["kind"] == "document_added"]
    assert [e["actor"] for e in added[-3:]] == ["link", "link", "link"]


async def test_a_typed_statement_is_kept_as_the_customers_attestation(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)

    html = page(await post(api, customer_link(case_id), statement=STATEMENT), 200)

    assert "We have received your written statement." in html
    assert "Statement of what was received: <strong>received</strong>" in html
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["details"]["checklist"]["customer_attestation"] == "present"
    added = [e for e in detail["timeline"] if e["kind"] == "document_added"]
    assert added[-1]["actor"] == "link"
    assert added[-1]["data"]["document_kind"] == "customer_attestation"
    # Stored as an uploaded plain-text statement would be: its very bytes, as text.
    (stored,) = await documents(api, case_id, "customer_attestation")
    assert stored["sha256"] == hashlib.sha256(STATEMENT.encode()).hexdigest()
    download = await api.get(f"/cases/{case_id}/documents/{stored['id']}")
    assert download.status_code == 200, download.text
    assert download.headers["content-type"].startswith("text/plain")
    assert download.content == STATEMENT.encode()


async def test_a_statement_typed_with_browser_line_breaks_is_the_same_as_the_file(
    api: Api, sessions
):
    case_id = await open_gathering_claim(api, sessions)
    await post(api, customer_link(case_id), statement=STATEMENT.replace("\n", "\r\n") + "\r\n")

    uploaded = await post(
        api,
        customer_link(case_id),
        [("statement.txt", STATEMENT.encode())],
        kind="customer_attestation",
    )

    assert "We already have “statement.txt” as statement of what was received" in page(
        uploaded, 200
    )
    assert len(await documents(api, case_id, "customer_attestation")) == 1


async def test_a_statement_and_files_in_one_send_are_each_recorded(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    receipts = [("receipt.pdf", files.pdf()), ("photo-of-receipt.png", png())]

    sent = await post(
        api, customer_link(case_id), receipts, kind="proof_of_value", statement=STATEMENT
    )

    html = page(sent, 200)
    assert (
        "We have received your written statement and 2 files as proof of value (invoice or "
        "receipt): “receipt.pdf” and “photo-of-receipt.png”."
    ) in html
    assert len(await documents(api, case_id, "customer_attestation")) == 1
    assert len(await documents(api, case_id, "proof_of_value")) == 2


async def test_a_bad_file_among_good_ones_is_named_and_the_others_are_kept(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    sent = [
        ("front.png", png(shade=10)),
        ("setup.exe", EXE),
        ("receipt.pdf", files.pdf()),
        ("huge.png", png() + b"\x00" * MAX_UPLOAD),
        ("back.png", png(shade=200)),
    ]

    html = page(await post(api, driver_link(case_id), sent, kind="damage_photos"), 422)

    assert "We have received 2 files as photos of the damage: “front.png” and “back.png”." in html
    assert "3 items could not be accepted: see below." in html
    assert "<li>“setup.exe”: unsupported content: send a PDF or an image" in html
    assert "“receipt.pdf”: it is a PDF file, and photos of the damage may be PNG, JPG" in html
    assert "“huge.png”: it is larger than 97 KB, the most one file may be." in html
    assert 'aria-describedby="file-error"' in html and 'id="file-error"' in html
    assert len(await documents(api, case_id, "damage_photos")) == 2


async def test_a_statement_with_markup_is_shown_again_in_its_box_and_the_files_are_kept(
    api: Api, sessions
):
    case_id = await open_gathering_claim(api, sessions)
    typed = "The vase was <b>broken</b>."

    sent = await post(
        api, customer_link(case_id), [("r.png", png())], kind="proof_of_value", statement=typed
    )

    html = page(sent, 422)
    assert "We have received “r.png” as proof of value (invoice or receipt)." in html
    assert '<p class="field-error" id="statement-error">We could not keep your statement' in html
    assert "angle brackets" in html
    assert "The vase was &lt;b&gt;broken&lt;/b&gt;.</textarea>" in html  # nothing lost
    assert "Proof of value (invoice or receipt): <strong>received</strong>" in html
    assert await documents(api, case_id, "customer_attestation") == []
    assert len(await documents(api, case_id, "proof_of_value")) == 1


@pytest.mark.parametrize(
    ("url", "sent", "fields", "field", "message"),
    [
        (customer_link, [], {"statement": "  \r\n "}, "statement", "Please write your statement"),
        (driver_link, [], {"kind": "damage_photos"}, "file", "Please choose a file to send."),
        (
            driver_link,
            [(f"p{n}.png", png(shade=n)) for n in range(11)],
            {"kind": "damage_photos"},
            "file",
            "You chose 11 files: please send at most 10 at a time.",
        ),
        (
            customer_link,
            [],
            {"statement": "x" * 10_001},
            "statement",
            "Your statement is 10,001 characters long: please keep it to 10,000",
        ),
        (
            driver_link,
            [("p.png", png())],
            {"kind": "customer_attestation"},
            "kind",
            "Please choose which document you are sending.",
        ),
    ],
    ids=["empty-statement", "no-file", "too-many-files", "long-statement", "kind"],
)
async def test_a_send_that_cannot_be_understood_sends_nothing_and_says_which_field(
    api: Api,
    sessions,
    url: Any,
    sent: list[tuple[str, bytes]],
    fields: dict[str, str],
    field: str,
    message: str,
):
    case_id = await open_gathering_claim(api, sessions)

    html = page(await post(api, url(case_id), sent, **fields), 422)

    assert "Nothing was sent yet: please check the fields marked below." in html
    assert f'<p class="field-error" id="{field}-error">{message}' in html
    assert f'aria-describedby="{field}-error"' in html
    detail = (await api.get(f"/cases/{case_id}")).json()
    kinds = {doc["kind"] for doc in detail["documents"]}
    assert kinds <= {"attempt_record", "proof_of_delivery"}  # the system's evidence only


async def test_the_drivers_link_takes_no_statement(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    sent = [("p.png", png())]

    response = await post(api, driver_link(case_id), sent, kind="damage_photos", statement="Hi")

    html = page(response, 422)
    assert "This link does not take a written statement: please send files. Nothing was" in html
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["details"]["checklist"]["damage_photos"] == "missing"


async def test_a_body_larger_than_ten_files_is_413_before_it_is_read(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    headers = {"content-type": "multipart/form-data; boundary=x", "content-length": "99999999"}

    response = await api.raw.post(driver_link(case_id), content=b"--x--\r\n", headers=headers)

    html = page(response, 413)
    assert "These files are too large to send together" in html
    assert "Nothing was sent: please send fewer at a time." in html


async def test_a_malformed_body_is_a_400_form_page(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    headers = {"content-type": "multipart/form-data"}  # no boundary: cannot be read

    response = await api.raw.post(driver_link(case_id), content=b"--x\r\nnonsense", headers=headers)

    assert "We could not read your upload" in page(response, 400)
