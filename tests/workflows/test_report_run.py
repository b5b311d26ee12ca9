"""The report run in simulated time with the real activities on SQLite and PostgreSQL, the email
backend captured at the edge: a weekly report emailed to each reporting contact and copied to
the account manager, its parts read back (the HTML with the charts inline by content id, the
text, the PDF with the figures and charts, the CSV of every row); run again, nothing is sent
twice; a client without a reporting contact gets nothing and its account manager is told once;
the daily summary's lines link to the console; bad periods and unscheduled runs fail with their
types."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pypdf
import pytest
from sqlmodel import col, select
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.email_backends import OutgoingEmail
from activities.messaging import MessagingActivities
from activities.rendering import EmailRenderer
from activities.reporting import ReportingActivities
from core.db import SessionFactory
from core.documents import LocalDocumentStore
from schemas.report_figures import ROW_COLUMNS
from schemas.reporting import (
    BAD_PERIOD,
    NOT_SCHEDULED,
    ReportKind,
    ReportOutcome,
    ReportRunInput,
    ReportRunResult,
    report_id,
)
from schemas.tables import ClientReport, Message
from tests.activities.email_checks import assert_phone_width, missing_files
from tests.reporting_data import CLIENT, DAY, WEEK, seed_client, seed_week
from workflows.report_run import ReportRunWorkflow


class CapturingBackend:
    """The edge of the world: keeps every email as handed to the provider, bytes included."""

    name = "outbox"

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []

    async def send(self, email: OutgoingEmail) -> str:
        self.sent.append(email)
        return f"captured-{email.message_id}"


@pytest.fixture
def backend() -> CapturingBackend:
    return CapturingBackend()


@pytest.fixture
async def worker(
    time_env: WorkflowEnvironment,
    task_queue: str,
    sessions: SessionFactory,
    backend: CapturingBackend,
    tmp_path: Path,
) -> AsyncIterator[Worker]:
    documents = LocalDocumentStore(tmp_path / "documents")
    reporting = ReportingActivities(
        sessions, documents, issuer="casedesk", public_base_url="https://casedesk.example/"
    )
    messaging = MessagingActivities(
        sessions=sessions,
        renderer=EmailRenderer(),
        backend=backend,
        link_secret=b"x" * 32,
        public_base_url="https://casedesk.example",
        trace_url_for=lambda workflow_id: f"https://temporal.example/{workflow_id}",
        documents=documents,
    )
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[ReportRunWorkflow],
        activities=[
            reporting.scheduled_report_period,
            reporting.prepare_report,
            reporting.mark_report_sent,
            messaging.send_message,
        ],
    ) as running:
        yield running


async def run(
    env: WorkflowEnvironment, task_queue: str, kind: ReportKind, period: str | None
) -> ReportRunResult:
    workflow_id = (
        report_id(kind, CLIENT, period) if period else f"report-scheduled-{uuid.uuid4().hex}"
    )
    return await env.client.execute_workflow(
        ReportRunWorkflow.run,
        ReportRunInput(client_id=CLIENT, kind=kind, period=period, requested_by="ops:test"),
        id=workflow_id,
        task_queue=task_queue,
    )


async def outbox(sessions: SessionFactory) -> list[Message]:
    async with sessions() as session:
        return list((await session.exec(select(Message).order_by(col(Message.key)))).all())


async def test_a_weekly_report_goes_to_each_reporting_contact_and_a_copy_to_the_account_manager(
    time_env, task_queue, worker, sessions, backend
):
    rita, rob = await seed_client(sessions)
    await seed_week(sessions)

    result = await run(time_env, task_queue, ReportKind.WEEKLY, WEEK)

    key = "report-weekly-acme-2026-W48"
    assert (result.outcome, result.report_id, result.recipients) == (ReportOutcome.SENT, key, 2)
    assert sorted(result.message_keys) == sorted(
        [f"{key}/to/{rita}", f"{key}/to/{rob}", f"{key}/copy/account-manager"]
    )
    assert sorted(email.to_email for email in backend.sent) == [
        "adam@ours.example",
        "rita@acme.example",
        "rob@acme.example",
    ]
    rows = await outbox(sessions)
    assert {row.status.value for row in rows} == {"sent"}
    assert {row.case_id for row in rows} == {key}
    copy = next(e for e in backend.sent if e.to_email == "adam@ours.example")
    assert copy.subject == "Copy: Weekly performance report for Acme Retail: 2026-W48"
    email = next(e for e in backend.sent if e.to_email == "rita@acme.example")
    assert email.subject == "Weekly performance report for Acme Retail: 2026-W48"

    # the HTML shows each chart by content id, and each content id is an inline PNG
    cids = re.findall(r'src="cid:([^"]+)"', email.html)
    assert cids == ["trend", "failed-reasons", "claims"]
    inline = {a.content_id: a for a in email.attachments if a.content_id}
    assert set(inline) == set(cids)
    assert all(
        a.content_type == "image/png" and a.data.startswith(b"\x89PNG") for a in inline.values()
    )
    assert "First-attempt success" in email.html and "<strong>75.0%</strong>" in email.html
    assert "4 weeks: no data · no data · 100.0% · 75.0%" in email.html
    assert 'style="display:block;width:100%;height:auto;border:0;"' in email.html
    # phone width: the charts shrink to the column, nothing else is fixed-width
    images = re.findall(r"<img[^>]*>", email.html)
    assert len(images) == 3 and all("width:100%;height:auto" in image for image in images)
    assert_phone_width(re.sub(r"<img[^>]*>", "", email.html))
    # the text part says the same figures
    assert (
        "First-attempt success: 75.0% (week before: 100.0%; "
        "4 weeks: no data, no data, 100.0%, 75.0%)" in email.text
    )
    assert "On-time rate: 66.7% (week before: no data;" in email.text
    assert "Claims per 1,000 stops: 100.00" in email.text
    assert "Overdue balance: 70.00 GBP" in email.text
    assert "https://casedesk.example/console/reports/acme" in email.text

    files = {a.filename: a for a in email.attachments if not a.content_id}
    assert set(files) == {f"{key}.pdf", f"{key}.csv"}
    pdf = pypdf.PdfReader(io.BytesIO(files[f"{key}.pdf"].data))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "Weekly performance report 2026-W48" in text
    assert "Acme Retail (client acme)" in text
    assert "First-attempt success" in text and "75.0%" in text and "66.7%" in text
    images = [image for page in pdf.pages for image in page.images]
    assert len(images) == 3  # the three charts

    lines = list(csv.DictReader(io.StringIO(files[f"{key}.csv"].data.decode())))
    assert tuple(lines[0]) == ROW_COLUMNS
    stops = [line for line in lines if line["row"] == "stop"]
    assert len(stops) == 10
    s8 = next(line for line in stops if line["id"] == "S8")
    assert (s8["at_utc"], s8["reason"], s8["first_attempt"]) == (
        "2026-11-23T23:59:00Z",
        "reason not reported",
        "true",
    )
    cases = {line["id"]: line for line in lines if line["row"] == "case"}
    assert set(cases) == {
        "failed-delivery-S7",
        "damage-claim-S5",
        "unpaid-invoice-INV-ACME-000001",
    }
    assert cases["failed-delivery-S7"]["hours_to_resolve"] == "30"
    assert cases["failed-delivery-S7"]["returned_to_sender_in_period"] == "true"
    assert cases["damage-claim-S5"]["filed_within_72h"] == "false"
    assert cases["unpaid-invoice-INV-ACME-000001"]["balance_at_end"] == "70.00"

    async with sessions() as session:
        stored = await session.get(ClientReport, key)
    assert stored is not None and stored.status == "sent" and stored.recipients == 3
    assert set(stored.charts) == {"trend", "failed-reasons", "claims"}
    assert stored.figures["figures"]["first_attempt_success"]["percent"] == "75.0"


async def test_the_same_client_kind_and_period_is_sent_once(
    time_env, task_queue, worker, sessions, backend
):
    await seed_client(sessions)
    await seed_week(sessions)
    first = await run(time_env, task_queue, ReportKind.WEEKLY, WEEK)

    again = await run(time_env, task_queue, ReportKind.WEEKLY, WEEK)

    assert first.outcome is ReportOutcome.SENT
    assert again.outcome is ReportOutcome.ALREADY_SENT
    assert again.message == "report-weekly-acme-2026-W48 was sent before: nothing sent"
    assert len(backend.sent) == 3 and len(await outbox(sessions)) == 3


async def test_only_the_contacts_the_settings_list_receive_it(
    time_env, task_queue, worker, sessions, backend
):
    ids = await seed_client(sessions, reporting_contacts=2)
    async with sessions() as session:
        from schemas.tables import Client

        client = await session.get(Client, CLIENT)
        assert client is not None
        client.reporting = {"weekly": True, "contacts": [str(ids[1])]}
        session.add(client)
        await session.commit()

    result = await run(time_env, task_queue, ReportKind.WEEKLY, WEEK)

    assert result.recipients == 1
    assert sorted(e.to_email for e in backend.sent) == ["adam@ours.example", "rob@acme.example"]


async def test_no_reporting_contact_sends_nothing_and_tells_the_account_manager_once(
    time_env, task_queue, worker, sessions, backend
):
    await seed_client(sessions, reporting_contacts=0)

    first = await run(time_env, task_queue, ReportKind.DAILY, "2026-11-24")
    second = await run(time_env, task_queue, ReportKind.DAILY, DAY)

    for result in (first, second):
        assert result.outcome is ReportOutcome.NO_RECIPIENTS
        assert result.message == "acme has no reporting contact: nothing sent"
    [notice] = backend.sent
    assert notice.to_email == "adam@ours.example"
    assert notice.subject == "No reporting contact for Acme Retail: its reports are not being sent"
    assert "the daily report for 2026-11-24 was not sent" in notice.text
    assert_phone_width(notice.html)
    [row] = await outbox(sessions)
    assert row.key == "reports-acme/no-reporting-contact"
    async with sessions() as session:
        stored = await session.get(ClientReport, "report-daily-acme-2026-11-25")
    assert stored is not None and stored.status == "no_recipients"


async def test_no_reporting_contact_and_no_account_manager_is_a_problem_in_the_result(
    time_env, task_queue, worker, sessions, backend
):
    await seed_client(sessions, reporting_contacts=0, account_manager=False)

    result = await run(time_env, task_queue, ReportKind.WEEKLY, WEEK)

    assert result.outcome is ReportOutcome.NO_RECIPIENTS
    assert result.problems == ["acme has neither a reporting contact nor an account manager"]
    assert backend.sent == []


async def test_the_daily_summary_links_each_case_to_the_console(
    time_env, task_queue, worker, sessions, backend
):
    await seed_client(sessions, reporting_contacts=1)
    await seed_week(sessions)

    result = await run(time_env, task_queue, ReportKind.DAILY, DAY)

    assert result.outcome is ReportOutcome.SENT
    email = next(e for e in backend.sent if e.to_email == "rita@acme.example")
    assert email.subject == "Daily exception summary for Acme Retail: Wed 25 Nov 2026"
    assert email.attachments == ()  # the daily summary has no charts nor files
    assert "Claims opened: 1" in email.text
    assert "- damage-claim-S5 (damage claim, awaiting decision), Wed 25 Nov 2026, 09:00 GMT" in (
        email.text
    )
    assert "filing deadline Sat 28 Nov 2026, 10:00 GMT" in email.text
    assert "https://casedesk.example/console/cases/damage-claim-S5" in email.text
    assert 'href="https://casedesk.example/console/cases/damage-claim-S5"' in email.html
    # still open at the day's end, escalated on the day: listed
    assert "Escalations still open: 1" in email.text
    assert "Failed deliveries opened: 0" in email.text
    assert_phone_width(email.html)


def test_every_report_template_has_its_three_files():
    assert (
        missing_files(
            ["reports/daily_summary", "reports/weekly_report", "reports/no_reporting_contact"]
        )
        == []
    )


@pytest.mark.parametrize(
    ("kind", "period", "message"),
    [
        (ReportKind.WEEKLY, "2026-48", "not an ISO week"),
        (ReportKind.DAILY, "2099-01-01", "is not over yet in Europe/London"),
    ],
)
async def test_a_bad_period_fails_the_run_with_its_type(
    time_env, task_queue, worker, sessions, backend, kind, period, message
):
    await seed_client(sessions)

    with pytest.raises(WorkflowFailureError) as failed:
        await run(time_env, task_queue, kind, period)

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == BAD_PERIOD
    assert message in cause.message
    assert backend.sent == []


async def test_a_run_without_a_period_needs_a_schedule(
    time_env, task_queue, worker, sessions, backend
):
    await seed_client(sessions)

    with pytest.raises(WorkflowFailureError) as failed:
        await run(time_env, task_queue, ReportKind.DAILY, None)

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == NOT_SCHEDULED
