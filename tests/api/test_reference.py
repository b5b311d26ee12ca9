"""Reference data: clients (contacts, policy overrides), depots, pickup points, drivers."""

from __future__ import annotations

from tests.api.conftest import Api, assert_problem

NEW_CLIENT = {
    "id": "globex",
    "name": "Globex",
    "contacts": [
        {"kind": "shipment_notifications", "name": "Sam", "email": "sam@globex.example"},
        {"kind": "account_manager", "name": "Ann", "email": "ann@globex.example", "phone": "555"},
    ],
    "policy_overrides": {"failed_delivery": {"max_attempts": 2}},
}
NEW_DEPOT = {
    "id": "mcr-1",
    "name": "Manchester",
    "address": "5 Depot Rd, Manchester",
    "timezone": "Europe/London",
    "dispatcher": {"name": "Mo Dispatch", "email": "mo@example.com"},
}


async def test_admin_creates_a_client_with_contacts_and_viewers_read_it(api: Api):
    created = await api.post("/clients", json=NEW_CLIENT, role="admin")

    assert created.status_code == 201, created.text
    assert created.json()["policy_overrides"] == {"failed_delivery": {"max_attempts": 2}}
    fetched = (await api.get("/clients/globex")).json()
    assert {(c["kind"], c["email"]) for c in fetched["contacts"]} == {
        ("shipment_notifications", "sam@globex.example"),
        ("account_manager", "ann@globex.example"),
    }
    listed = (await api.get("/clients", params={"limit": 1})).json()
    assert listed["total"] == 2 and listed["limit"] == 1 and len(listed["items"]) == 1
    assert [c["id"] for c in listed["items"]] == ["acme"]
    second = (await api.get("/clients", params={"limit": 1, "offset": 1})).json()
    assert [c["id"] for c in second["items"]] == ["globex"]


async def test_a_duplicate_client_is_409(api: Api):
    response = await api.post("/clients", json={"id": "acme", "name": "Again"}, role="admin")
    problem = assert_problem(response, 409)
    assert "acme" in problem["detail"]


async def test_a_bad_policy_override_names_the_field(api: Api):
    bad_value = {**NEW_CLIENT, "policy_overrides": {"failed_delivery": {"max_attempts": 0}}}
    assert_problem(
        await api.post("/clients", json=bad_value, role="admin"),
        422,
        "policy_overrides.failed_delivery.max_attempts",
    )
    unknown_field = {**NEW_CLIENT, "policy_overrides": {"failed_delivery": {"colour": "red"}}}
    assert_problem(
        await api.post("/clients", json=unknown_field, role="admin"),
        422,
        "policy_overrides.failed_delivery.colour",
    )
    unknown_type = {**NEW_CLIENT, "policy_overrides": {"teleport": {}}}
    assert_problem(
        await api.post("/clients", json=unknown_type, role="admin"),
        422,
        "policy_overrides.teleport",
    )
    out_of_order = {
        **NEW_CLIENT,
        "policy_overrides": {"failed_delivery": {"reminder_after": "P3D"}},
    }
    assert_problem(
        await api.post("/clients", json=out_of_order, role="admin"),
        422,
        "policy_overrides.failed_delivery",
    )
    assert_problem(await api.get("/clients/globex"), 404)


async def test_a_bad_contact_email_names_the_field(api: Api):
    body = {**NEW_CLIENT, "contacts": [{"kind": "billing", "name": "B", "email": "nope"}]}
    assert_problem(await api.post("/clients", json=body, role="admin"), 422, "contacts.0.email")


async def test_unknown_client_depot_driver_are_404(api: Api):
    for path in (
        "/clients/ghost",
        "/depots/ghost",
        "/drivers/ghost",
        "/depots/ghost/pickup-points",
    ):
        assert_problem(await api.get(path), 404)


async def test_depots_with_their_dispatcher_and_pickup_points(api: Api):
    created = await api.post("/depots", json=NEW_DEPOT, role="admin")
    assert created.status_code == 201, created.text
    assert created.json()["dispatcher"]["email"] == "mo@example.com"
    assert_problem(await api.post("/depots", json=NEW_DEPOT, role="admin"), 409)

    point = {"id": "pp-mcr", "name": "Mall Lockers", "address": "1 Mall St"}
    added = await api.post("/depots/mcr-1/pickup-points", json=point, role="admin")
    assert added.status_code == 201 and added.json()["depot_id"] == "mcr-1"
    assert_problem(await api.post("/depots/mcr-1/pickup-points", json=point, role="admin"), 409)
    assert_problem(await api.post("/depots/mcr-1/pickup-points", json=point, role="ops"), 403)

    points = (await api.get("/depots/mcr-1/pickup-points")).json()
    assert [p["id"] for p in points["items"]] == ["pp-mcr"] and points["total"] == 1
    depot = (await api.get("/depots/mcr-1")).json()
    assert depot["dispatcher"]["name"] == "Mo Dispatch" and depot["timezone"] == "Europe/London"
    assert (await api.get("/depots")).json()["total"] == 3


async def test_a_depot_with_an_unknown_time_zone_names_the_field(api: Api):
    body = {**NEW_DEPOT, "timezone": "Mars/Olympus"}
    assert_problem(await api.post("/depots", json=body, role="admin"), 422, "timezone")


async def test_drivers_belong_to_a_known_depot(api: Api):
    driver = {"id": "drv-new", "name": "Ned", "email": "ned@example.com", "depot_id": "ldn-1"}
    created = await api.post("/drivers", json=driver, role="admin")
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "active"
    assert (await api.get("/drivers/drv-new")).json()["depot_id"] == "ldn-1"
    assert_problem(await api.post("/drivers", json=driver, role="admin"), 409)

    lost = {**driver, "id": "drv-lost", "depot_id": "atlantis"}
    problem = assert_problem(await api.post("/drivers", json=lost, role="admin"), 422, "depot_id")
    assert "atlantis" in problem["detail"]
    listed = (await api.get("/drivers", params={"depot_id": "ldn-1"})).json()
    assert {d["id"] for d in listed["items"]} == {"drv-7", "drv-new"}


async def test_page_size_is_capped(api: Api):
    assert_problem(await api.get("/clients", params={"limit": 500}), 422, "limit")
    assert_problem(await api.get("/cases", params={"offset": -1}), 422, "offset")
