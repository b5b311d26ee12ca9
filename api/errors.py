"""Every error the API returns is RFC 9457 `application/problem+json`.

Routes raise `Problem` (or let FastAPI's validation and Temporal's client errors bubble up);
the handlers here turn each into a problem document with `type`, `title`, `status`, `detail`
and `instance`, and a 422 also lists `errors: [{field, message}]` (a refused batch of
delivery records adds each error's `row`). Temporal errors are mapped by
type (update failure cause type, RPC status code), never by their message text, with one
exception that the SDK leaves no other way to recognise: see `temporal_call`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from schemas.contracts import ACTION_NOT_ALLOWED, INVALID_REQUEST, failed_field

log = logging.getLogger("casedesk.api")

PROBLEM_JSON = "application/problem+json"

_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "content-too-large",
    415: "unsupported-media-type",
    422: "invalid-request",
    429: "too-many-requests",
    500: "internal-error",
    503: "temporal-unreachable",
    504: "not-confirmed-in-time",
}


class Problem(Exception):
    """An error the client can act on; becomes a problem+json response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _SLUGS.get(status, "error")
        self.errors = list(errors) if errors is not None else None
        self.headers = headers
        # RFC 9457 extension members, e.g. a refused batch's counts.
        self.extra = extra or {}

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


def invalid(field: str, message: str) -> Problem:
    """422 naming one field."""
    return Problem(422, f"{field}: {message}", errors=[{"field": field, "message": message}])


def invalid_fields(errors: Sequence[dict[str, str]]) -> Problem:
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return Problem(422, detail, errors=list(errors))


def unknown_case(case_id: str) -> Problem:
    return Problem(404, f"unknown case '{case_id}'", slug="unknown-case")


def case_closed(case_id: str) -> Problem:
    return Problem(409, f"the case is closed ('{case_id}')", slug="case-closed")


def temporal_unreachable(why: str = "Temporal is unreachable") -> Problem:
    return Problem(503, why, slug="temporal-unreachable")


UNCONFIRMED = (
    "the case did not confirm the action in time; it may still be applied — "
    "check the case before retrying"
)


def update_unconfirmed() -> Problem:
    """An update sent but not answered within its RPC timeout: it may yet be applied (the
    server may have accepted it, the worker may be busy), so this is no "unreachable"."""
    return Problem(504, UNCONFIRMED, slug="not-confirmed-in-time")


# --- validation errors -> fields -----------------------------------------------------------

# Our model validators say which fields they need: "window required when option is ...".
_REQUIRED_FIELDS = re.compile(r"^([a-z_]+(?:, [a-z_]+)*) required when ")


def _message(error: dict[str, Any]) -> str:
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def _json_problem(error: dict[str, Any]) -> str:
    """What is wrong with a body that is not JSON, and where (FastAPI's `loc` holds the
    character offset, which is no field)."""
    reason = str((error.get("ctx") or {}).get("error") or "not valid JSON")
    loc = error.get("loc", ())
    where = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
    return f"the body is not valid JSON: {reason}{where}"


def field_errors(
    errors: Sequence[Any], *, prefix: str = "", drop_location: bool = True
) -> list[dict[str, str]]:
    """Pydantic / FastAPI errors as `[{field: "customer.email", message}]`. The location
    (`body`, `query`, `path`) is dropped; a model-level error gets its field from the
    message (our validators name the fields they need) or, failing that, its model."""
    result: list[dict[str, str]] = []
    for error in errors:
        if error.get("type") == "json_invalid":  # FastAPI puts the character offset in `loc`
            result.append({"field": "body", "message": _json_problem(error)})
            continue
        loc = [str(part) for part in error.get("loc", ())]
        if drop_location and loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            loc = loc[1:]
        message = _message(error)
        names = [".".join(loc)] if loc else []
        match = _REQUIRED_FIELDS.match(message)
        if match:
            names = [".".join([*loc, name]) for name in match.group(1).split(", ")]
        for name in names or [""]:
            field = ".".join(part for part in (prefix, name) if part) or "body"
            result.append({"field": field, "message": message})
    return result


def from_validation_error(err: ValidationError, *, prefix: str = "") -> Problem:
    return invalid_fields(field_errors(err.errors(), prefix=prefix, drop_location=False))


# --- Temporal -> HTTP ----------------------------------------------------------------------


def problem_from_temporal(exc: BaseException) -> Problem | None:
    """The problem for a Temporal client error, by type; None when it is not one of ours."""
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == ACTION_NOT_ALLOWED:
            return Problem(409, cause.message, slug="action-not-allowed")
        if isinstance(cause, ApplicationError) and cause.type == INVALID_REQUEST:
            return invalid(failed_field(cause.details), cause.message)
        return Problem(500, "the case could not carry out the action")
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        return update_unconfirmed()
    if isinstance(exc, RPCTimeoutOrCancelledError):
        return temporal_unreachable("Temporal did not answer in time")
    if isinstance(exc, RPCError):
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Problem(404, "unknown case", slug="unknown-case")
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return temporal_unreachable()
        return Problem(503, "Temporal refused the request", slug="temporal-error")
    return None


# What the SDK's bridge raises when a (lazy) client cannot connect: a plain RuntimeError made
# in Rust (temporalio/bridge/src/client.rs, `connect_client`:
# `PyRuntimeError::new_err(format!("Failed client connect: {err}"))`), re-raised unchanged by
# `temporalio.service._BridgeServiceClient._connected_client` on the first RPC. There is no
# dedicated exception type, so the message prefix is the only way to tell it from any other
# RuntimeError; `temporal_call` therefore wraps nothing but the Temporal call itself.
CONNECT_FAILED = "Failed client connect"


CALL_LIMIT = timedelta(seconds=2.5)
"""The longest any single Temporal call from the API may take, so that Temporal unreachable is
a 503 within 3 s (the SDK's own retries of a connection, or of an UNAVAILABLE server, would
otherwise stretch it to 10 or 30 s)."""


async def ensure_reachable(client: Client, limit: timedelta = CALL_LIMIT) -> None:
    """503 within `limit` unless Temporal answers its health check: before a call whose own
    bound is longer (an update waits up to its limit) and that must not wait that long only
    to find Temporal gone."""
    try:
        with temporal_call():
            async with asyncio.timeout(limit.total_seconds()):
                serving = await client.service_client.check_health(timeout=limit)
    except RPCError as err:
        raise temporal_unreachable() from err
    if not serving:
        raise temporal_unreachable("Temporal reports it is not serving")


def is_connect_failure(err: BaseException) -> bool:
    return type(err) is RuntimeError and str(err).startswith(CONNECT_FAILED)


@contextmanager
def temporal_call() -> Iterator[None]:
    """Around one Temporal client call (and nothing else): a client that cannot connect
    (see `CONNECT_FAILED`), an asyncio `TimeoutError` or an OS-level `ConnectionError` mean
    Temporal is unreachable (503). Any other error, including every other RuntimeError (our
    own bugs), passes through unchanged and ends as a 500."""
    try:
        yield
    except RuntimeError as err:
        if is_connect_failure(err):
            raise temporal_unreachable() from err
        raise
    except (TimeoutError, ConnectionError) as err:
        raise temporal_unreachable() from err


# --- handlers ------------------------------------------------------------------------------


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:casedesk:problem:{problem.slug}",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
    }
    body.update({k: v for k, v in problem.extra.items() if k not in body})
    if problem.errors is not None:
        body["errors"] = problem.errors
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(request, exc)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(request, invalid_fields(field_errors(exc.errors())))


async def _on_model_validation(request: Request, exc: Exception) -> JSONResponse:
    """A workflow payload built from valid request fields can still fail its own rules
    (e.g. "reason required when outcome is failed"): that is the client's input too."""
    assert isinstance(exc, ValidationError)
    return problem_response(request, from_validation_error(exc))


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such resource: {request.url.path}"
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(request, Problem(exc.status_code, detail, headers=headers))


async def _on_temporal(request: Request, exc: Exception) -> JSONResponse:
    problem = problem_from_temporal(exc)
    if problem is None:
        return await _on_unexpected(request, exc)
    return problem_response(request, problem)


async def _on_database(request: Request, exc: Exception) -> JSONResponse:
    """The database is locked past its lock timeout, unreachable, or out of connections: a
    503 to retry (an action that already reached its case may be applied: retry with the
    same Idempotency-Key), never a 500."""
    log.warning(
        "database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    return problem_response(
        request,
        Problem(
            503,
            "the database is unavailable (locked or unreachable); try again shortly",
            slug="database-unavailable",
            headers={"Retry-After": "5"},
        ),
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, Problem(500, "an unexpected error occurred"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ValidationError, _on_model_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(WorkflowUpdateFailedError, _on_temporal)
    app.add_exception_handler(RPCError, _on_temporal)
    app.add_exception_handler(RPCTimeoutOrCancelledError, _on_temporal)
    app.add_exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError, _on_temporal)
    app.add_exception_handler(OperationalError, _on_database)
    app.add_exception_handler(SQLAlchemyTimeoutError, _on_database)
    app.add_exception_handler(Exception, _on_unexpected)
