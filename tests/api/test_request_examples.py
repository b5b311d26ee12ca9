"""Every JSON request body in the OpenAPI document has an example (`schemas/examples.py`),
every example parses as its model whenever it is built, and on the demo data that `make run`
seeds the examples are requests the API accepts: "Try it out" in `/docs` works as it is."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from api.main import create_app
from core.bootstrap import demo_data
from core.db import SessionFactory
from core.settings import Settings
from schemas import examples
from schemas.examples import example
from schemas.tables import TeamContact
from tests.api.conftest import Api

# Around the clock changes and the turn of the year in London (the demo data's zone).
BUILT_AT = [
    dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 31, 23, 45, tzinfo=dt.UTC),
    dt.datetime(2027, 1, 1, 0, 15, tzinfo=dt.UTC),
]


def _models() -> list[type[BaseModel]]:
    """Every model that declares an example of its own (importing the app imports them all)."""
    create_app  # noqa: B018  # imported for its side effect: every route's models are defined
    found: list[type[BaseModel]] = []
    pending: list[type[BaseModel]] = [BaseModel]
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        own = cls.__dict__.get("model_config", {}).get("json_schema_extra")
        if isinstance(own, example) and cls.__module__.split(".")[0] in ("api", "schemas"):
            found.append(cls)
    return sorted(set(found), key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


MODELS = _models()


def test_the_request_models_have_examples():
    names = {cls.__name__ for cls in MODELS}
    assert {"FailedDeliveryOpen", "DamageClaimOpen", "DriverOnboardingOpen", "InvoiceOpen"} <= names
    assert {"ClientCreate", "DepotCreate", "RateAgreement", "NoteIn", "AssignIn"} <= names
    assert len(MODELS) >= 30, names


@pytest.mark.parametrize("model", MODELS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("at", [None, *BUILT_AT], ids=lambda at: at.isoformat() if at else "now")
def test_an_example_parses_as_its_model(model: type[BaseModel], at: dt.datetime | None):
    extra = model.model_config["json_schema_extra"]
    assert isinstance(extra, example)
    built_at = at or dt.datetime.now(dt.UTC)

    body = extra.build(built_at)

    model.model_validate(body, context={"now": built_at})
    assert model.model_json_schema()["examples"][0].keys() == body.keys()


def _component(doc: dict[str, Any], schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The body's model schema and its component name, through a `$ref`, an optional body's
    `anyOf` and a list's items."""
    name = ""
    for _ in range(4):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            schema = doc["components"]["schemas"][name]
        elif schema.get("anyOf"):
            schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
        elif schema.get("type") == "array":
            schema = schema["items"]
        else:
            break
    return name or schema.get("title", ""), schema


def _example_of(doc: dict[str, Any], media: dict[str, Any]) -> Any:
    """The example Swagger UI fills "Try it out" with: the media type's, else the model's."""
    if "example" in media:
        return media["example"]
    if media.get("examples"):
        return next(iter(media["examples"].values()))["value"]
    _, schema = _component(doc, media["schema"])
    if not schema.get("examples"):
        return None
    one = schema["examples"][0]
    return [one] if media["schema"].get("type") == "array" else one


def _json_bodies(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation["requestBody"]["content"]["application/json"])
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


def test_every_json_request_body_in_the_openapi_document_has_an_example_that_parses(tmp_path):
    doc = create_app(Settings(_env_file=None, environment="test", data_dir=tmp_path)).openapi()
    by_title = {cls.model_json_schema().get("title"): cls for cls in MODELS}
    by_title.update({f"{cls.__module__}.{cls.__name__}": cls for cls in MODELS})
    bodies = _json_bodies(doc)

    assert len(bodies) > 35
    missing = [operation for operation, media in bodies if _example_of(doc, media) is None]
    assert not missing, f"no example: {missing}"
    checked = []
    for operation, media in bodies:
        name, _ = _component(doc, media["schema"])
        model = by_title.get(name.replace("__", "."))
        if model is None:  # the codec's payloads: an inline schema with its own example
            assert operation.startswith("POST /codec/"), operation
            continue
        body = _example_of(doc, media)
        for item in body if isinstance(body, list) else [body]:
            try:
                model.model_validate(item, context={"now": dt.datetime.now(dt.UTC)})
            except ValidationError as err:
                pytest.fail(f"{operation}: its example is not a {model.__name__}: {err}")
        checked.append(operation)
    assert len(checked) == len(bodies) - 2, checked


# --- on the demo data ---------------------------------------------------------------------


@pytest.fixture
async def demo(sessions: SessionFactory) -> None:
    """`make run`'s demo data beside the test's reference data (our claims desk is there)."""
    async with sessions() as session:
        for row in demo_data():
            if isinstance(row, TeamContact) and row.role.value == "claims_desk":
                continue
            session.add(row)
            await session.flush()
        await session.commit()


def _built(builder: examples.Builder) -> dict[str, Any]:
    return builder(dt.datetime.now(dt.UTC))


async def _accepted(api: Api, method: str, path: str, builder: examples.Builder, role: str):
    headers = {"Authorization": f"Bearer {api.keys[role]}"}
    body: Any = _built(builder)
    if builder is examples.delivery_record:
        body = [body]
    response = await api.raw.request(method, path, json=body, headers=headers)
    assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


async def test_the_opening_examples_open_cases_on_the_demo_data(api: Api, demo: None):
    opened = [
        ("/cases/failed-deliveries", examples.failed_delivery_open),
        ("/cases/damage-claims", examples.damage_claim_open),
        ("/cases/driver-onboardings", examples.driver_onboarding_open),
        ("/cases/unpaid-invoices", examples.invoice_open),
    ]
    cases = [await _accepted(api, "POST", path, builder, "ops") for path, builder in opened]

    assert [case["case_id"] for case in cases] == [
        f"failed-delivery-{examples.SHIPMENT_ID}",
        f"damage-claim-{examples.DAMAGED_SHIPMENT_ID}",
        "driver-onboarding-driver-004",
        f"unpaid-invoice-{examples.INVOICE_ID}",
    ]
    failed_delivery = cases[0]["case_id"]
    await api.wait_for(failed_delivery, "waiting_on_customer")
    for action, builder in [
        ("notes", examples.note),
        ("assign", examples.assign),
        ("escalate", examples.reason),
        ("redelivery", examples.redelivery),
    ]:
        await _accepted(api, "POST", f"/cases/{failed_delivery}/{action}", builder, "ops")
    invoice = cases[3]["case_id"]
    await api.wait_for(invoice)
    for action, builder in [
        ("payments", examples.payment),
        ("promise-to-pay", examples.promise),
        ("disputes", examples.dispute),
    ]:
        await _accepted(api, "POST", f"/cases/{invoice}/{action}", builder, "ops")


async def test_the_reference_data_examples_are_accepted_on_the_demo_data(api: Api, demo: None):
    for method, path, builder in [
        ("POST", "/clients", examples.client_create),
        ("PATCH", "/clients/demo-shop", examples.client_update),
        ("POST", "/clients/demo-shop/contacts", examples.contact),
        ("PUT", "/clients/demo-shop/rate-agreement", examples.rate_agreement),
        ("POST", "/depots", examples.depot),
        ("POST", "/depots/depot-north/pickup-points", examples.pickup_point),
        ("POST", "/drivers", examples.driver),
        ("POST", "/api-keys", examples.api_key),
        ("POST", "/deliveries", examples.delivery_record),
        ("POST", "/invoicing-runs", examples.invoicing_run),
        ("POST", "/reports/runs", examples.report_run),
    ]:  # (pausing the schedules needs Temporal schedules: the time-skipping server has none)
        await _accepted(api, method, path, builder, "admin")
