"""Unpaid invoices in the ops console: the action forms follow the role (a write-off is for
admins), and a payment typed into the form is recorded exactly."""

from __future__ import annotations

import base64
import re

import pytest

from activities.pdf import render_pdf
from core.db import SessionFactory
from tests.api import test_console
from tests.api.claims import wait_until
from tests.api.conftest import Api
from tests.api.invoices import add_billing_contact, invoice
from tests.api.test_console import NewBrowser, case_path, forms_on

browser = test_console.browser  # the console tests' fixture: a logged-in browser per role


@pytest.fixture(autouse=True)
async def billing_contact(sessions: SessionFactory, reference_data: None) -> None:
    await add_billing_contact(sessions)


async def open_invoice(api: Api) -> str:
    response = await api.post("/cases/unpaid-invoices", json=invoice())
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    await api.wait_for(case_id, "awaiting_payment")
    return case_id


async def test_ops_see_every_allowed_action_but_the_write_off(browser: NewBrowser, api: Api):
    case_id = await open_invoice(api)
    allowed = set((await api.get(f"/cases/{case_id}")).json()["allowed_actions"])
    assert {"payments", "disputes", "promise-to-pay", "write-off"} <= allowed

    ops_forms = forms_on(await (await browser("ops")).page(case_path(case_id)))
    admin_forms = forms_on(await (await browser("admin")).page(case_path(case_id)))

    assert sorted(ops_forms) == sorted(allowed - {"write-off"})
    assert sorted(admin_forms) == sorted(allowed)


async def test_a_payment_through_the_console_lowers_the_balance(browser: NewBrowser, api: Api):
    case_id = await open_invoice(api)
    me = await browser("ops")

    response = await me.submit(
        f"{case_path(case_id)}/payments",
        {"amount": "234.50", "paid_on": "2026-12-01", "reference": "BACS-9"},
        from_page=case_path(case_id),
    )

    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{case_path(case_id)}?done=payments"
    await wait_until(
        api, case_id, lambda b: b["details"]["balance"] == "1000.00", "recorded the payment"
    )


async def test_an_ops_write_off_posted_to_the_console_is_refused(browser: NewBrowser, api: Api):
    case_id = await open_invoice(api)
    me = await browser("ops")

    response = await me.submit(
        f"{case_path(case_id)}/write-off", {"reason": "Gone."}, from_page=case_path(case_id)
    )

    assert response.status_code in (403, 409), response.text
    assert (await api.get(f"/cases/{case_id}")).json()["status"] == "awaiting_payment"


async def test_the_invoice_page_offers_the_pdf_and_no_checklist(browser: NewBrowser, api: Api):
    pdf = render_pdf(["Invoice"], title="Invoice")
    response = await api.post(
        "/cases/unpaid-invoices", json=invoice(invoice_pdf=base64.b64encode(pdf).decode())
    )
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]
    await api.wait_for(case_id, "awaiting_payment")
    me = await browser("viewer")

    page = await me.page(case_path(case_id))

    assert "<h3>Documents</h3>" in page.text and "<h3>Checklist</h3>" not in page.text
    (link,) = re.findall(r'href="(/console/cases/[^"]+/documents/[^"]+)"', page.text)
    download = await me.page(link)
    assert download.status_code == 200 and download.content == pdf
