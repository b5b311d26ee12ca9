"""API keys and roles: 401 without a valid key, 403 below the route's role; admin keys."""

from __future__ import annotations

import httpx

from api.ratelimit import FailureLimiter
from tests.api.conftest import Api, assert_problem, failed_delivery


async def test_no_key_is_401_with_a_bearer_challenge(api: Api):
    response = await api.get("/cases", role=None)
    problem = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in problem["detail"]


async def test_an_unknown_key_is_401(api: Api):
    response = await api.raw.get("/cases", headers={"Authorization": "Bearer cd_not-a-real-key"})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_revoked_key_is_401(api: Api):
    response = await api.get("/cases", role="revoked")
    problem = assert_problem(response, 401)
    assert "revoked" in problem["detail"]


async def test_a_viewer_cannot_open_a_case(api: Api, sessions):
    from sqlmodel import select

    from schemas.tables import Case

    response = await api.post("/cases/failed-deliveries", json=failed_delivery(), role="viewer")
    problem = assert_problem(response, 403)
    assert "ops" in problem["detail"]
    async with sessions() as session:
        assert (await session.exec(select(Case))).all() == []


async def test_ops_cannot_create_a_client(api: Api):
    response = await api.post("/clients", json={"id": "x", "name": "X"}, role="ops")
    problem = assert_problem(response, 403)
    assert "admin" in problem["detail"]


async def test_admin_creates_a_key_shown_once_and_it_works(api: Api):
    created = await api.post("/api-keys", json={"name": "routing", "role": "ops"}, role="admin")

    assert created.status_code == 201, created.text
    key = created.json()
    assert key["key"].startswith("cd_") and key["prefix"] == key["key"][:8]
    assert key["role"] == "ops" and key["revoked_at"] is None
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert (await api.raw.get("/cases", headers=headers)).status_code == 200

    listed = (await api.get("/api-keys", role="admin")).json()
    assert listed["total"] == 5
    routing = next(k for k in listed["items"] if k["name"] == "routing")
    assert "key" not in routing and "key_hash" not in routing
    assert routing["prefix"] == key["prefix"]


async def test_a_revoked_key_stops_working_at_once(api: Api):
    key = (
        await api.post("/api-keys", json={"name": "temp", "role": "viewer"}, role="admin")
    ).json()
    headers = {"Authorization": f"Bearer {key['key']}"}

    revoked = await api.delete(f"/api-keys/{key['id']}")

    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert_problem(await api.raw.get("/cases", headers=headers), 401)


async def test_revoking_an_unknown_key_is_404(api: Api):
    assert_problem(await api.delete("/api-keys/00000000-0000-0000-0000-000000000000"), 404)


async def test_keys_are_admin_only(api: Api):
    assert_problem(await api.get("/api-keys", role="ops"), 403)
    assert_problem(await api.post("/api-keys", json={"name": "x", "role": "admin"}), 403)


async def test_a_key_with_an_unknown_role_names_the_field(api: Api):
    response = await api.post("/api-keys", json={"name": "x", "role": "root"}, role="admin")
    assert_problem(response, 422, "role")


# --- key guessing is slowed down per client address -----------------------------------------


def _from(app, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_a_run_of_wrong_keys_is_429_for_that_address_only(api: Api, app, settings):
    wrong = {"Authorization": "Bearer cd_guess"}
    right = {"Authorization": f"Bearer {api.keys['viewer']}"}
    async with _from(app, "203.0.113.7") as guesser, _from(app, "198.51.100.2") as colleague:
        for _ in range(settings.auth_failure_limit):
            assert_problem(await guesser.get("/cases", headers=wrong), 401)

        blocked = await guesser.get("/cases", headers=wrong)
        even_the_right_key = await guesser.get("/cases", headers=right)
        elsewhere = await colleague.get("/cases", headers=right)

    problem = assert_problem(blocked, 429)
    assert "too many wrong keys" in problem["detail"]
    assert 0 < int(blocked.headers["retry-after"]) <= settings.auth_failure_window_seconds
    assert_problem(even_the_right_key, 429)
    assert elsewhere.status_code == 200, elsewhere.text


async def test_a_run_of_wrong_console_logins_is_429_for_that_address_only(api: Api, app, settings):
    async with _from(app, "203.0.113.8") as guesser, _from(app, "198.51.100.3") as colleague:
        for _ in range(settings.auth_failure_limit):
            wrong = await guesser.post("/console/login", data={"api_key": "cd_guess"})
            assert wrong.status_code == 401

        blocked = await guesser.post("/console/login", data={"api_key": api.keys["ops"]})
        elsewhere = await colleague.post("/console/login", data={"api_key": api.keys["ops"]})

    assert blocked.status_code == 429 and "Too many wrong keys" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0
    assert "set-cookie" not in blocked.headers
    assert elsewhere.status_code == 303


def test_failures_age_out_of_the_window():
    now = [1000.0]
    limiter = FailureLimiter(limit=2, window=60, clock=lambda: now[0])
    limiter.failed("a")
    now[0] += 30
    limiter.failed("a")

    assert limiter.retry_after("a") == 30
    assert limiter.retry_after("b") is None
    now[0] += 30
    assert limiter.retry_after("a") is None  # the first failure is older than the window
