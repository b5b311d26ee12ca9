"""send_message: the outbox, recipient resolution and what the rendered email contains."""

from __future__ import annotations

import asyncio
import contextlib
import re
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import activities.messaging
from activities.email_backends import OutgoingEmail
from activities.errors import RECIPIENT_NOT_FOUND, TEMPLATE_ERROR
from activities.messaging import MessagingActivities, resolve_recipient
from activities.rendering import EmailRenderer
from core.db import SessionFactory
from core.documents import DocumentStore
from core.security import verify_link
from schemas.activities import MessageRequest, Recipient, RecipientRole, SignedLink
from schemas.enums import ContactKind, MessageStatus
from schemas.tables import TeamContact, TeamRole
from tests.activities.conftest import CLIENT_ID, DEPOT_ID, DRIVER_ID, outbox

SECRET = b"test-link-secret-that-is-long-enough"
CASE_ID = "failed-delivery-SHP-1"


class RecordingBackend:
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []

    async def send(self, email: OutgoingEmail) -> str:
        self.sent.append(email)
        return f"rec-{len(self.sent)}"


@pytest.fixture
def backend() -> RecordingBackend:
    return RecordingBackend()


def messaging(
    sessions: SessionFactory,
    backend: object,
    renderer: EmailRenderer | None = None,
    documents: DocumentStore | None = None,
) -> MessagingActivities:
    return MessagingActivities(
        sessions=sessions,
        renderer=renderer or EmailRenderer(),
        backend=backend,  # type: ignore[arg-type]
        link_secret=SECRET,
        public_base_url="https://casedesk.example/",
        trace_url_for=lambda workflow_id: f"https://temporal.example/workflows/{workflow_id}",
        documents=documents,
    )


def notice(to: Recipient | None = None, key: str = f"{CASE_ID}/notice-1", **kw) -> MessageRequest:
    return MessageRequest(
        key=key,
        case_id=CASE_ID,
        template="failed_delivery/customer_notice",
        to=to or Recipient(role="customer", email="ann@example.com", name="Ann Example"),
        context={"shipment_id": "SHP-1", "attempt_number": 1, "reason": "not_home"},
        **kw,
    )


# --- the outbox ---------------------------------------------------------------------------


async def test_same_message_key_is_sent_once(reference_data, backend, activity_env):
    acts = messaging(reference_data, backend)

    first = await activity_env.run(acts.send_message, notice())
    second = await activity_env.run(acts.send_message, notice())

    assert len(backend.sent) == 1
    assert [row.key for row in await outbox(reference_data)] == [f"{CASE_ID}/notice-1"]
    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.message_id == first.message_id


async def test_sent_message_is_stored_with_its_bodies_and_provider_id(
    reference_data, backend, activity_env
):
    result = await activity_env.run(messaging(reference_data, backend).send_message, notice())

    [row] = await outbox(reference_data)
    assert result.status is MessageStatus.SENT
    assert row.status is MessageStatus.SENT
    assert row.provider_message_id == "rec-1"
    assert row.sent_at is not None and row.send_attempts == 1
    assert row.backend == "recording"
    assert row.subject == "We missed you: your parcel SHP-1 could not be delivered"
    assert row.recipient_email == "ann@example.com" == backend.sent[0].to_email


class GatedBackend(RecordingBackend):
    """Holds the first send until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def send(self, email: OutgoingEmail) -> str:
        if not self.sent:
            await asyncio.wait_for(self.release.wait(), timeout=10)
        return await super().send(email)


async def test_an_attempt_overtaken_by_a_successful_send_sends_nothing(
    reference_data, activity_env, monkeypatch
):
    # First attempt: writes the row, then sends (held). Second attempt: reads the row while it
    # is still pending and carries on only after the first one has marked it sent.
    backend = GatedBackend()
    first_done = asyncio.Event()
    calls = 0

    async def resolve_and_wait(session, to):
        nonlocal calls
        calls += 1
        if calls == 2:
            backend.release.set()  # the second attempt has seen the pending row
            # (a locking implementation blocks the first attempt: carry on after a while)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first_done.wait(), timeout=5)
        return await resolve_recipient(session, to)

    monkeypatch.setattr(activities.messaging, "resolve_recipient", resolve_and_wait)
    acts = messaging(reference_data, backend)

    async def first():
        try:
            return await activity_env.run(acts.send_message, notice())
        finally:
            first_done.set()

    async def second():
        while not await outbox(reference_data):
            await asyncio.sleep(0.01)
        return await activity_env.run(acts.send_message, notice())

    one, two = await asyncio.gather(first(), second())

    [row] = await outbox(reference_data)
    assert len(backend.sent) == 1
    assert (one.duplicate, two.duplicate) == (False, True)
    assert row.status is MessageStatus.SENT and row.provider_message_id == "rec-1"
    assert two.message_id == one.message_id == str(row.id)


async def test_concurrent_first_attempts_create_one_outbox_row(
    reference_data, backend, activity_env, monkeypatch
):
    # Both attempts find no row before either writes one.
    both_looked = asyncio.Event()
    calls = 0

    async def resolve_together(session, to):
        nonlocal calls
        calls += 1
        if calls == 2:
            both_looked.set()
        await asyncio.wait_for(both_looked.wait(), timeout=10)
        return await resolve_recipient(session, to)

    monkeypatch.setattr(activities.messaging, "resolve_recipient", resolve_together)
    acts = messaging(reference_data, backend)

    results = await asyncio.gather(
        activity_env.run(acts.send_message, notice()),
        activity_env.run(acts.send_message, notice()),
    )

    [row] = await outbox(reference_data)
    assert row.status is MessageStatus.SENT
    assert {result.message_id for result in results} == {str(row.id)}
    assert 1 <= len(backend.sent) == row.send_attempts <= 2
    assert {email.message_id for email in backend.sent} == {str(row.id)}


# --- recipients ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "email", "name"),
    [
        (Recipient(role="customer", email="ann@example.com", name="Ann"), "ann@example.com", "Ann"),
        (
            Recipient(role="dispatcher", depot_id=DEPOT_ID),
            "dispatch.ldn@example.com",
            "Dana Dispatch",
        ),
        (
            Recipient(
                role="client_contact",
                client_id=CLIENT_ID,
                contact_kind=ContactKind.SHIPMENT_NOTIFICATIONS,
            ),
            "adam@acme.example",  # the first of two contacts of that kind, by name
            "Adam Notifications",
        ),
        (Recipient(role="driver", driver_id=DRIVER_ID), "dee@example.com", "Dee Driver"),
    ],
    ids=["customer", "dispatcher", "client_contact", "driver"],
)
async def test_recipient_is_resolved_for_each_role(
    reference_data, backend, activity_env, to, email, name
):
    result = await activity_env.run(messaging(reference_data, backend).send_message, notice(to))

    assert result.recipient_email == email
    assert (backend.sent[0].to_email, backend.sent[0].to_name) == (email, name)


@pytest.mark.parametrize(
    ("to", "names"),
    [
        (Recipient(role="customer"), "customer"),
        (Recipient(role="dispatcher", depot_id="nowhere"), "'nowhere'"),
        (
            Recipient(role="client_contact", client_id=CLIENT_ID, contact_kind=ContactKind.BILLING),
            "'billing'",
        ),
        (Recipient(role="driver", driver_id="drv-unknown"), "'drv-unknown'"),
        (Recipient(role="claims_desk"), "claims desk"),
    ],
    ids=[
        "customer-without-email",
        "unknown-depot",
        "no-billing-contact",
        "unknown-driver",
        "no-claims-desk",
    ],
)
async def test_missing_recipient_fails_without_retry_and_sends_nothing(
    reference_data, backend, activity_env, to, names
):
    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(messaging(reference_data, backend).send_message, notice(to))

    assert failure.value.type == RECIPIENT_NOT_FOUND
    assert failure.value.non_retryable
    assert names in str(failure.value)
    assert backend.sent == [] and await outbox(reference_data) == []


async def test_claims_desk_is_the_first_claims_desk_contact_by_name(
    reference_data, backend, activity_env
):
    async with reference_data() as session:
        session.add_all(
            [
                TeamContact(role=TeamRole.CLAIMS_DESK, name="Yara Claims", email="y@example.com"),
                TeamContact(role=TeamRole.CLAIMS_DESK, name="Bea Claims", email="b@example.com"),
                TeamContact(
                    role=TeamRole.ONBOARDING_COORDINATOR, name="Al Onboard", email="a@example.com"
                ),
            ]
        )
        await session.commit()

    result = await activity_env.run(
        messaging(reference_data, backend).send_message, notice(Recipient(role="claims_desk"))
    )

    [row] = await outbox(reference_data)
    assert result.recipient_email == "b@example.com"
    assert (backend.sent[0].to_email, backend.sent[0].to_name) == ("b@example.com", "Bea Claims")
    assert row.recipient_role == "claims_desk"


async def test_onboarding_coordinator_is_the_first_coordinator_contact_by_name(
    reference_data, backend, activity_env
):
    async with reference_data() as session:
        session.add_all(
            [
                TeamContact(role=TeamRole.CLAIMS_DESK, name="Al Claims", email="c@example.com"),
                TeamContact(
                    role=TeamRole.ONBOARDING_COORDINATOR, name="Olu Onboard", email="o@example.com"
                ),
                TeamContact(
                    role=TeamRole.ONBOARDING_COORDINATOR, name="Kim Onboard", email="k@example.com"
                ),
            ]
        )
        await session.commit()

    result = await activity_env.run(
        messaging(reference_data, backend).send_message,
        notice(Recipient(role="onboarding_coordinator")),
    )

    [row] = await outbox(reference_data)
    assert result.recipient_email == "k@example.com"
    assert (backend.sent[0].to_email, backend.sent[0].to_name) == ("k@example.com", "Kim Onboard")
    assert row.recipient_role == "onboarding_coordinator"


async def test_missing_onboarding_coordinator_fails_without_retry_and_sends_nothing(
    reference_data, backend, activity_env
):
    async with reference_data() as session:  # another team's contact does not stand in
        session.add(TeamContact(role=TeamRole.CLAIMS_DESK, name="Al Claims", email="c@example.com"))
        await session.commit()

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(
            messaging(reference_data, backend).send_message,
            notice(Recipient(role="onboarding_coordinator")),
        )

    assert failure.value.type == RECIPIENT_NOT_FOUND
    assert failure.value.non_retryable
    assert failure.value.message == "no onboarding coordinator contact on file"
    assert backend.sent == [] and await outbox(reference_data) == []


def test_every_recipient_role_has_a_resolver():
    assert set(activities.messaging.RESOLVERS) == set(typing.get_args(RecipientRole))


# --- rendering ----------------------------------------------------------------------------


async def test_html_body_escapes_the_customer_name(reference_data, backend, activity_env):
    to = Recipient(role="customer", email="ann@example.com", name="<script>alert(1)</script>")

    await activity_env.run(messaging(reference_data, backend).send_message, notice(to))

    html = backend.sent[0].html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_text_body_has_no_html(reference_data, backend, activity_env):
    await activity_env.run(messaging(reference_data, backend).send_message, notice())

    text = backend.sent[0].text
    assert "Nobody was there to receive the parcel." in text
    assert not re.search(r"</?[a-zA-Z][^>]*>", text)


async def test_link_in_the_email_verifies_for_the_case(reference_data, backend, activity_env):
    expires_at = datetime.now(UTC) + timedelta(days=5)
    link = SignedLink(purpose="redelivery", expires_at=expires_at, data={"attempt": 1})

    await activity_env.run(messaging(reference_data, backend).send_message, notice(link=link))

    email = backend.sent[0]
    [token] = re.findall(r"https://casedesk\.example/r/([\w.-]+)", email.text)
    assert f'href="https://casedesk.example/r/{token}"' in email.html
    claims = verify_link(SECRET, token, purpose="redelivery")
    assert claims.case_id == CASE_ID
    assert claims.data == {"attempt": 1}
    assert claims.expires_at == expires_at.replace(microsecond=0)


async def test_unknown_template_fails_without_retry(reference_data, backend, activity_env):
    request = notice().model_copy(update={"template": "failed_delivery/no_such_thing"})

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(messaging(reference_data, backend).send_message, request)

    assert failure.value.type == TEMPLATE_ERROR
    assert failure.value.non_retryable
    assert backend.sent == []


async def test_template_using_an_absent_value_fails_without_retry(
    reference_data, backend, activity_env: ActivityEnvironment, tmp_path: Path
):
    for suffix, body in [("subject.txt", "Hi"), ("txt", "{{ not_given }}"), ("html", "<p>x</p>")]:
        (tmp_path / f"strict.{suffix}").write_text(body)
    acts = messaging(reference_data, backend, EmailRenderer(tmp_path))
    request = notice().model_copy(update={"template": "strict"})

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(acts.send_message, request)

    assert failure.value.type == TEMPLATE_ERROR
    assert "not_given" in str(failure.value)


# --- times in the case's zone -------------------------------------------------------------


def _deadline_notice(to: Recipient | None = None, **context: object) -> MessageRequest:
    request = notice(to)
    request.context |= {"respond_by": "2026-07-01T09:00:00+00:00", **context}
    return request


async def test_times_are_shown_in_the_zone_of_the_recipients_depot(
    reference_data, backend, activity_env
):
    to = Recipient(role="dispatcher", depot_id="nyc-1")

    await activity_env.run(messaging(reference_data, backend).send_message, _deadline_notice(to))

    [sent] = backend.sent
    assert "Wed 1 Jul 2026, 05:00 EDT" in sent.text and "05:00 EDT" in sent.html


async def test_the_contexts_own_timezone_wins(reference_data, backend, activity_env):
    to = Recipient(role="dispatcher", depot_id="nyc-1")
    request = _deadline_notice(to, timezone="Europe/London")

    await activity_env.run(messaging(reference_data, backend).send_message, request)

    assert "Wed 1 Jul 2026, 10:00 BST" in backend.sent[0].text


async def test_without_a_known_place_times_stay_in_utc(reference_data, backend, activity_env):
    await activity_env.run(messaging(reference_data, backend).send_message, _deadline_notice())

    assert "Wed 1 Jul 2026, 09:00 UTC" in backend.sent[0].text
