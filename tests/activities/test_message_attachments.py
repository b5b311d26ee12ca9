"""send_message with stored documents attached: read from the store, checked against the
reference's checksum, handed to the backend, and named (never stored again) on the outbox row."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.email_backends import EmailAttachment, OutboxSink, SendGridBackend
from activities.errors import DOCUMENT_INTEGRITY, DOCUMENT_MISSING, PERMANENT_MESSAGE_FAILURES
from core.documents import LocalDocumentStore
from schemas.documents import DocumentKind, DocumentRef
from schemas.enums import MessageStatus
from tests import files
from tests.activities.conftest import FakeSendGrid, outbox
from tests.activities.test_messaging import RecordingBackend, messaging, notice

PDF = files.pdf()


def a_zip() -> bytes:
    """The same bytes every call (a fixed entry time: writestr with a bare name stamps now)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("cover.txt", (2026, 11, 1, 0, 0, 0)), "claim cover sheet")
    return buffer.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> LocalDocumentStore:
    return LocalDocumentStore(tmp_path / "documents")


@pytest.fixture
def receipt(store: LocalDocumentStore) -> DocumentRef:
    return store.put(PDF, kind=DocumentKind.PROOF_OF_VALUE, declared_name="../receipt.PNG")


@pytest.fixture
def package(store: LocalDocumentStore) -> DocumentRef:
    return store.put_package(a_zip(), name="claim-package-SHP-1.zip")


async def test_attachments_reach_the_backend_with_their_bytes_type_and_a_safe_name(
    reference_data, store, receipt, package, activity_env
):
    backend = RecordingBackend()
    acts = messaging(reference_data, backend, documents=store)

    await activity_env.run(acts.send_message, notice(attachments=[receipt, package]))

    [email] = backend.sent
    assert email.attachments == (
        # The name keeps the sanitized stem; the extension follows the detected type.
        EmailAttachment("receipt.pdf", "application/pdf", PDF),
        EmailAttachment("claim-package-SHP-1.zip", "application/zip", a_zip()),
    )


async def test_outbox_row_names_the_attachments_but_keeps_no_bytes(
    reference_data, store, receipt, activity_env
):
    acts = messaging(reference_data, OutboxSink(), documents=store)

    await activity_env.run(acts.send_message, notice(attachments=[receipt]))

    [row] = await outbox(reference_data)
    assert row.status is MessageStatus.SENT
    assert row.attachments == [
        {
            "id": receipt.id,
            "kind": "proof_of_value",
            "name": "receipt.pdf",
            "content_type": "application/pdf",
            "sha256": hashlib.sha256(PDF).hexdigest(),
            "size_bytes": len(PDF),
        }
    ]


async def test_message_without_attachments_has_none_on_its_row(reference_data, store, activity_env):
    await activity_env.run(
        messaging(reference_data, RecordingBackend(), documents=store).send_message, notice()
    )

    [row] = await outbox(reference_data)
    assert row.attachments is None


async def test_missing_document_fails_without_retry_and_sends_nothing(
    reference_data, store, receipt, activity_env
):
    store.path_for(receipt.id).unlink()
    backend = RecordingBackend()

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(
            messaging(reference_data, backend, documents=store).send_message,
            notice(attachments=[receipt]),
        )

    assert failure.value.type == DOCUMENT_MISSING
    assert failure.value.non_retryable
    assert DOCUMENT_MISSING in PERMANENT_MESSAGE_FAILURES
    assert receipt.id in str(failure.value)
    assert backend.sent == [] and await outbox(reference_data) == []


async def test_altered_document_fails_without_retry_and_sends_nothing(
    reference_data, store, receipt, activity_env
):
    store.path_for(receipt.id).write_bytes(PDF + b"%altered\n")
    backend = RecordingBackend()

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(
            messaging(reference_data, backend, documents=store).send_message,
            notice(attachments=[receipt]),
        )

    assert failure.value.type == DOCUMENT_INTEGRITY
    assert failure.value.non_retryable
    assert backend.sent == [] and await outbox(reference_data) == []


async def test_attachments_without_a_document_store_fail_without_retry(
    reference_data, receipt, activity_env
):
    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(
            messaging(reference_data, RecordingBackend()).send_message,
            notice(attachments=[receipt]),
        )

    assert failure.value.type == DOCUMENT_MISSING and failure.value.non_retryable


async def test_a_sent_message_is_not_sent_again_even_if_its_attachment_is_gone(
    reference_data, store, receipt, activity_env
):
    backend = RecordingBackend()
    acts = messaging(reference_data, backend, documents=store)
    await activity_env.run(acts.send_message, notice(attachments=[receipt]))
    store.path_for(receipt.id).unlink()

    again = await activity_env.run(acts.send_message, notice(attachments=[receipt]))

    assert again.duplicate and len(backend.sent) == 1


async def test_sendgrid_receives_each_attachment_base64_encoded(
    reference_data, store, receipt, package, fake_sendgrid: FakeSendGrid, activity_env
):
    backend = SendGridBackend(
        api_key="SG.test", from_email="casedesk@example.com", host=fake_sendgrid.url, timeout=30
    )

    await activity_env.run(
        messaging(reference_data, backend, documents=store).send_message,
        notice(attachments=[receipt, package]),
    )

    [request] = fake_sendgrid.requests
    attachments = request["json"]["attachments"]
    assert [(a["filename"], a["type"], a["disposition"]) for a in attachments] == [
        ("receipt.pdf", "application/pdf", "attachment"),
        ("claim-package-SHP-1.zip", "application/zip", "attachment"),
    ]
    assert [base64.b64decode(a["content"]) for a in attachments] == [PDF, a_zip()]
