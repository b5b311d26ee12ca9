"""API keys and roles: 401 without a valid key, 403 below the route's role; admin keys."""

from __future__ import annotations

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
