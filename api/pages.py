"""What every page behind a signed link (`/r/{token}`) shares: the page error, rendering, the
notice page, the customer's wording of the API's problems, and the route class that turns
anything raised under these routes into a page (never JSON or a stack trace)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from api.casework import query_state
from api.deps import Timeouts
from api.errors import Problem, problem_from_temporal
from core.security import LinkClaims
from schemas.cases import CaseState

log = logging.getLogger("casedesk.api")

TRY_AGAIN = "We cannot show your delivery right now. Please try again in a few minutes."


class PageError(Exception):
    """Stop and show a page (an error, or a notice instead of the form)."""

    def __init__(self, status: int, heading: str, message: str, state: CaseState | None = None):
        super().__init__(message)
        self.status, self.heading, self.message, self.state = status, heading, message, state


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Any:
    return request.app.state.templates.TemplateResponse(request, name, context, status_code=status)


def notice(request: Request, err: PageError) -> HTMLResponse:
    status_text = err.state.status.description if err.state else None
    context = {"heading": err.heading, "message": err.message, "status_text": status_text}
    response: HTMLResponse = render(request, "notice.html", context, err.status)
    return response


def page_for(problem: Problem) -> PageError:
    """The customer's page for a problem the shared code raised (its detail is for ops)."""
    if problem.status == 404:
        return PageError(404, "We could not find this delivery", "Please contact the sender.")
    if problem.status == 409:
        message = "This delivery cannot be changed now. Please check our latest email."
        return PageError(409, "This delivery has moved on", message)
    if problem.status == 504:
        message = (
            "We could not confirm your choice in time. It may still have been saved: please "
            "open this link again in a few minutes to check before choosing again."
        )
        return PageError(504, "Please check again shortly", message)
    if problem.status in (502, 503):
        return PageError(problem.status, "Please try again shortly", TRY_AGAIN)
    if 400 <= problem.status < 500:  # what was sent cannot be read: the sender's to fix
        message = "Please go back, check what you entered and send it again."
        return PageError(problem.status, "We could not read your answer", message)
    message = "Something went wrong on our side. Please try again later or contact the sender."
    return PageError(problem.status, "Sorry, this page is not available", message)


PAGE_HEADERS = {
    # The pages have inline styles and forms posting to themselves; nothing else loads.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The URL is the customer's credential: never cached, never sent on as a referrer.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


class CustomerPageRoute(APIRoute):
    """The customer's routes answer with a page, whatever the code under them raises."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            response = await _page(request)
            response.headers.update(PAGE_HEADERS)
            return response

        async def _page(request: Request) -> Response:
            try:
                return await handler(request)
            except PageError as err:
                return notice(request, err)
            except Problem as problem:
                return notice(request, page_for(problem))
            except HTTPException as exc:  # e.g. the form parser's 400: a 4xx stays a 4xx
                return notice(request, page_for(Problem(exc.status_code, str(exc.detail))))
            except Exception as exc:  # never JSON or a stack trace for the customer
                mapped = problem_from_temporal(exc)
                if mapped is None:
                    log.exception("unhandled error on %s %s", request.method, request.url.path)
                    mapped = Problem(500, "an unexpected error occurred")
                return notice(request, page_for(mapped))

        return page_handler


async def link_state(temporal: Any, claims: LinkClaims, timeouts: Timeouts) -> CaseState:
    """The live state of the case a link names; a page when it cannot be had."""
    try:
        state = await query_state(temporal.get_workflow_handle(claims.case_id), timeouts)
    except Problem as problem:
        raise page_for(problem) from None
    if state is None:  # nobody answered in time
        raise PageError(503, "Please try again shortly", TRY_AGAIN)
    return state
