"""`Idempotency-Key` on the POSTs that open and act on cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from schemas.tables import IdempotencyKey
from tests.api.conftest import Api, assert_problem, failed_delivery


def _key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


async def _notes(api: Api, case_id: str, text: str) -> list[dict]:
    timeline = (await api.get(f"/cases/{case_id}")).json()["timeline"]
    return [e for e in timeline if e["kind"] == "note" and e["summary"] == text]


async def _waiting_case(api: Api) -> str:
    case_id = (await api.open_case()).json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")
    return case_id


async def test_the_same_key_and_body_replays_the_first_answer(api: Api):
    case_id = await _waiting_case(api)
    path, note = f"/cases/{case_id}/notes", {"text": "Called the customer"}
    auth = api._auth("ops")

    first = await api.raw.post(path, json=note, headers={**auth, **_key("note-1")})
    again = await api.raw.post(path, json=note, headers={**auth, **_key("note-1")})

    assert first.status_code == 200, first.text
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(await _notes(api, case_id, "Called the customer")) == 1


async def test_an_opening_replays_its_201_with_the_location(api: Api):
    body, auth = failed_delivery(), api._auth("ops")

    first = await api.raw.post("/cases/failed-deliveries", json=body, headers={**auth, **_key("o")})
    again = await api.raw.post("/cases/failed-deliveries", json=body, headers={**auth, **_key("o")})

    assert first.status_code == 201 and again.status_code == 201, again.text
    assert again.headers["location"] == first.headers["location"]
    assert again.json() == first.json()


async def test_the_same_key_with_another_body_is_422_naming_the_header(api: Api):
    case_id = await _waiting_case(api)
    path, auth = f"/cases/{case_id}/notes", api._auth("ops")
    await api.raw.post(path, json={"text": "one"}, headers={**auth, **_key("k")})

    response = await api.raw.post(path, json={"text": "two"}, headers={**auth, **_key("k")})

    assert_problem(response, 422, "Idempotency-Key")
    assert await _notes(api, case_id, "two") == []


async def test_keys_are_the_callers_own(api: Api):
    case_id = await _waiting_case(api)
    path, note = f"/cases/{case_id}/notes", {"text": "Same words"}

    ops = await api.raw.post(path, json=note, headers={**api._auth("ops"), **_key("shared")})
    admin = await api.raw.post(path, json=note, headers={**api._auth("admin"), **_key("shared")})

    assert ops.status_code == 200 and admin.status_code == 200
    assert "idempotent-replayed" not in admin.headers
    assert len(await _notes(api, case_id, "Same words")) == 2


async def test_a_malformed_key_is_422(api: Api):
    case_id = await _waiting_case(api)
    headers = {**api._auth("ops"), **_key("x" * 256)}

    response = await api.raw.post(f"/cases/{case_id}/notes", json={"text": "a"}, headers=headers)

    assert_problem(response, 422, "Idempotency-Key")


async def test_a_key_is_kept_24_hours(api: Api, sessions):
    case_id = await _waiting_case(api)
    path, note, auth = f"/cases/{case_id}/notes", {"text": "Later"}, api._auth("ops")
    await api.raw.post(path, json=note, headers={**auth, **_key("day")})
    async with sessions() as session:
        kept = (await session.exec(select(IdempotencyKey))).one()
        assert kept.expires_at - kept.created_at == timedelta(hours=24)
        kept.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(kept)
        await session.commit()

    after = await api.raw.post(path, json=note, headers={**auth, **_key("day")})

    assert after.status_code == 200 and "idempotent-replayed" not in after.headers
    assert len(await _notes(api, case_id, "Later")) == 2  # the expired key ran again


async def test_a_retry_after_an_unkept_answer_applies_the_action_once(api: Api, sessions):
    """A 504 (or any 5xx) is not kept, so the same key runs the request again: the update id
    derived from the key makes Temporal apply the note once."""
    case_id = await _waiting_case(api)
    path, note, auth = f"/cases/{case_id}/notes", {"text": "Once only"}, api._auth("ops")
    assert (await api.raw.post(path, json=note, headers={**auth, **_key("r")})).status_code == 200
    async with sessions() as session:  # as if the first answer had been a 504: not kept
        kept = (await session.exec(select(IdempotencyKey))).one()
        kept.status_code, kept.body, kept.claimed_at = None, None, None
        session.add(kept)
        await session.commit()

    retried = await api.raw.post(path, json=note, headers={**auth, **_key("r")})

    assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers
    assert len(await _notes(api, case_id, "Once only")) == 1


async def test_the_openapi_document_lists_the_header_on_openings_and_actions(api: Api):
    paths = (await api.get("/openapi.json", role=None)).json()["paths"]

    def takes_key(path: str) -> bool:
        return any(p["name"] == "Idempotency-Key" for p in paths[path]["post"]["parameters"])

    assert takes_key("/cases/failed-deliveries") and takes_key("/cases/{case_id}/notes")
    assert takes_key("/cases/{case_id}/documents") and takes_key("/drivers/{driver_id}/offboard")
    assert "parameters" not in paths["/clients"]["post"] or not any(
        p["name"] == "Idempotency-Key" for p in paths["/clients"]["post"]["parameters"]
    )


async def test_a_second_request_while_the_first_runs_is_409_to_retry(api: Api, sessions):
    case_id = await _waiting_case(api)
    path, note, auth = f"/cases/{case_id}/notes", {"text": "Busy"}, api._auth("ops")
    assert (await api.raw.post(path, json=note, headers={**auth, **_key("b")})).status_code == 200
    async with sessions() as session:  # as if the first request were still running
        kept = (await session.exec(select(IdempotencyKey))).one()
        kept.status_code, kept.claimed_at = None, datetime.now(UTC)
        session.add(kept)
        await session.commit()

    response = await api.raw.post(path, json=note, headers={**auth, **_key("b")})

    assert_problem(response, 409)
    assert response.headers["retry-after"] == "1"
    assert len(await _notes(api, case_id, "Busy")) == 1
