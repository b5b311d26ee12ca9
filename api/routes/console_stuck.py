"""The console's stuck-case radar, `/console/stuck`: the same list as `GET /cases/stuck`
(`api.stuck.find_stuck`), each case with its reasons and since when, linking to its console
page and to its page in the Temporal UI. Filters come from a GET form where blank means
"any"; a value that is no kind or type is named above the list (422), never guessed."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console.auth import ConsoleRoute, User, render
from api.deps import Now, SessionDep, SettingsDep
from api.stuck import StuckFilters, find_stuck
from schemas.enums import CaseType
from schemas.stuck import StuckKind

router = APIRouter(prefix="/console", tags=["console"], route_class=ConsoleRoute)
router_options: dict[str, Any] = {"response_class": HTMLResponse, "include_in_schema": False}

E = TypeVar("E", bound=StrEnum)

SHOWN = 200
"""The most cases the page lists (oldest first); the total says how many there are."""


def _pick(params: dict[str, str], name: str, enum: type[E], errors: list[str]) -> E | None:
    raw = params.get(name) or ""
    choices = {member.value: member for member in enum}
    if raw and raw not in choices:
        errors.append(f"{name}: '{raw}' is not one of {', '.join(choices)}")
    return choices.get(raw)


@router.get("/stuck", **router_options)
async def stuck_page(
    request: Request, user: User, session: SessionDep, settings: SettingsDep, now: Now
) -> HTMLResponse:
    params = dict(request.query_params)
    errors: list[str] = []
    filters = StuckFilters(
        kind=_pick(params, "kind", StuckKind, errors),
        type=_pick(params, "type", CaseType, errors),
        depot_id=(params.get("depot_id") or "").strip() or None,
        client_id=(params.get("client_id") or "").strip() or None,
    )
    radar = await find_stuck(
        session=session,
        temporal=request.app.state.temporal,
        settings=settings,
        now=now,
        filters=filters,
        limit=SHOWN,
        offset=0,
    )
    context = {
        "user": user,
        "radar": radar,
        "filters": filters,
        "errors": errors,
        "kinds": list(StuckKind),
        "types": list(CaseType),
    }
    return render(request, "stuck.html", context, 422 if errors else 200)
