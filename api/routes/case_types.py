"""`GET /case-types`: the case-type registry as data (statuses, resolutions, actions with the
JSON schema of their bodies and the role they need, default policies, opening schemas). The
console builds its forms from the same registry."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import ViewerKey
from schemas.case_types import CASE_TYPES, CaseTypeSpec
from schemas.enums import Role

router = APIRouter(tags=["case types"])


class Described(BaseModel):
    value: str
    description: str


class StatusOut(Described):
    terminal: bool


class ActionOut(BaseModel):
    name: str = Field(description="`POST /cases/{case_id}/{name}`")
    title: str
    description: str
    role: Role = Field(description="The least role that may take it.")
    media_type: str = Field(description="How the body is sent.")
    body_schema: dict[str, Any] = Field(description="JSON schema of the body.")


class CaseTypeOut(BaseModel):
    type: str
    title: str
    open_path: str | None = Field(
        description="POST here to open a case of this type; null for a type only another case "
        "opens (the compliance watch, started at a driver's activation)."
    )
    open_schema: dict[str, Any] = Field(description="JSON schema of the opening body.")
    statuses: list[StatusOut]
    resolutions: list[Described]
    actions: list[ActionOut]
    default_policy: dict[str, Any] = Field(
        description="The policy a case runs on unless the client overrides it "
        "(`policy_overrides.<type>`); durations are ISO 8601."
    )
    policy_schema: dict[str, Any]
    stuck_policy: dict[str, Any] = Field(
        description="When a case of this type is listed by `GET /cases/stuck`: an activity on "
        "`activity_attempts` or later, no progress for `no_progress_after` with nothing "
        "scheduled, and per waiting status its window (`waiting_windows`); ISO 8601 durations."
    )
    details_schema: dict[str, Any] = Field(description="JSON schema of a case's `details`.")
    document_kinds: list[Described]
    link_purposes: list[str]
    templates: list[str]


def describe(spec: CaseTypeSpec) -> CaseTypeOut:
    return CaseTypeOut(
        type=spec.case_type.value,
        title=spec.title,
        open_path=f"/cases/{spec.path}" if spec.path else None,
        open_schema=spec.open_body.model_json_schema(),
        statuses=[
            StatusOut(value=status.value, description=text, terminal=status.is_terminal)
            for status, text in spec.statuses.items()
        ],
        resolutions=[
            Described(value=resolution.value, description=text)
            for resolution, text in spec.resolutions.items()
        ],
        actions=[
            ActionOut(
                name=action.name,
                title=action.title,
                description=action.description,
                role=action.role,
                media_type=action.media_type,
                body_schema=action.body.model_json_schema(),
            )
            for action in spec.actions
        ],
        default_policy=spec.policy().model_dump(mode="json"),
        policy_schema=spec.policy.model_json_schema(),
        stuck_policy=spec.stuck.model_dump(mode="json"),
        details_schema=spec.details.model_json_schema(),
        document_kinds=[
            Described(value=kind.value, description=kind.description)
            for kind in spec.document_kinds
        ],
        link_purposes=list(spec.link_purposes),
        templates=list(spec.templates),
    )


@cache
def _all() -> list[CaseTypeOut]:
    """The registry does not change while the process runs: describe it once."""
    return [describe(spec) for spec in CASE_TYPES.values()]


@router.get("/case-types", summary="Every case type: statuses, actions, policies, schemas")
async def list_case_types(_: ViewerKey) -> list[CaseTypeOut]:
    return _all()
