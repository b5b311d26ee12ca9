"""The case-type registry (`schemas.case_types`) is complete: every entry names a workflow the
worker runs, updates that workflow defines, routes the API mounts, templates that render,
console forms for its actions, a policy with valid defaults, and described statuses.

Each test walks every registered type, so a new case type is checked the moment it is
declared."""

from __future__ import annotations

import importlib
import typing
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from temporalio import workflow

import worker
from activities.rendering import DEFAULT_TEMPLATE_DIR, EmailRenderer
from api.console.forms import actions_for
from api.main import create_app
from core.settings import Settings
from schemas.case_types import CASE_TYPES, CaseTypeSpec, resolve_policy
from schemas.cases import CaseState
from schemas.contracts import STATE_QUERY
from schemas.enums import CaseStatus, CaseType, Resolution

SPECS = list(CASE_TYPES.values())
by_type = pytest.mark.parametrize("spec", SPECS, ids=[s.case_type.value for s in SPECS])

# What the workflows and the messaging activity pass to a template (see each workflow's
# `_context` and `MessagingActivities`): a plausible message of each case type.
EVERY_MESSAGE: dict[str, Any] = {
    "recipient_name": "Ada Customer",
    "trace_url": "http://127.0.0.1:8233/namespaces/default/workflows/x",
    "escalation_reason": "Nobody answered within 48 hours",
    "link_url": "https://casedesk.example/r/abc.def",
    "link_expires_at": "2026-11-28T10:00:00+00:00",
}
PLAUSIBLE_CONTEXT: dict[CaseType, dict[str, Any]] = {
    CaseType.FAILED_DELIVERY: EVERY_MESSAGE
    | {
        "case_id": "failed-delivery-SHP-1",
        "subject": "Shipment SHP-1: attempt 1 failed (not_home)",
        "shipment_id": "SHP-1",
        "attempt_number": 1,
        "reason": "not_home",
        "respond_by": "2026-11-28T10:00:00+00:00",
        "summary": "Redelivery on Tue 24 Nov, 08:00-12:00",
        "delivery_date": "2026-11-24",
    },
    CaseType.DAMAGE_CLAIM: EVERY_MESSAGE
    | {
        "case_id": "damage-claim-SHP-1",
        "subject": "Claim for shipment SHP-1: damaged",
        "shipment_id": "SHP-1",
        "claim_type": "damaged",
        "declared_value": "149.90",
        "currency": "GBP",
        "deadline": "2026-11-26T10:00:00+00:00",
        "late": False,
        "description": "The box arrived crushed.",
        "missing": ["Photos of the damaged parcel"],
        "filed_at": "2026-11-25T10:00:00+00:00",
        "days_waiting": 7,
    },
    CaseType.DRIVER_ONBOARDING: EVERY_MESSAGE
    | {
        "case_id": "driver-onboarding-SHP-1",
        "subject": "Onboarding driver SHP-1 (van) at ldn-1",
        "driver_id": "SHP-1",
        "driver_name": "Dee Driver",
        "depot_id": "ldn-1",
        "items": ["driving_licence", "tax_form"],
        "vehicle_type": "van",
        "planned_start_date": "2026-12-01",
        "document_kind": "driving_licence",
        "rejected_reason": "The photo is blurred.",
        "in_review": ["proof_of_insurance"],
    },
    CaseType.DRIVER_COMPLIANCE: EVERY_MESSAGE
    | {
        "case_id": "driver-compliance-SHP-1",
        "subject": "Compliance watch for driver SHP-1 at ldn-1",
        "driver_id": "SHP-1",
        "driver_name": "Dee Driver",
        "depot_id": "ldn-1",
        "items": ["proof_of_insurance"],
        "document_kind": "proof_of_insurance",
        "expires_on": "2026-12-24",
    },
    CaseType.UNPAID_INVOICE: EVERY_MESSAGE
    | {
        "case_id": "unpaid-invoice-SHP-1",
        "subject": "Invoice SHP-1: 1234.50 GBP due 2026-12-01",
        "invoice_id": "SHP-1",
        "reference": "PO-77",
        "currency": "GBP",
        "amount": "1234.50",
        "balance": "734.50",
        "due_on": "2026-12-01",
        "days_overdue": 14,
    },
}


def workflow_class(spec: CaseTypeSpec) -> type:
    module, _, name = spec.workflow.partition(":")
    cls: type = getattr(importlib.import_module(module), name)
    return cls


def definition(spec: CaseTypeSpec) -> Any:
    """The SDK's definition of the workflow class (there is no public accessor for it)."""
    return workflow._Definition.must_from_class(workflow_class(spec))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    data = tmp_path_factory.mktemp("registry")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        data_dir=data,
        database_url=f"sqlite+aiosqlite:///{data / 'unused.db'}",
    )
    return create_app(settings)


def operations(app: FastAPI) -> dict[tuple[str, str], str]:
    """What the app serves, as its OpenAPI document publishes it: (method, path) → the
    operation id (which names the endpoint function)."""
    return {
        (method.upper(), path): operation["operationId"]
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    }


# --- the registry itself ------------------------------------------------------------------


@by_type
def test_each_entry_is_filed_under_its_own_case_type(spec: CaseTypeSpec):
    assert CASE_TYPES[spec.case_type] is spec


@by_type
def test_every_listed_status_is_a_case_status_with_a_description(spec: CaseTypeSpec):
    assert spec.statuses, f"{spec.case_type.value} lists no statuses"
    for status, description in spec.statuses.items():
        assert isinstance(status, CaseStatus), status
        assert description.strip(), f"{spec.case_type.value}: {status.value} is not described"


@by_type
def test_every_listed_resolution_is_a_resolution_with_a_description(spec: CaseTypeSpec):
    assert spec.resolutions, f"{spec.case_type.value} lists no resolutions"
    for resolution, description in spec.resolutions.items():
        assert isinstance(resolution, Resolution), resolution
        assert description.strip(), f"{spec.case_type.value}: {resolution.value} undescribed"


@by_type
def test_action_names_are_unique_within_a_type(spec: CaseTypeSpec):
    repeated = [name for name, n in Counter(spec.action_names).items() if n > 1]
    assert repeated == []


def test_link_purposes_are_unique_across_case_types():
    purposes = Counter(p for spec in SPECS for p in spec.link_purposes)
    assert [p for p, n in purposes.items() if n > 1] == []


@by_type
def test_the_default_policy_validates_and_survives_its_json_form(spec: CaseTypeSpec):
    default = spec.policy()

    assert spec.policy.model_validate(default.model_dump(mode="json")) == default
    assert resolve_policy(spec.case_type, None) == default


# --- the workflow -------------------------------------------------------------------------


@by_type
def test_the_workflow_is_registered_with_the_worker_under_its_type_name(spec: CaseTypeSpec):
    cls = workflow_class(spec)

    assert cls in worker.WORKFLOWS
    assert definition(spec).name == spec.workflow_type


@by_type
def test_the_workflow_starts_from_the_declared_input(spec: CaseTypeSpec):
    init = vars(workflow_class(spec)).get("__init__")

    assert definition(spec).arg_types == [spec.workflow_input]  # @workflow.run
    assert getattr(init, "__temporal_workflow_init", False), "no @workflow.init on the class"
    init_params = typing.get_type_hints(init)
    init_params.pop("return", None)
    assert list(init_params.values()) == [spec.workflow_input]


@by_type
def test_every_action_calls_an_update_the_workflow_defines_with_the_contracts_input(
    spec: CaseTypeSpec,
):
    updates = definition(spec).updates
    for action in spec.actions:
        handler = updates.get(action.update.name)
        assert handler is not None, f"{action.name}: no update '{action.update.name}'"
        assert handler.arg_types == [action.update.input], action.name


@by_type
def test_every_action_update_has_a_validator_and_answers_with_the_case_state(
    spec: CaseTypeSpec,
):
    updates = definition(spec).updates
    for action in spec.actions:
        handler = updates[action.update.name]
        assert handler.validator is not None, f"{action.update.name} has no validator"
        assert handler.ret_type is CaseState, action.update.name


@by_type
def test_the_workflow_answers_the_state_query(spec: CaseTypeSpec):
    query = definition(spec).queries.get(STATE_QUERY)

    assert query is not None
    assert query.arg_types == [] and query.ret_type is CaseState


# --- the API ------------------------------------------------------------------------------


@by_type
def test_the_types_router_is_mounted(app: FastAPI, spec: CaseTypeSpec):
    own = [r for r in importlib.import_module(spec.router).router.routes if isinstance(r, APIRoute)]
    served = operations(app)

    assert own, f"{spec.router} declares no routes"
    for route in own:
        for method in route.methods or ():
            assert served.get((method, route.path)) == route.unique_id, (method, route.path)


@by_type
def test_a_case_of_the_type_is_opened_at_its_path(app: FastAPI, spec: CaseTypeSpec):
    if not spec.path:  # opened by another case (the compliance watch), never over the API
        assert ("POST", "/cases/") not in operations(app)
        return
    assert ("POST", f"/cases/{spec.path}") in operations(app)


@by_type
def test_every_action_has_its_route(app: FastAPI, spec: CaseTypeSpec):
    served = operations(app)

    missing = [
        a.name for a in spec.actions if ("POST", f"/cases/{{case_id}}/{a.path}") not in served
    ]
    assert missing == []


# --- templates and the console --------------------------------------------------------------


@by_type
def test_every_template_has_its_three_files(spec: CaseTypeSpec):
    root = Path(DEFAULT_TEMPLATE_DIR)
    missing = [
        f"{name}{suffix}"
        for name in spec.templates
        for suffix in (".subject.txt", ".txt", ".html")
        if not (root / f"{name}{suffix}").is_file()
    ]
    assert missing == []


@by_type
def test_every_template_renders_with_a_plausible_message_of_its_type(spec: CaseTypeSpec):
    assert spec.case_type in PLAUSIBLE_CONTEXT, "add a plausible context for the new type"
    context = PLAUSIBLE_CONTEXT[spec.case_type]
    renderer = EmailRenderer()

    for name in spec.templates:
        email = renderer.render(name, dict(context))

        assert email.subject.strip() and "\n" not in email.subject, name
        assert "SHP-1" in email.subject + email.text, name
        assert "SHP-1" in email.html and "<" in email.html, name


@by_type
def test_the_console_has_a_form_for_every_action(spec: CaseTypeSpec):
    assert list(actions_for(spec.case_type)) == spec.action_names
