"""The case list for a day's work: sorting, the depot/assignee/deadline filters (API and
console), status badges by meaning, times in each case's zone, details in words."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from markupsafe import Markup

from api.case_models import CaseSort
from api.console.display import badge, field_label, local, money, plain_error, readable, tone
from core.db import SessionFactory
from schemas.enums import CaseStatus, CaseType, Resolution
from schemas.tables import Case
from tests.api.conftest import CLIENT_ID, DEPOT_ID, OTHER_DEPOT_ID, Api, assert_problem
from tests.api.test_console import NewBrowser, browser, text  # noqa: F401 (the fixture)

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


def _row(case_id: str, **fields: Any) -> Case:
    values: dict[str, Any] = {
        "id": case_id,
        "type": CaseType.FAILED_DELIVERY,
        "status": CaseStatus.WAITING_ON_CUSTOMER,
        "business_key": case_id.removeprefix("failed-delivery-"),
        "client_id": CLIENT_ID,
        "depot_id": DEPOT_ID,
        "subject": f"Shipment {case_id}",
        "opened_at": NOW - 5 * DAY,
        "updated_at": NOW - 5 * DAY,
    }
    return Case(**(values | fields))


@pytest.fixture
async def cases(sessions: SessionFactory, reference_data: None, api: Api) -> dict[str, Case]:
    """Five cases with distinct opened/updated times and deadlines (one without)."""
    rows = {
        "a": _row(
            "failed-delivery-LV-A",
            opened_at=NOW - 4 * DAY,
            updated_at=NOW - 1 * DAY,
            deadline_at=NOW + 3 * DAY,
            assignee="ops-key",
        ),
        "b": _row(
            "failed-delivery-LV-B",
            opened_at=NOW - 3 * DAY,
            updated_at=NOW - 3 * DAY,
            deadline_at=NOW + 1 * DAY,
            depot_id=OTHER_DEPOT_ID,
        ),
        "c": _row(
            "failed-delivery-LV-C",
            opened_at=NOW - 2 * DAY,
            updated_at=NOW - 2 * DAY,
            deadline_at=NOW - 1 * DAY,
            assignee="Sam",
        ),
        "d": _row("failed-delivery-LV-D", opened_at=NOW - 1 * DAY, updated_at=NOW - 4 * DAY),
        "e": _row(
            "failed-delivery-LV-E",
            opened_at=NOW - 5 * DAY,
            updated_at=NOW,
            status=CaseStatus.CLOSED,
            resolution=Resolution.DELIVERED,
            closed_at=NOW,
        ),
    }
    async with sessions() as session:
        session.add_all(rows.values())
        await session.commit()
    return rows


def ids(response: Any, rows: dict[str, Case]) -> str:
    """The page's cases as the fixture's letters, in order."""
    assert response.status_code == 200, response.text
    letters = {row.id: letter for letter, row in rows.items()}
    return "".join(letters[item["case_id"]] for item in response.json()["items"])


async def test_the_list_sorts_by_opened_deadline_and_updated(api: Api, cases: dict[str, Case]):
    async def order(sort: str | None) -> str:
        params = {"sort": sort} if sort else {}
        return ids(await api.get("/cases", params=params), cases)

    assert await order(None) == "dcbae"  # newest first
    assert await order("-opened") == "dcbae"
    assert await order("opened") == "eabcd"
    assert await order("deadline") == "cbade"  # soonest first; no deadline last
    # Latest first; no deadline still last, ties in the id's order of the same direction.
    assert await order("-deadline") == "abced"
    assert await order("-updated") == "eacbd"
    assert await order("updated") == "dbcae"
    first = (await api.get("/cases", params={"sort": "-updated"})).json()["items"][0]
    assert datetime.fromisoformat(first["updated_at"]) == cases["e"].updated_at


async def test_the_list_filters_by_depot_assignee_and_deadline_range(
    api: Api, cases: dict[str, Case]
):
    async def listed(**params: str) -> str:
        return ids(await api.get("/cases", params={"sort": "deadline", **params}), cases)

    assert await listed(depot_id=OTHER_DEPOT_ID) == "b"
    assert await listed(depot_id=DEPOT_ID) == "cade"
    assert await listed(assignee="Sam") == "c"
    assert await listed(deadline_before=(NOW + 2 * DAY).isoformat()) == "cb"
    assert await listed(deadline_after=NOW.isoformat()) == "ba"
    window = {"deadline_after": NOW.isoformat(), "deadline_before": (NOW + 2 * DAY).isoformat()}
    assert await listed(**window) == "b"


async def _walk(api: Api, params: dict[str, str]) -> tuple[list[str], int]:
    """Every case id of the list, two a page, following `next_cursor`; and the pages."""
    seen: list[str] = []
    query = {**params, "limit": "2"}
    for pages in range(1, 20):
        response = await api.get("/cases", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [item["case_id"] for item in body["items"]]
        if body["next_cursor"] is None:
            return seen, pages
        query = {**params, "limit": "2", "cursor": body["next_cursor"]}
    raise AssertionError(f"the cursor never ended: {seen}")


@pytest.mark.parametrize("sort", [s.value for s in CaseSort])
async def test_a_cursor_walks_each_order_without_repeats_or_gaps(
    api: Api, cases: dict[str, Case], sessions: SessionFactory, sort: str
):
    # Ties on every sort column, with and without a deadline, so the id must break them.
    twins = [
        _row(f"failed-delivery-LV-T{n}", opened_at=NOW - DAY, updated_at=NOW - 4 * DAY)
        for n in range(3)
    ] + [
        _row(f"failed-delivery-LV-U{n}", deadline_at=NOW + DAY, opened_at=NOW - 3 * DAY)
        for n in range(2)
    ]
    async with sessions() as session:
        session.add_all(twins)
        await session.commit()
    whole = (await api.get("/cases", params={"sort": sort, "limit": "200"})).json()

    walked, pages = await _walk(api, {"sort": sort})

    assert walked == [item["case_id"] for item in whole["items"]] and len(walked) == 10
    assert pages == 5 and whole["next_cursor"] is None
    # With a filter, the walk stays inside it and the total counts the filtered cases.
    depot, _ = await _walk(api, {"sort": sort, "depot_id": DEPOT_ID})
    assert cases["b"].id not in depot and len(depot) == 9


async def test_bad_cursors_are_422_naming_the_cursor(api: Api, cases: dict[str, Case]):
    first = (await api.get("/cases", params={"sort": "deadline", "limit": "1"})).json()
    cursor = first["next_cursor"]
    assert cursor and first["total"] == 5

    for bad in ["nonsense", "bm90IGpzb24", "WyJkZWFkbGluZSIsICJ5ZXN0ZXJkYXkiLCAiYSJd"]:
        assert_problem(await api.get("/cases", params={"cursor": bad}), 422, "cursor")
    other_sort = await api.get("/cases", params={"cursor": cursor})  # sorted by -opened
    body = assert_problem(other_sort, 422, "cursor")
    assert "sort=deadline" in body["detail"]
    both = await api.get("/cases", params={"sort": "deadline", "cursor": cursor, "offset": 1})
    assert_problem(both, 422, "offset")
    assert (
        await api.get("/cases", params={"sort": "deadline", "cursor": cursor})
    ).status_code == 200


async def test_text_search_follows_the_index_rows(
    api: Api, cases: dict[str, Case], sessions: SessionFactory
):
    async def found(words: str) -> list[str]:
        response = await api.get("/cases", params={"q": words})
        assert response.status_code == 200, response.text
        return [item["case_id"] for item in response.json()["items"]]

    assert await found("lv-c") == [cases["c"].id]  # any case, inside the id
    assert await found("Shipment failed-delivery-LV-") == [cases[x].id for x in "dcbae"]
    async with sessions() as session:
        row = await session.get(Case, cases["c"].id)
        assert row
        row.subject = "Parcel for Ms Quint"
        await session.commit()
        assert await found("quint") == [cases["c"].id]
        assert await found("Shipment failed-delivery-LV-C") == []
        await session.delete(row)
        await session.commit()
    assert await found("quint") == [] and await found("LV-") == [cases[x].id for x in "dbae"]
    assert await found("LV") == [cases[x].id for x in "dbae"]  # shorter than a trigram


async def test_bad_list_parameters_are_422_naming_the_parameter(api: Api, cases: dict[str, Case]):
    assert_problem(await api.get("/cases", params={"sort": "subject"}), 422, "sort")
    naive = {"deadline_before": "2026-12-01T10:00:00"}  # no offset: which zone?
    assert_problem(await api.get("/cases", params=naive), 422, "deadline_before")
    backwards = {
        "deadline_after": NOW.isoformat(),
        "deadline_before": (NOW - DAY).isoformat(),
    }
    assert_problem(await api.get("/cases", params=backwards), 422, "deadline_before")


def _rows(html: str) -> list[str]:
    return re.findall(r'<a href="/console/cases/(failed-delivery-LV-\w)">', html)


async def test_the_console_lists_my_cases_and_sorts_by_column(
    browser: NewBrowser,  # noqa: F811
    cases: dict[str, Case],
):
    me = await browser("ops")  # its key is named "ops-key"

    mine = await me.page("/console", params={"assignee": "mine"})
    by_deadline = await me.page("/console", params={"sort": "deadline"})
    home = await me.page("/console")

    assert mine.status_code == 200 and _rows(mine.text) == [cases["a"].id]
    assert _rows(by_deadline.text) == [cases[x].id for x in "cbade"]
    assert 'aria-sort="ascending"' in by_deadline.text
    # The header offers the other direction, keeping the other filters.
    link = re.search(r'<a href="([^"]+)" title="Sort by deadline">', by_deadline.text)
    assert link and "sort=-deadline" in link.group(1)
    assert 'href="/console?assignee=mine"' in home.text  # "My cases"


async def test_the_console_filters_by_depot_and_deadline_days(
    browser: NewBrowser,  # noqa: F811
    cases: dict[str, Case],
):
    me = await browser("viewer")
    tomorrow = (NOW + DAY).astimezone(UTC).date()

    depot = await me.page("/console", params={"depot_id": OTHER_DEPOT_ID})
    one_day = await me.page(
        "/console", params={"deadline_from": str(tomorrow), "deadline_to": str(tomorrow)}
    )

    assert _rows(depot.text) == [cases["b"].id]
    assert _rows(one_day.text) == [cases["b"].id]  # the whole UTC day, both ends included


@pytest.mark.parametrize(
    "params, sentence",
    [
        ({"sort": "subject"}, "Sort: “subject” is not one of the choices offered."),
        ({"deadline_from": "soon"}, "Deadline from: “soon” is not a date (year-month-day)."),
        (
            {"deadline_from": "2026-12-05", "deadline_to": "2026-12-01"},
            "Deadline to: the end of the range is before its start.",
        ),
        ({"offset": "-1"}, "Page: “-1” is not a position in the list"),
    ],
)
async def test_bad_console_filters_are_sentences(
    browser: NewBrowser,  # noqa: F811
    cases: dict[str, Case],
    params: dict[str, str],
    sentence: str,
):
    me = await browser("viewer")

    response = await me.page("/console", params=params)

    assert response.status_code == 422
    assert sentence in text(response)


async def test_the_console_shows_badges_and_each_cases_local_time(
    browser: NewBrowser,  # noqa: F811
    cases: dict[str, Case],
):
    me = await browser("viewer")

    page = await me.page("/console")

    body = page.text
    assert body.count('class="badge status-waiting"') == 4  # waiting on the customer
    assert 'class="badge status-done" title="The parcel was delivered.">delivered<' in body
    # London in winter is GMT, New York EST; the UTC instant is in the title.
    assert re.search(r"<time datetime=\"[^\"]+\" title=\"[^\"]+ UTC\">[^<]+ GMT</time>", body)
    assert re.search(r"<time datetime=\"[^\"]+\" title=\"[^\"]+ UTC\">[^<]+ EST</time>", body)


# --- the display functions -------------------------------------------------------------------


def test_tones_follow_what_the_status_means():
    assert tone(CaseStatus.OPEN) == "active"
    assert tone(CaseStatus.WAITING_ON_CUSTOMER) == "waiting"
    assert tone(CaseStatus.SUSPENDED) == "alert"
    assert tone(CaseStatus.CLOSED, Resolution.DELIVERED) == "done"
    assert tone(CaseStatus.CLOSED, Resolution.RETURNED_TO_SENDER) == "ended"
    assert tone(CaseStatus.CANCELLED, Resolution.CANCELLED) == "ended"
    closed = badge(CaseStatus.CLOSED, Resolution.WRITTEN_OFF)
    assert "written off" in closed and "status-ended" in closed


def test_local_times_carry_the_zone_and_utc_on_hover():
    at = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)

    summer = local(at, "Europe/London")
    unknown = local(at, "Mars/Olympus")

    assert isinstance(summer, Markup)
    assert ">Wed 1 Jul 2026, 13:30 BST<" in summer and 'title="2026-07-01 12:30 UTC"' in summer
    assert 'datetime="2026-07-01T12:30:00Z"' in summer
    assert ">Wed 1 Jul 2026, 12:30 UTC<" in unknown
    assert local(None) == "—"


def test_details_read_as_words_money_and_local_times():
    shown = readable(
        {
            "fees_cents": 1700,
            "currency": "GBP",
            "damage_reported": False,
            "last_reason": "not_home",
            "redelivery_option": "pickup_point",
            "policy": {"customer_window": "P5D", "reminder_after": "PT24H"},
            "filed_at": "2026-12-01T09:00:00+00:00",
        },
        "Europe/London",
    )

    assert shown["Failed-attempt fees"] == "£17.00"
    assert shown["Damage reported"] is False  # shown as "no" by the template
    assert shown["Last failure"] == "Not home: Nobody was there to receive the parcel."
    assert shown["Redelivery option"].startswith("Pickup point: ")
    assert shown["Policy"] == {"Customer window": "5 days", "Reminder after": "1 day"}
    assert "Tue 1 Dec 2026, 09:00 GMT" in shown["Filed"]
    assert money(1500, "JPY") == "JP¥1,500" and money(1500, None) == "1500"
    assert field_label("planned_start_date") == "Planned start"
    assert field_label("sent_at") == "Sent" and field_label("linked_case_id") == (
        "Failed-delivery case"
    )
    assert readable({"issued_on": "2026-12-01"})["Issued"] == "Tue 1 Dec 2026"


def test_errors_are_sentences_naming_the_field_as_the_form_labels_it():
    assert plain_error("date", "date required when option is redelivery_window") == (
        "Day is needed when the choice is “redelivery window”."
    )
    assert plain_error("option", "Input should be 'redelivery_window' or 'neighbour'") == (
        "Choice: choose one of redelivery window or neighbour."
    )
    assert plain_error("customer.email", "Field required") == "Customer's email is needed."
    assert plain_error("", "the case is closed") == "The case is closed."
