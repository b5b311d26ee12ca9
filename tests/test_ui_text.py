"""The words and times the Temporal UI shows (`schemas.ui_text`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.enums import CaseStatus, CaseType
from schemas.policies import ClaimPolicy
from schemas.ui_text import (
    WAITING_ON,
    case_details,
    case_summary,
    duration,
    local_time,
    offset_words,
)

WINTER = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
SUMMER = datetime(2026, 7, 2, 14, 0, tzinfo=UTC)


def test_times_are_local_with_the_zones_abbreviation():
    assert local_time(WINTER, "Europe/London") == "Thu 3 Dec 14:00 GMT"
    assert local_time(SUMMER, "Europe/London") == "Thu 2 Jul 15:00 BST"
    assert local_time(WINTER, "America/New_York") == "Thu 3 Dec 09:00 EST"
    assert local_time(WINTER, "Europe/Berlin") == "Thu 3 Dec 15:00 CET"


def test_an_unknown_or_missing_zone_is_utc():
    assert local_time(WINTER, "Mars/Olympus_Mons") == "Thu 3 Dec 14:00 UTC"
    assert local_time(WINTER, "../../etc/passwd") == "Thu 3 Dec 14:00 UTC"
    assert local_time(WINTER, None) == "Thu 3 Dec 14:00 UTC"


def test_spans_read_in_their_largest_whole_unit():
    assert duration(timedelta(hours=72)) == "72 h"
    assert duration(timedelta(days=5)) == "5 d"
    assert duration(timedelta(minutes=30)) == "30 min"
    assert offset_words(timedelta(days=14)) == "+14 d"
    assert offset_words(timedelta(days=-3)) == "-3 d"
    assert offset_words(timedelta(0)) == "+0 d"


def test_the_summary_is_type_key_and_client():
    summary = case_summary(CaseType.FAILED_DELIVERY, "SHP-1042", "demo-shop")
    assert summary == "Failed delivery · shipment SHP-1042 · demo-shop"
    assert (
        case_summary(CaseType.DRIVER_ONBOARDING, "drv-1", None)
        == "Driver onboarding · driver drv-1"
    )


def test_the_details_say_what_the_case_is_its_dates_and_its_policy():
    details = case_details(
        CaseType.DAMAGE_CLAIM,
        subject="Claim for shipment SHP-1042: damaged",
        client_id="demo-shop",
        depot_id="depot-north",
        zone_name="Europe/London",
        policy=ClaimPolicy(),
        key_dates={"Deadline": WINTER},
    )

    assert details.split("\n\n") == [
        f"**Damage claim**: {CaseType.DAMAGE_CLAIM.description}",
        "Subject: Claim for shipment SHP-1042: damaged",
        "For client `demo-shop` and depot `depot-north`; times in Europe/London.",
        "Deadline: Thu 3 Dec 14:00 GMT",
        "Policy: filing window 72 h; reminders after 24 h, 48 h; escalate before deadline 12 h; "
        "decision follow up 7 d; event max age 365 d",
    ]


def test_every_open_status_says_whom_it_waits_on():
    assert {s for s in CaseStatus if not s.is_terminal} == set(WAITING_ON)
