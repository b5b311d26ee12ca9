"""POST /deliveries: the routing system's stop outcomes in, as JSON or CSV, on SQLite and
PostgreSQL. Idempotent per (shipment, attempt); bad records named by row and field; all or
nothing unless `?partial=true`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlmodel import select

from core.db import SessionFactory
from schemas.enums import RecordSource, StopOutcome
from schemas.tables import DeliveryRecord
from tests.api.conftest import CLIENT_ID, DEPOT_ID, OTHER_DEPOT_ID, Api, assert_problem

HEADER = "shipment_id,client_id,depot_id,attempted_at,outcome,zone,residential,attempt_number"


@pytest.fixture
def api(raw_client: httpx.AsyncClient, keys: dict[str, str]) -> Api:
    """No worker: recording deliveries never reaches Temporal."""
    return Api(raw=raw_client, keys=keys)


def at(hours_ago: float = 2) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(microsecond=0).isoformat()


WHEN = at()
"""One moment for every record that gives none: the same stop sent twice is the same record
(a default read off the clock per call would differ across a second boundary)."""


def record(n: int = 1, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "shipment_id": f"SHP-{n}",
        "client_id": CLIENT_ID,
        "depot_id": DEPOT_ID,
        "attempted_at": WHEN,
        "outcome": "delivered",
        "zone": "B",
        "residential": True,
        "attempt_number": 1,
    }
    body.update(fields)
    return body


async def post_json(api: Api, records: Any, *, partial: bool = False, role: str = "ops"):
    params = {"partial": "true"} if partial else {}
    return await api.post("/deliveries", json=records, params=params, role=role)


async def post_raw(
    api: Api, content: bytes | str, content_type: str, *, partial: bool = False
) -> httpx.Response:
    params = {"partial": "true"} if partial else {}
    headers = {"Authorization": f"Bearer {api.keys['ops']}", "Content-Type": content_type}
    return await api.raw.post("/deliveries", content=content, headers=headers, params=params)


async def stored(sessions: SessionFactory) -> dict[tuple[str, int], DeliveryRecord]:
    async with sessions() as session:
        rows = (await session.exec(select(DeliveryRecord))).all()
    return {(row.shipment_id, row.attempt_number): row for row in rows}


def counts(response: httpx.Response) -> tuple[int, int, int, int, int]:
    assert response.status_code == 200, response.text
    body = response.json()
    return body["received"], body["new"], body["duplicates"], body["updated"], body["rejected"]


def row_errors(response: httpx.Response) -> list[tuple[int, str]]:
    return [(error["row"], error["field"]) for error in response.json()["errors"]]


# --- JSON ---------------------------------------------------------------------------------


async def test_a_json_batch_is_recorded_and_a_resent_batch_changes_nothing(api, sessions):
    batch = [record(1), record(2, outcome="failed", zone=None, residential=None), record(3)]

    first = await post_json(api, batch)
    again = await post_json(api, batch)

    assert counts(first) == (3, 3, 0, 0, 0)
    assert counts(again) == (3, 0, 3, 0, 0)
    rows = await stored(sessions)
    assert set(rows) == {("SHP-1", 1), ("SHP-2", 1), ("SHP-3", 1)}
    one = rows[("SHP-1", 1)]
    assert (one.client_id, one.depot_id, one.outcome, one.zone, one.residential) == (
        CLIENT_ID,
        DEPOT_ID,
        StopOutcome.DELIVERED,
        "B",
        True,
    )
    assert one.source is RecordSource.ROUTING and one.case_id is None
    assert one.attempted_at == datetime.fromisoformat(batch[0]["attempted_at"])
    assert one.attempted_at.tzinfo is not None
    assert (rows[("SHP-2", 1)].zone, rows[("SHP-2", 1)].residential) == (None, None)


async def test_attempted_at_with_an_offset_is_stored_as_the_same_instant_in_utc(api, sessions):
    new_york = datetime.fromisoformat(at(3)).astimezone(timezone(timedelta(hours=-5)))

    response = await post_json(api, [record(1, attempted_at=new_york.isoformat())])

    assert counts(response)[1] == 1
    [row] = (await stored(sessions)).values()
    assert row.attempted_at == new_york and row.attempted_at.utcoffset() == timedelta(0)


async def test_bad_json_records_are_named_by_row_and_field_and_nothing_is_recorded(api, sessions):
    batch = [
        record(1),
        record(2, attempted_at="2026-11-21T09:30:00"),  # no offset
        record(3, residential="yes", attempt_number="2"),
        record(4, outcome="lost"),
        record(5, colour="red"),
        "not an object",
    ]

    response = await post_json(api, batch)

    problem = assert_problem(response, 422, "attempted_at", "residential", "attempt_number")
    assert row_errors(response) == [
        (2, "attempted_at"),
        (3, "residential"),
        (3, "attempt_number"),
        (4, "outcome"),
        (5, "colour"),
        (6, "row"),
    ]
    assert (problem["received"], problem["rejected"], problem["errors_total"]) == (6, 5, 6)
    assert "row 2, attempted_at" in problem["detail"]
    assert "nothing was recorded" in problem["detail"]
    assert await stored(sessions) == {}


async def test_partial_keeps_the_good_records_and_reports_the_bad_ones(api, sessions):
    batch = [record(1), record(2, client_id="nobody"), record(3, depot_id="nowhere"), record(4)]

    response = await post_json(api, batch, partial=True)

    assert counts(response) == (4, 2, 0, 0, 2)
    body = response.json()
    assert row_errors(response) == [(2, "client_id"), (3, "depot_id")]
    assert body["errors"][0]["message"] == "unknown client 'nobody'"
    assert body["errors"][1]["message"] == "unknown depot 'nowhere'"
    assert set(await stored(sessions)) == {("SHP-1", 1), ("SHP-4", 1)}


async def test_unknown_client_or_depot_is_a_bad_row_without_partial(api, sessions):
    response = await post_json(api, [record(1), record(2, client_id="nobody")])

    assert_problem(response, 422, "client_id")
    assert row_errors(response) == [(2, "client_id")]
    assert await stored(sessions) == {}


async def test_timestamps_too_far_ahead_or_too_old_are_refused(api, sessions):
    now = datetime.now(UTC)
    batch = [
        record(1, attempted_at=(now + timedelta(minutes=2)).isoformat()),  # clock skew: fine
        record(2, attempted_at=(now + timedelta(minutes=30)).isoformat()),
        record(3, attempted_at=(now - timedelta(days=367)).isoformat()),
        record(4, attempted_at="2026-02-30T10:00:00Z"),
        record(5, attempted_at=1764000000),
        record(6, attempted_at="0001-01-01T00:00:00+01:00"),
    ]

    response = await post_json(api, batch, partial=True)

    assert counts(response) == (6, 1, 0, 0, 5)
    messages = {e["row"]: e["message"] for e in response.json()["errors"]}
    assert "in the future" in messages[2]
    assert "more than 366 days ago" in messages[3]
    assert "not a real date" in messages[4]
    assert "ISO 8601" in messages[5]
    assert set(messages) == {2, 3, 4, 5, 6}


async def test_a_record_that_contradicts_the_stored_one_is_refused_not_overwritten(api, sessions):
    original = record(1)
    assert counts(await post_json(api, [original]))[1] == 1

    response = await post_json(
        api,
        [
            {**original, "outcome": "failed"},
            {**original, "shipment_id": "SHP-1", "depot_id": OTHER_DEPOT_ID, "zone": "C"},
        ],
        partial=True,
    )

    # The second is also a second record of the same stop in one batch.
    assert counts(response) == (2, 0, 0, 0, 2)
    assert row_errors(response) == [(1, "outcome"), (2, "depot_id")]
    assert (
        "already recorded (by the routing system) with outcome delivered"
        in (response.json()["errors"][0]["message"])
    )
    again = await post_json(api, [{**original, "attempted_at": at(5), "zone": "C"}])
    assert_problem(again, 422, "attempted_at", "zone")
    [row] = (await stored(sessions)).values()
    assert (row.outcome, row.zone, row.depot_id) == (StopOutcome.DELIVERED, "B", DEPOT_ID)


async def test_a_later_record_fills_in_the_zone_and_flag_but_a_missing_one_erases_nothing(
    api, sessions
):
    bare = record(1, zone=None, residential=None)
    assert counts(await post_json(api, [bare]))[1] == 1

    filled = await post_json(api, [record(1, attempted_at=bare["attempted_at"])])
    bare_again = await post_json(api, [bare])

    assert counts(filled) == (1, 0, 0, 1, 0)
    assert counts(bare_again) == (1, 0, 1, 0, 0)
    [row] = (await stored(sessions)).values()
    assert (row.zone, row.residential) == ("B", True)


async def test_the_same_stop_twice_in_a_batch(api, sessions):
    same = record(1)
    batch = [same, dict(same), {**same, "outcome": "failed"}, record(2)]

    response = await post_json(api, batch, partial=True)

    assert counts(response) == (4, 2, 1, 0, 1)
    assert row_errors(response) == [(3, "outcome")]
    assert "row 1 has the same shipment and attempt" in response.json()["errors"][0]["message"]


async def test_an_empty_list_is_an_empty_batch(api):
    assert counts(await post_json(api, [])) == (0, 0, 0, 0, 0)


async def test_viewers_cannot_post_and_a_key_is_required(api):
    assert_problem(await post_json(api, [record(1)], role="viewer"), 403)
    response = await api.raw.post("/deliveries", json=[record(1)])
    assert_problem(response, 401)


# --- CSV ----------------------------------------------------------------------------------


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


async def test_a_csv_body_is_recorded_with_its_columns_in_any_order(api, sessions):
    when = at()
    text = csv_text(
        f"SHP-1,B,TRUE,{CLIENT_ID},{DEPOT_ID},{when},delivered,1",
        f"SHP-2,,0,{CLIENT_ID},{DEPOT_ID},{when},failed,2",
        f'"SHP-3",Zone 4, ,{CLIENT_ID},{DEPOT_ID},{when},delivered,1',
        "",
        header="shipment_id, zone, residential, client_id, depot_id, attempted_at, outcome, "
        "attempt_number",
    )

    response = await post_raw(api, "\ufeff" + text, "text/csv; charset=utf-8")
    again = await post_raw(api, text, "text/csv")

    assert counts(response) == (3, 3, 0, 0, 0)
    assert counts(again) == (3, 0, 3, 0, 0)
    rows = await stored(sessions)
    assert (rows[("SHP-1", 1)].zone, rows[("SHP-1", 1)].residential) == ("B", True)
    assert (rows[("SHP-2", 2)].zone, rows[("SHP-2", 2)].residential) == (None, False)
    assert rows[("SHP-2", 2)].outcome is StopOutcome.FAILED
    assert (rows[("SHP-3", 1)].zone, rows[("SHP-3", 1)].residential) == ("Zone 4", None)


async def test_a_csv_file_in_a_multipart_form_is_recorded(api, sessions):
    text = csv_text(f"SHP-1,{CLIENT_ID},{DEPOT_ID},{at()},delivered,A,false,1")
    headers = {"Authorization": f"Bearer {api.keys['ops']}"}

    response = await api.raw.post(
        "/deliveries", files={"file": ("stops.csv", text, "text/csv")}, headers=headers
    )
    no_file = await api.raw.post(
        "/deliveries", files={"attachment": ("stops.csv", text, "text/csv")}, headers=headers
    )

    assert counts(response) == (1, 1, 0, 0, 0)
    assert (await stored(sessions))[("SHP-1", 1)].zone == "A"
    assert_problem(no_file, 422, "file")


async def test_bad_csv_rows_are_named_by_data_row_line_and_field(api, sessions):
    when = at()
    text = csv_text(
        f"SHP-1,{CLIENT_ID},{DEPOT_ID},{when},delivered,B,true,1",
        "",  # a blank line: neither a row nor an error
        f"SHP-2,{CLIENT_ID},{DEPOT_ID},{when},delivered,B,yes,1",
        f"SHP-3,{CLIENT_ID},{DEPOT_ID},21/11/2026 09:30,delivered,B,true,one",
        f"SHP-4,{CLIENT_ID},{DEPOT_ID},{when},delivered,B,true",
        f'"SHP 5",{CLIENT_ID},{DEPOT_ID},{when},Delivered,-B,true,1',
        f",{CLIENT_ID},{DEPOT_ID},{when},delivered,B,true,1",
    )

    response = await post_raw(api, text, "text/csv")

    assert_problem(response, 422, "residential", "attempted_at", "attempt_number")
    found = [(e["row"], e.get("line"), e["field"]) for e in response.json()["errors"]]
    assert found == [
        (2, 4, "residential"),
        (3, 5, "attempt_number"),
        (3, 5, "attempted_at"),
        (4, 6, "row"),
        (5, 7, "shipment_id"),
        (5, 7, "outcome"),
        (5, 7, "zone"),
        (6, 8, "shipment_id"),
    ]
    messages = {(e["row"], e["field"]): e["message"] for e in response.json()["errors"]}
    assert messages[(2, "residential")] == "'yes' is not true, false, 1 or 0 (or empty)"
    assert messages[(4, "row")] == "7 cells where the header has 8 columns"
    assert messages[(6, "shipment_id")] == "required"
    assert await stored(sessions) == {}


@pytest.mark.parametrize(
    ("header", "complaint"),
    [
        (HEADER.replace(",zone", ""), "lacks zone"),
        (HEADER + ",colour", "unknown column(s) 'colour'"),
        (HEADER + ",zone", "named twice: zone"),
        (HEADER.replace(",", ";"), "lacks shipment_id"),
    ],
)
async def test_a_csv_header_that_lacks_or_adds_columns_is_one_clear_error(api, header, complaint):
    response = await post_raw(api, csv_text(header=header), "text/csv")

    problem = assert_problem(response, 422, "header")
    assert complaint in problem["detail"]
    assert len(problem["errors"]) == 1


async def test_a_csv_with_only_a_header_is_an_empty_batch(api):
    assert counts(await post_raw(api, HEADER + "\r\n", "text/csv")) == (0, 0, 0, 0, 0)


# --- what must never be a 500 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "status", "field"),
    [
        (b"", "application/json", 422, "body"),
        (b"   ", "text/csv", 422, "body"),
        (b"{not json", "application/json", 422, "body"),
        (b'{"shipment_id": "SHP-1"}', "application/json", 422, "body"),
        (b"[NaN]", "application/json", 422, "body"),
        (b'[{"attempt_number": Infinity}]', "application/json", 422, "body"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 422, "body"),
        (b"\xff\xfe\x00garbage", "application/json", 422, "body"),
        (HEADER.encode() + b"\nSHP-\xe9,acme", "text/csv", 422, "body"),
        (HEADER.encode() + b'\n"SHP-1,acme', "text/csv", 422, "body"),
        (
            HEADER.encode() + b"\nSHP-\x00,acme,ldn-1,2026-11-21T09:30Z,failed,,,1",
            "text/csv",
            422,
            "shipment_id",
        ),
        (HEADER.encode(), "text/csv; charset=latin-1", 415, None),
        (b"[]", "application/xml", 415, None),
        (b"[]", "", 415, None),
    ],
)
async def test_unreadable_bodies_are_problems_not_500s(api, content, content_type, status, field):
    response = await post_raw(api, content, content_type)

    assert_problem(response, status, *([field] if field else []))


async def test_absurd_values_in_a_record_are_bad_rows(api, sessions):
    huge = "9" * 5000
    raw = (
        b'[{"shipment_id": "SHP-1", "client_id": "acme", "depot_id": "ldn-1", '
        b'"attempted_at": "2026-11-21T09:30:00Z", "outcome": "delivered", '
        b'"attempt_number": 1e400}, '
        b'{"shipment_id": 12, "client_id": null, "depot_id": ["ldn-1"], '
        b'"attempted_at": true, "outcome": 1, "attempt_number": 1.0, "residential": "true"}, '
        b'{"shipment_id": "' + b"S" * 100_000 + b'", "attempt_number": 0}]'
    )

    response = await post_raw(api, raw, "application/json")
    too_big_integer = await post_raw(
        api, f'[{{"attempt_number": {huge}}}]'.encode(), "application/json"
    )

    assert_problem(response, 422, "attempt_number", "shipment_id")
    found = row_errors(response)
    assert (1, "attempt_number") in found
    assert {field for row, field in found if row == 2} == {
        "shipment_id",
        "client_id",
        "depot_id",
        "attempted_at",
        "outcome",
        "attempt_number",
        "residential",
    }
    assert (3, "shipment_id") in found and (3, "attempt_number") in found
    assert too_big_integer.status_code == 422
    assert await stored(sessions) == {}


# --- the 10,000 cap -------------------------------------------------------------------------


async def test_more_than_ten_thousand_records_is_413(api, sessions):
    batch = [record(n) for n in range(10_001)]
    text = csv_text(
        *[f"SHP-{n},{CLIENT_ID},{DEPOT_ID},{at()},delivered,B,true,1" for n in range(10_001)]
    )

    as_json = await post_raw(api, json.dumps(batch), "application/json")
    as_csv = await post_raw(api, text, "text/csv")

    assert "at most 10000 records" in assert_problem(as_json, 413)["detail"]
    assert "at most 10000 records" in assert_problem(as_csv, 413)["detail"]
    assert await stored(sessions) == {}


async def test_a_body_past_eight_mebibytes_is_413_before_it_is_parsed(api, sessions):
    padded = b"[" + b" " * (8 * 1024 * 1024) + b"]"

    as_json = await post_raw(api, padded, "application/json")
    as_file = await api.raw.post(
        "/deliveries",
        files={"file": ("stops.csv", padded, "text/csv")},
        headers={"Authorization": f"Bearer {api.keys['ops']}"},
    )

    assert "larger than 8388608 bytes" in assert_problem(as_json, 413)["detail"]
    assert_problem(as_file, 413)
    assert await stored(sessions) == {}


async def test_ten_thousand_records_are_recorded_in_one_batch(api, sessions):
    when = at()
    batch = [record(n, attempted_at=when, attempt_number=1 + n % 3) for n in range(10_000)]

    first = await post_raw(api, json.dumps(batch), "application/json")
    again = await post_raw(api, json.dumps(batch), "application/json")

    assert counts(first) == (10_000, 10_000, 0, 0, 0)
    assert counts(again) == (10_000, 0, 10_000, 0, 0)
    assert len(await stored(sessions)) == 10_000


# --- the promised day (optional; the on-time rate of the client's reports) ------------------


async def test_a_promised_day_is_recorded_from_json_and_a_later_record_fills_it_in(api, sessions):
    first = record(1, promised_on="2026-11-25")
    bare = record(2)
    assert counts(await post_json(api, [first, bare]))[1] == 2

    filled = await post_json(api, [{**bare, "promised_on": "2026-11-26"}])
    without = await post_json(api, [{k: v for k, v in first.items() if k != "promised_on"}])

    assert counts(filled) == (1, 0, 0, 1, 0)
    assert counts(without) == (1, 0, 1, 0, 0)  # leaving it out erases nothing
    rows = await stored(sessions)
    assert rows[("SHP-1", 1)].promised_on == date(2026, 11, 25)
    assert rows[("SHP-2", 1)].promised_on == date(2026, 11, 26)


async def test_another_promised_day_for_a_recorded_stop_is_refused_not_overwritten(api, sessions):
    assert counts(await post_json(api, [record(1, promised_on="2026-11-25")]))[1] == 1

    response = await post_json(api, [record(1, promised_on="2026-11-27")])

    body = assert_problem(response, 422, "promised_on")
    assert "with promised_on 2026-11-25" in body["errors"][0]["message"]
    [row] = (await stored(sessions)).values()
    assert row.promised_on == date(2026, 11, 25)


@pytest.mark.parametrize("bad", [20261125, "25/11/2026", "2026-02-30", "2026-11-25T10:00:00Z"])
async def test_a_promised_day_that_is_not_a_date_is_named(api, sessions, bad):
    response = await post_json(api, [record(1, promised_on=bad)])

    assert_problem(response, 422, "promised_on")
    assert row_errors(response) == [(1, "promised_on")]
    assert await stored(sessions) == {}


async def test_a_csv_may_carry_the_promised_day_column(api, sessions):
    when = at()
    text = csv_text(
        f"SHP-1,{CLIENT_ID},{DEPOT_ID},{when},delivered,B,true,1,2026-11-25",
        f"SHP-2,{CLIENT_ID},{DEPOT_ID},{when},delivered,B,true,1,",
        header=HEADER + ",promised_on",
    )

    assert counts(await post_raw(api, text, "text/csv")) == (2, 2, 0, 0, 0)
    rows = await stored(sessions)
    assert rows[("SHP-1", 1)].promised_on == date(2026, 11, 25)
    assert rows[("SHP-2", 1)].promised_on is None
    # without the column, as before
    plain = csv_text(f"SHP-3,{CLIENT_ID},{DEPOT_ID},{when},delivered,B,true,1")
    assert counts(await post_raw(api, plain, "text/csv"))[1] == 1
