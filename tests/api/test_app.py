"""The application factory and the error envelope every response shares."""

from __future__ import annotations

import httpx
import pytest
from temporalio.client import WorkflowHandle

from api.deps import now
from api.errors import Problem, temporal_call
from api.main import create_app
from core.settings import Settings
from tests.api.conftest import Api, assert_problem


async def test_the_lifespan_builds_the_engine_and_a_lazy_temporal_client(
    tmp_path, sessions, database_url
):
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path,
        database_url=database_url,  # with the schema (`sessions` created it)
        temporal_address="127.0.0.1:1",  # nothing listens: the API must start anyway
    )
    app = create_app(settings)

    async with app.router.lifespan_context(app):
        assert app.state.engine is not None and app.state.temporal is not None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["database"] == {"ok": True}
        assert health.json()["temporal"]["ok"] is False


async def test_an_unexpected_error_is_a_500_problem_without_a_stack_trace(app, keys):
    def broken_clock():
        raise ZeroDivisionError("secret internals")

    app.dependency_overrides[now] = broken_clock
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/cases", headers={"Authorization": f"Bearer {keys['viewer']}"})

    problem = assert_problem(response, 500)
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert problem["detail"] == "an unexpected error occurred"


async def test_an_unknown_route_is_a_404_problem(api: Api):
    problem = assert_problem(await api.get("/nowhere"), 404)
    assert "/nowhere" in problem["detail"]


async def test_a_missing_body_field_is_named(api: Api):
    response = await api.post("/cases/failed-deliveries", json={"shipment_id": "S-1"})
    problem = assert_problem(response, 422, "client_id", "customer", "reason", "driver_id")
    assert "body" not in [e["field"] for e in problem["errors"]]


async def test_the_openapi_schema_describes_the_case_statuses(api: Api):
    schema = (await api.get("/openapi.json", role=None)).json()
    assert "/cases/{case_id}/redelivery" in schema["paths"]
    assert "waiting_on_customer" in schema["components"]["schemas"]["CaseStatus"]["description"]


def test_only_a_failed_client_connect_counts_as_temporal_unreachable():
    # The SDK's bridge raises a plain RuntimeError("Failed client connect: ...") (no own type).
    with pytest.raises(Problem) as caught, temporal_call():
        raise RuntimeError("Failed client connect: tcp connect error")
    assert caught.value.status == 503
    with pytest.raises(RuntimeError, match="our own bug"), temporal_call():
        raise RuntimeError("our own bug")


async def test_a_runtime_error_of_ours_around_temporal_is_a_500_not_a_503(
    api: Api, keys, app, monkeypatch
):
    case_id = (await api.open_case()).json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")

    async def broken_query(*args, **kwargs):
        raise RuntimeError("our own bug")

    monkeypatch.setattr(WorkflowHandle, "query", broken_query)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(
            f"/cases/{case_id}", headers={"Authorization": f"Bearer {keys['viewer']}"}
        )

    problem = assert_problem(response, 500)
    assert problem["detail"] == "an unexpected error occurred"
    assert "our own bug" not in response.text
