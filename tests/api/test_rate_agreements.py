"""Rate agreements (PUT/GET /clients/{id}/rate-agreement, GET /clients/{id}/rate-agreements)
and the client's time zone, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.api.conftest import CLIENT_ID, Api, assert_problem

PATH = f"/clients/{CLIENT_ID}/rate-agreement"


@pytest.fixture
def api(raw_client: httpx.AsyncClient, keys: dict[str, str]) -> Api:
    """No worker: agreements never reach Temporal."""
    return Api(raw=raw_client, keys=keys)


def today(timezone: str = "UTC") -> dt.date:
    return dt.datetime.now(ZoneInfo(timezone)).date()


def days(n: int, timezone: str = "UTC") -> str:
    return (today(timezone) + dt.timedelta(days=n)).isoformat()


def terms(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "effective_from": days(-30),
        "currency": "GBP",
        "base_rate_per_stop": "3.5",
        "zone_rates": {"A": "0", "B": "1.25"},
        "residential_surcharge": "0.75",
        "failed_attempt_fee": "4.00",
        "minimum_charge_per_invoice": "50.00",
        "tax_rate": "0.20",
        "billing_cycle": "monthly",
    }
    body.update(fields)
    return body


async def put(api: Api, body: dict[str, Any], *, role: str = "admin", client: str = CLIENT_ID):
    headers = {"Authorization": f"Bearer {api.keys[role]}"}
    return await api.raw.put(f"/clients/{client}/rate-agreement", json=body, headers=headers)


async def patch(api: Api, body: Any, *, role: str = "admin", client: str = CLIENT_ID):
    headers = {"Authorization": f"Bearer {api.keys[role]}"}
    return await api.raw.patch(f"/clients/{client}", json=body, headers=headers)


# --- putting and reading a version ----------------------------------------------------------


async def test_an_admin_puts_a_version_and_viewers_read_it_with_exact_money(api: Api):
    created = await put(api, terms())

    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{PATH}?on={days(-30)}"
    body = created.json()
    assert {k: body[k] for k in ("base_rate_per_stop", "residential_surcharge", "tax_rate")} == {
        "base_rate_per_stop": "3.50",
        "residential_surcharge": "0.75",
        "tax_rate": "0.20",
    }
    assert body["zone_rates"] == {"A": "0.00", "B": "1.25"}
    assert (body["status"], body["effective_to"], body["payment_terms_days"]) == (
        "in_force",
        None,
        30,
    )
    assert body["created_by"] == "admin:admin-key" and body["updated_by"] is None
    read = await api.get(PATH, role="viewer")
    assert read.status_code == 200 and read.json() == body


async def test_jpy_amounts_are_whole_yen(api: Api):
    yen = terms(
        currency="JPY",
        base_rate_per_stop="300",
        zone_rates={"B": "120"},
        residential_surcharge="50",
        failed_attempt_fee="500",
        minimum_charge_per_invoice="0",
    )

    assert (await put(api, yen)).json()["base_rate_per_stop"] == "300"
    refused = await put(api, {**yen, "effective_from": days(-29), "failed_attempt_fee": "500.5"})
    problem = assert_problem(refused, 422, "failed_attempt_fee")
    assert "more decimals than JPY allows (0)" in problem["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"base_rate_per_stop": 3.5}, "base_rate_per_stop"),  # a JSON number
        ({"base_rate_per_stop": "3.505"}, "base_rate_per_stop"),
        ({"base_rate_per_stop": "-1.00"}, "base_rate_per_stop"),
        ({"base_rate_per_stop": "NaN"}, "base_rate_per_stop"),
        ({"base_rate_per_stop": "1e3"}, "base_rate_per_stop"),
        ({"base_rate_per_stop": "9" * 40}, "base_rate_per_stop"),
        ({"failed_attempt_fee": None}, "failed_attempt_fee"),
        ({"minimum_charge_per_invoice": True}, "minimum_charge_per_invoice"),
        ({"tax_rate": 0.2}, "tax_rate"),
        ({"tax_rate": "1.5"}, "tax_rate"),
        ({"tax_rate": "0.1234567"}, "tax_rate"),
        ({"currency": "XXZ"}, "currency"),
        ({"currency": "gbp"}, "currency"),
        ({"zone_rates": {"B": "1.255"}}, "zone_rates"),
        ({"zone_rates": {"B": 1}}, "zone_rates.B"),
        ({"zone_rates": {" B": "1.00"}}, "zone_rates. B.[key]"),
        ({"zone_rates": [1, 2]}, "zone_rates"),
        ({"billing_cycle": "daily"}, "billing_cycle"),
        ({"payment_terms_days": "30"}, "payment_terms_days"),
        ({"payment_terms_days": 366}, "payment_terms_days"),
        ({"effective_from": "01/12/2026"}, "effective_from"),
        ({"effective_from": 20261201}, "effective_from"),
        ({"effective_from": "1999-12-31"}, "effective_from"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_a_bad_term_is_a_422_naming_its_field(api: Api, change: dict[str, Any], field: str):
    response = await put(api, terms(**change))

    assert_problem(response, 422, field)
    assert (await api.get(PATH)).status_code == 404


async def test_only_admins_put_and_unknown_clients_are_404(api: Api):
    assert_problem(await put(api, terms(), role="ops"), 403)
    assert_problem(await put(api, terms(), client="nobody"), 404)
    assert_problem(await api.get("/clients/nobody/rate-agreement"), 404)
    assert_problem(await api.get("/clients/nobody/rate-agreements"), 404)
    assert_problem(await api.raw.get(PATH), 401)


# --- the same date again ------------------------------------------------------------------------


async def test_the_same_version_again_changes_nothing(api: Api):
    first = await put(api, terms())

    again = await put(api, terms(base_rate_per_stop="3.50", zone_rates={"B": "1.25", "A": "0.00"}))

    assert again.status_code == 200
    assert again.json() == first.json()


async def test_a_version_not_yet_in_force_may_be_replaced(api: Api):
    await put(api, terms())
    scheduled = terms(effective_from=days(10), base_rate_per_stop="3.80")
    assert (await put(api, scheduled)).status_code == 201

    replaced = await put(api, {**scheduled, "base_rate_per_stop": "3.90"})

    assert replaced.status_code == 200
    body = replaced.json()
    assert (body["base_rate_per_stop"], body["status"], body["updated_by"]) == (
        "3.90",
        "scheduled",
        "admin:admin-key",
    )
    history = (await api.get(f"{PATH}s")).json()["items"]
    assert [item["base_rate_per_stop"] for item in history] == ["3.50", "3.90"]


async def test_a_version_in_force_keeps_its_terms(api: Api):
    await put(api, terms())

    refused = await put(api, terms(base_rate_per_stop="2.00"))

    problem = assert_problem(refused, 409)
    assert "is in force" in problem["detail"] and "later effective_from" in problem["detail"]
    assert (await api.get(PATH)).json()["base_rate_per_stop"] == "3.50"


# --- history --------------------------------------------------------------------------------------


async def test_the_history_and_the_version_in_force_on_any_day(api: Api):
    for offset, base in ((-60, "3.00"), (-10, "3.50"), (20, "4.00")):
        response = await put(api, terms(effective_from=days(offset), base_rate_per_stop=base))
        assert response.status_code == 201, response.text

    history = (await api.get(f"{PATH}s")).json()
    on_old_day = await api.get(PATH, params={"on": days(-30)})
    on_future_day = await api.get(PATH, params={"on": days(25)})
    before_all = await api.get(PATH, params={"on": days(-61)})

    assert history["today"] == days(0) and history["timezone"] == "UTC"
    assert [(i["effective_from"], i["effective_to"], i["status"]) for i in history["items"]] == [
        (days(-60), days(-11), "superseded"),
        (days(-10), days(19), "in_force"),
        (days(20), None, "scheduled"),
    ]
    assert (await api.get(PATH)).json()["base_rate_per_stop"] == "3.50"
    assert on_old_day.json()["base_rate_per_stop"] == "3.00"
    assert on_future_day.json()["base_rate_per_stop"] == "4.00"
    problem = assert_problem(before_all, 404)
    assert f"first version starts on {days(-60)}" in problem["detail"]
    assert_problem(await api.get(PATH, params={"on": "yesterday"}), 422, "on")


async def test_a_client_without_an_agreement_has_none_in_force(api: Api):
    problem = assert_problem(await api.get(PATH), 404)

    assert "no rate agreement in force" in problem["detail"]
    assert (await api.get(f"{PATH}s")).json()["items"] == []


async def test_today_is_the_clients_today(api: Api):
    """Kiribati's Line Islands are UTC+14: their today is often UTC's tomorrow."""
    zone = "Pacific/Kiritimati"
    assert (await patch(api, {"timezone": zone})).status_code == 200

    await put(api, terms(effective_from=days(0, zone)))

    history = (await api.get(f"{PATH}s")).json()
    assert history["today"] == days(0, zone)
    assert history["items"][0]["status"] == "in_force"


# --- the client's time zone -----------------------------------------------------------------------


async def test_a_client_is_created_with_a_time_zone_defaulting_to_utc(api: Api):
    created = await api.post(
        "/clients",
        json={"id": "globex", "name": "Globex", "timezone": "America/New_York"},
        role="admin",
    )
    plain = await api.post("/clients", json={"id": "initech", "name": "Initech"}, role="admin")
    bad = await api.post(
        "/clients", json={"id": "hooli", "name": "Hooli", "timezone": "Mars/Olympus"}, role="admin"
    )

    assert created.status_code == 201 and created.json()["timezone"] == "America/New_York"
    assert plain.json()["timezone"] == "UTC"
    assert "unknown time zone" in assert_problem(bad, 422, "timezone")["detail"]


async def test_an_admin_changes_a_clients_time_zone_or_name(api: Api):
    changed = await patch(api, {"timezone": "Europe/London"})
    renamed = await patch(api, {"name": "Acme Retail Ltd"})

    assert changed.json()["timezone"] == "Europe/London"
    assert (renamed.json()["name"], renamed.json()["timezone"]) == (
        "Acme Retail Ltd",
        "Europe/London",
    )
    assert (await api.get(f"/clients/{CLIENT_ID}")).json()["timezone"] == "Europe/London"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"timezone": "../../etc/passwd"}, 422, "timezone"),
        ({"timezone": None}, 422, "timezone"),
        ({"timezone": ""}, 422, "timezone"),
        ({}, 422, "body"),
        ({"id": "other"}, 422, "id"),
        ([], 422, "body"),
    ],
)
async def test_a_bad_change_is_refused(api: Api, body: Any, status: int, field: str):
    assert_problem(await patch(api, body), status, field)
    assert (await api.get(f"/clients/{CLIENT_ID}")).json()["timezone"] == "UTC"


async def test_only_admins_change_a_client_and_unknown_clients_are_404(api: Api):
    assert_problem(await patch(api, {"timezone": "UTC"}, role="ops"), 403)
    assert_problem(await patch(api, {"timezone": "UTC"}, client="nobody"), 404)
